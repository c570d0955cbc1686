package archive

// Temporary strict decoders until codec/zstd, codec/gzip and codec/lzo land.

import (
	"compress/gzip"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

type tmpReader struct{ r io.Reader }

func (t tmpReader) Read(p []byte) (int, error) { return t.r.Read(p) }
func (tmpReader) Spans() []codec.Span          { return nil }
func (tmpReader) Problems() []damage.Problem   { return nil }
func (tmpReader) Checksum() codec.Checksum     { return codec.ChecksumUnknown }

func init() {
	decoders[codec.Zstd] = func(r io.Reader, _ codec.Options) (codec.Reader, error) {
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return tmpReader{d}, nil
	}
	decoders[codec.Gzip] = func(r io.Reader, _ codec.Options) (codec.Reader, error) {
		d, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		return tmpReader{d}, nil
	}
}

package archive

import (
	"fmt"
	"io"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/gzip"
	"github.com/vzsalvage/vzsalvage/codec/lzo"
	"github.com/vzsalvage/vzsalvage/codec/zstd"
)

// decoders maps a compression to its decoder.
var decoders = map[codec.Kind]func(io.Reader, codec.Options) (codec.Reader, error){
	codec.None: func(r io.Reader, _ codec.Options) (codec.Reader, error) { return codec.Plain(r), nil },
	codec.Zstd: zstd.NewReader,
	codec.Gzip: gzip.NewReader,
	codec.Lzo:  lzo.NewReader,
}

// NewDecoder returns the decoder of a compression over r (codec.None passes
// the bytes through).
func NewDecoder(kind codec.Kind, r io.Reader, opt codec.Options) (codec.Reader, error) {
	dec := decoders[kind]
	if dec == nil {
		return nil, fmt.Errorf("%s compression is not supported", kind)
	}
	return dec(r, opt)
}

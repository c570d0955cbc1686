package archive

import (
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

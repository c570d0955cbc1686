package btrfs

import (
	"bytes"
	"compress/zlib"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/vzsalvage/vzsalvage/codec/lzo"
)

// decompress decodes an extent's stored bytes (compression type comp) to
// ram bytes, at most limit. A stream that ends early returns what it gave
// with an error.
func decompress(comp uint8, src []byte, ram, limit, sectorSize int64) ([]byte, error) {
	if ram < 0 || ram > limit {
		return nil, errDamaged("extent decodes to %d bytes", ram)
	}
	switch comp {
	case compNone:
		return src[:min(int64(len(src)), ram)], nil
	case compZlib:
		zr, err := zlib.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, errDamaged("zlib: %v", err)
		}
		return readFull(zr, ram, "zlib")
	case compZstd:
		d := zstdPool.Get().(*zstd.Decoder)
		defer zstdPool.Put(d)
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			return nil, errDamaged("zstd: %v", err)
		}
		return readFull(d, ram, "zstd")
	case compLZO:
		return unlzo(src, ram, sectorSize)
	}
	return nil, errDamaged("compression type %d", comp)
}

var zstdPool = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecoded),
		zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		panic(err) // only for invalid options
	}
	return d
}}

func readFull(r io.Reader, n int64, name string) ([]byte, error) {
	out := make([]byte, n)
	got, err := io.ReadFull(r, out)
	if err != nil {
		return out[:got], errDamaged("%s: decoded %d of %d bytes: %v", name, got, n, err)
	}
	return out, nil
}

// unlzo decodes btrfs's LZO framing: a 4-byte total length, then segments
// of a 4-byte length and an LZO1X block decoding to at most one sector; a
// segment header never straddles a sector boundary (the rest of the sector
// is padding then).
func unlzo(src []byte, ram, ss int64) ([]byte, error) {
	if len(src) < 4 {
		return nil, errDamaged("lzo: %d bytes", len(src))
	}
	total := int64(le.Uint32(src))
	if total > int64(len(src)) || total < 4 {
		return nil, errDamaged("lzo: total length %d of %d bytes", total, len(src))
	}
	out := make([]byte, 0, ram)
	pos := int64(4)
	for pos < total && int64(len(out)) < ram {
		if left := ss - pos%ss; left < 4 {
			pos += left
			if pos >= total {
				break
			}
		}
		if pos+4 > total {
			return out, errDamaged("lzo: segment header past the end")
		}
		n := int64(le.Uint32(src[pos:]))
		pos += 4
		if n == 0 || n > total-pos {
			return out, errDamaged("lzo: segment of %d bytes at %d", n, pos-4)
		}
		room := min(ram-int64(len(out)), ss)
		seg, err := lzo.Decompress1X(out[len(out):len(out):int64(len(out))+room], src[pos:pos+n])
		if err != nil {
			return out, errDamaged("lzo: segment at %d: %v", pos-4, err)
		}
		out = out[:len(out)+len(seg)]
		pos += n
	}
	if int64(len(out)) < ram {
		return out, errDamaged("lzo: decoded %d of %d bytes", len(out), ram)
	}
	return out, nil
}

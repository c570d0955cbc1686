package btrfs

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/vzsalvage/vzsalvage/codec/lzo"
)

// decompress decodes an extent's stored bytes (compression type comp) to
// at most ram bytes (at most limit). A stream that ends cleanly early
// returns what it gave; a damaged one returns it with an error.
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

// readFull decodes up to n bytes. A stream that ends cleanly before n
// bytes is no error: the caller checks it holds the bytes it needs (the
// last extent of a file decodes to its size, not to the whole sectors
// ram_bytes may count). btrfs writes one zstd frame and pads it with
// zeros to a whole sector: the zeros are not a next frame.
func readFull(r io.Reader, n int64, name string) ([]byte, error) {
	out := make([]byte, n)
	got, err := io.ReadFull(r, out)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF && !(got > 0 && errors.Is(err, zstd.ErrMagicMismatch)) {
		return out[:got], errDamaged("%s: decoded %d of %d bytes: %v", name, got, n, err)
	}
	return out[:got], nil
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
	return out, nil
}

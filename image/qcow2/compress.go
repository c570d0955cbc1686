package qcow2

import (
	"bytes"
	"fmt"
	"github.com/klauspost/compress/flate"
	"io"

	"github.com/klauspost/compress/zstd"
)

// decompressor inflates compressed clusters, keeping the last one: reads
// of a compressed cluster usually come in several pieces.
type decompressor struct {
	typ     uint8
	size    int64
	in      []byte // compressed bytes, reused
	out     []byte // the last cluster decompressed
	lastOff int64  // its host offset (0: none)
	src     bytes.Reader
	flate   io.ReadCloser
	zstd    *zstd.Decoder
}

func newDecompressor(typ uint8, clusterSize int64) *decompressor {
	return &decompressor{typ: typ, size: clusterSize, out: make([]byte, clusterSize)}
}

// cluster returns the decompressed cluster whose n compressed bytes (an
// upper bound: decompression stops at one cluster) start at host offset
// off. n is at most twice the cluster size (the descriptor's limit).
func (d *decompressor) cluster(r io.ReaderAt, off, n int64) ([]byte, error) {
	if off == d.lastOff {
		return d.out, nil
	}
	d.lastOff = 0
	if int64(cap(d.in)) < n {
		d.in = make([]byte, n)
	}
	in := d.in[:n]
	k, _ := r.ReadAt(in, off)
	in = in[:k]
	d.src.Reset(in)
	var rd io.Reader
	switch d.typ {
	case CompressionDeflate:
		if d.flate == nil {
			d.flate = flate.NewReader(&d.src)
		} else if err := d.flate.(flate.Resetter).Reset(&d.src, nil); err != nil {
			return nil, err
		}
		rd = d.flate
	case CompressionZstd:
		if d.zstd == nil {
			z, err := zstd.NewReader(&d.src, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderMaxMemory(64<<20))
			if err != nil {
				return nil, err
			}
			d.zstd = z
		} else if err := d.zstd.Reset(&d.src); err != nil {
			return nil, err
		}
		rd = d.zstd
	default:
		return nil, fmt.Errorf("compression type %d", d.typ)
	}
	if _, err := io.ReadFull(rd, d.out); err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	d.lastOff = off
	return d.out, nil
}

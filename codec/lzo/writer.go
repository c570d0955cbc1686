package lzo

import (
	"encoding/binary"
	"hash/adler32"
	"io"
	"time"
)

// Writer writes an lzop file that lzop 1.04 (and vzdump's restore) reads:
// the lzop header, then the data in 256 KiB blocks, each with the Adler-32
// of its bytes. vzsalvage has no LZO1X compressor: every block is stored
// (lzop's own form for data that does not compress), so the file is about
// as large as its content. Close writes the end marker.
type Writer struct {
	w      io.Writer
	buf    []byte
	err    error
	header bool
	mtime  time.Time
}

// NewWriter returns a Writer of an lzop file to w.
func NewWriter(w io.Writer, mtime time.Time) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, blockSize), mtime: mtime}
}

func (z *Writer) writeHeader() error {
	h := make([]byte, 0, 64)
	h = binary.BigEndian.AppendUint16(h, 0x1040) // lzop 1.04
	h = binary.BigEndian.AppendUint16(h, 0x20a0) // LZO 2.10
	h = binary.BigEndian.AppendUint16(h, 0x0940) // version needed to extract
	h = append(h, methodLZO1X1, 1)
	h = binary.BigEndian.AppendUint32(h, flagAdler32D|0x03000000) // Adler-32 of the data; made on Unix
	h = binary.BigEndian.AppendUint32(h, 0o100644)
	h = binary.BigEndian.AppendUint32(h, uint32(z.mtime.Unix()))
	h = binary.BigEndian.AppendUint32(h, uint32(uint64(z.mtime.Unix())>>32))
	h = append(h, 0) // no file name
	h = binary.BigEndian.AppendUint32(h, adler32.Checksum(h))
	if _, err := z.w.Write(magic[:]); err != nil {
		return err
	}
	_, err := z.w.Write(h)
	return err
}

// Write buffers p into blocks.
func (z *Writer) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && z.err == nil {
		k := copy(z.buf[len(z.buf):cap(z.buf)], p)
		z.buf = z.buf[:len(z.buf)+k]
		p, n = p[k:], n+k
		if len(z.buf) == cap(z.buf) {
			z.err = z.flush()
		}
	}
	return n, z.err
}

// flush writes the buffered block (stored).
func (z *Writer) flush() error {
	if !z.header {
		if err := z.writeHeader(); err != nil {
			return err
		}
		z.header = true
	}
	if len(z.buf) == 0 {
		return nil
	}
	var h [12]byte
	binary.BigEndian.PutUint32(h[0:], uint32(len(z.buf)))
	binary.BigEndian.PutUint32(h[4:], uint32(len(z.buf)))
	binary.BigEndian.PutUint32(h[8:], adler32.Checksum(z.buf))
	if _, err := z.w.Write(h[:]); err != nil {
		return err
	}
	_, err := z.w.Write(z.buf)
	z.buf = z.buf[:0]
	return err
}

// Close writes the last block and the end marker (it does not close the
// underlying writer).
func (z *Writer) Close() error {
	if z.err == nil {
		z.err = z.flush()
	}
	if z.err == nil {
		_, z.err = z.w.Write([]byte{0, 0, 0, 0})
	}
	return z.err
}

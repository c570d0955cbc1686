package zstd

import (
	"errors"
	"math/bits"
)

var errBitstream = errors.New("zstd: corrupt bitstream")

// bitReader reads a zstd backward bitstream: the last byte holds a 1-bit
// end marker above the first bits to read, and reading proceeds towards the
// first byte. value holds 8 input bytes; consumed bits are counted from its
// top. The stream is fully read exactly when off == 0 and consumed == 64;
// reading past that makes consumed exceed 64, which finished and overflowed
// report.
type bitReader struct {
	in       []byte
	off      int // in[off:off+8] is loaded in value (off == 0 near the start)
	value    uint64
	consumed uint
}

// init prepares r to read the stream b.
func (r *bitReader) init(b []byte) error {
	if len(b) == 0 || b[len(b)-1] == 0 {
		return errBitstream
	}
	r.in = b
	marker := uint(bits.LeadingZeros8(b[len(b)-1])) + 1
	if len(b) >= 8 {
		r.off = len(b) - 8
		r.value = le64(b[r.off:])
		r.consumed = marker
		return nil
	}
	r.off = 0
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	r.value = v // the top 8-len(b) bytes are zero padding
	r.consumed = uint(8-len(b))*8 + marker
	return nil
}

// get reads n bits (n <= 56 - consumed after a reload; n may be 0).
func (r *bitReader) get(n uint8) uint32 {
	v := (r.value << r.consumed) >> (64 - uint(n)) & (uint64(1)<<n - 1)
	r.consumed += uint(n)
	return uint32(v)
}

// reload moves the window so that at least 56 bits are available, unless
// the start of the stream is near.
func (r *bitReader) reload() {
	if r.consumed < 8 || r.consumed > 64 || r.off == 0 {
		return
	}
	nb := int(r.consumed >> 3)
	if nb > r.off {
		nb = r.off
	}
	r.off -= nb
	r.consumed -= uint(nb) * 8
	r.value = le64(r.in[r.off:])
}

// finished reports whether the stream was read exactly to its start.
func (r *bitReader) finished() bool { return r.off == 0 && r.consumed == 64 }

// overflowed reports whether more bits were read than the stream holds.
func (r *bitReader) overflowed() bool { return r.consumed > 64 }

// fwdBits reads a forward (little-endian, LSB-first) bitstream, used by FSE
// table descriptions.
type fwdBits struct {
	in  []byte
	pos uint // bit position
}

func (f *fwdBits) get(n uint) uint32 {
	var v uint64
	byteOff := f.pos >> 3
	for i := uint(0); i < 8; i++ {
		if int(byteOff+i) < len(f.in) {
			v |= uint64(f.in[byteOff+i]) << (8 * i)
		}
	}
	return uint32(v>>(f.pos&7)) & (1<<n - 1)
}

package gzip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// inflater decodes deflate data (RFC 1951) from an input into a history.
// It decodes from any block start (or from inside a stored block), with
// the window before it unknown if need be: bytes copied from the unknown
// window, or from bytes copied from it, are tainted in the history, never
// guessed.
type inflater struct {
	in *input
	h  *history

	// ip is the input offset of the next byte not yet in bits; bits holds
	// nb bits read ahead (the stream's next bit is bit 0).
	ip   int64
	bits uint64
	nb   uint

	st     blockState
	final  bool  // the current block is the last one
	stored int   // bytes left in a stored block
	low    int64 // matches may not reach before this output offset
	// blockStart is the bit offset of the current block's header.
	blockStart int64

	// lose, when set (end > 0), is a range of input bits whose symbols'
	// output the inflater takes as unknown (tainted) although it decodes
	// them: the oracle of the package tests (see oracle_test.go).
	lose extent

	lt      *[litTableSize]uint32
	dt      *[distTableSize]uint32
	dynLit  [litTableSize]uint32
	dynDist [distTableSize]uint32
	lens    [286 + 30]uint8
}

type blockState uint8

const (
	bsHeader blockState = iota // at a block header
	bsStored                   // inside a stored block
	bsCodes                    // inside a Huffman-coded block
	bsEnd                      // after the last block
)

// event says why step returned.
type event uint8

const (
	evLimit  event = iota // the output limit was reached
	evHeader              // a block header was read (st says which kind)
	evBlock               // a block ended (not the last one)
	evEnd                 // the last block ended; ip is at the trailer
)

// errDeflate is a corruption of deflate data, at bit offset bit.
type errDeflate struct {
	bit int64
	msg string
}

func (e *errDeflate) Error() string {
	return fmt.Sprintf("corrupt deflate data at input offset %d bit %d: %s", e.bit/8, e.bit%8, e.msg)
}

func (f *inflater) corrupt(msg string) error { return &errDeflate{f.bitPos(), msg} }

// noLimit makes low allow matches into an unknown window.
const noLimit = math.MinInt64

// bitPos returns the bit offset of the next bit to decode.
func (f *inflater) bitPos() int64 { return f.ip*8 - int64(f.nb) }

// startAt positions the inflater at a block header at bit offset bit.
func (f *inflater) startAt(bit int64) error {
	f.ip, f.bits, f.nb = bit/8, 0, 0
	f.st = bsHeader
	if k := uint(bit % 8); k > 0 {
		if !f.need(k) {
			return io.ErrUnexpectedEOF
		}
		f.drop(k)
	}
	return nil
}

// startStored positions the inflater inside a stored block whose n bytes
// of data start at input offset p.
func (f *inflater) startStored(p int64, n int) {
	f.ip, f.bits, f.nb = p, 0, 0
	f.st, f.stored, f.final = bsStored, n, false
	f.blockStart = p * 8
}

// need makes at least n ≤ 56 bits available, reporting false when the
// input ends first.
func (f *inflater) need(n uint) bool {
	for f.nb < n {
		b := f.in.at(f.ip, 1)
		if len(b) == 0 {
			return false
		}
		f.bits |= uint64(b[0]) << f.nb
		f.ip++
		f.nb += 8
	}
	return true
}

func (f *inflater) drop(n uint) {
	f.bits >>= n
	f.nb -= n
}

// align drops the bits up to the next byte boundary.
func (f *inflater) align() { f.drop(f.nb % 8) }

// unread gives back the whole bytes held in bits (before a seek or at the
// end of the data).
func (f *inflater) unread() {
	f.ip -= int64(f.nb / 8)
	f.nb %= 8
	f.bits &= 1<<f.nb - 1
}

// step decodes until an event, or until the output reaches the absolute
// offset limit (the history must have room for limit plus maxMatch).
func (f *inflater) step(limit int64) (event, error) {
	limit = min(limit, f.h.base+int64(len(f.h.buf)-maxMatch))
	switch f.st {
	case bsHeader:
		if err := f.header(); err != nil {
			return evLimit, err
		}
		return evHeader, nil
	case bsStored:
		return f.copyStored(limit)
	case bsCodes:
		return f.codes(limit)
	}
	return evEnd, nil
}

// blockEnd moves past the end of a block.
func (f *inflater) blockEnd() event {
	if f.final {
		f.unread()
		f.align()
		f.st = bsEnd
		return evEnd
	}
	f.st = bsHeader
	return evBlock
}

// header reads a block header.
func (f *inflater) header() error {
	f.blockStart = f.bitPos()
	if !f.need(3) {
		return io.ErrUnexpectedEOF
	}
	f.final = f.bits&1 == 1
	typ := f.bits >> 1 & 3
	f.drop(3)
	switch typ {
	case 0:
		f.align()
		if !f.need(32) {
			return io.ErrUnexpectedEOF
		}
		n, nn := f.bits&0xffff, f.bits>>16&0xffff
		if n != ^nn&0xffff {
			return f.corrupt("stored block length does not match its complement")
		}
		f.drop(32)
		f.unread() // the data is copied from the input
		f.stored = int(n)
		f.st = bsStored
	case 1:
		f.lt, f.dt = &fixedLit, &fixedDist
		f.st = bsCodes
	case 2:
		if err := f.dynamic(); err != nil {
			return err
		}
		f.lt, f.dt = &f.dynLit, &f.dynDist
		f.st = bsCodes
	default:
		return f.corrupt("invalid block type")
	}
	return nil
}

// clOrder is the order of the code length code lengths.
var clOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamic reads the code lengths of a dynamic block and builds its tables.
func (f *inflater) dynamic() error {
	if !f.need(14) {
		return io.ErrUnexpectedEOF
	}
	nlit := int(f.bits&31) + 257
	ndist := int(f.bits>>5&31) + 1
	nclen := int(f.bits>>10&15) + 4
	f.drop(14)
	if nlit > 286 || ndist > 30 {
		return f.corrupt("too many length or distance codes")
	}
	var cl [19]uint8
	for i := range nclen {
		if !f.need(3) {
			return io.ErrUnexpectedEOF
		}
		cl[clOrder[i]] = uint8(f.bits & 7)
		f.drop(3)
	}
	var pre [1 << 7]uint16 // symbol<<4 | length
	if !precode(&pre, &cl) {
		return f.corrupt("invalid code length code")
	}
	n := nlit + ndist
	lens := f.lens[:n]
	for i := 0; i < n; {
		if !f.need(7 + 7) {
			return io.ErrUnexpectedEOF // the block cannot end before the input does
		}
		e := pre[f.bits&127]
		f.drop(uint(e & 15))
		sym := e >> 4
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var v uint8
		switch sym {
		case 16:
			if i == 0 {
				return f.corrupt("repeated code length with none before")
			}
			rep, v = 3+int(f.bits&3), lens[i-1]
			f.drop(2)
		case 17:
			rep = 3 + int(f.bits&7)
			f.drop(3)
		default:
			rep = 11 + int(f.bits&127)
			f.drop(7)
		}
		if i+rep > n {
			return f.corrupt("code lengths repeated past the end")
		}
		for range rep {
			lens[i] = v
			i++
		}
	}
	if err := buildTable(f.dynLit[:], lens[:nlit], litBits, true); err != nil {
		return f.corrupt("literal/length code: " + err.Error())
	}
	if err := buildTable(f.dynDist[:], lens[nlit:], distBits, false); err != nil {
		return f.corrupt("distance code: " + err.Error())
	}
	return nil
}

// precode builds the table of the code length code; it must be complete.
func precode(t *[128]uint16, cl *[19]uint8) bool {
	var count [8]int
	for _, l := range cl {
		count[l]++
	}
	count[0] = 0
	left := 1
	for l := 1; l <= 7; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return false
		}
	}
	if left != 0 {
		return false
	}
	var next [8]int
	code := 0
	for l := 1; l <= 7; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for s, l := range cl {
		if l == 0 {
			continue
		}
		r := reverse(next[l], int(l))
		next[l]++
		for i := r; i < 128; i += 1 << l {
			t[i] = uint16(s)<<4 | uint16(l)
		}
	}
	return true
}

// copyStored copies stored bytes to the output.
func (f *inflater) copyStored(limit int64) (event, error) {
	h := f.h
	room := int(min(limit-h.pos(), int64(len(h.buf)-h.w)))
	for f.stored > 0 && room > 0 {
		b := f.in.at(f.ip, min(f.stored, room))
		if len(b) == 0 {
			return evLimit, io.ErrUnexpectedEOF
		}
		n := copy(h.buf[h.w:h.w+min(f.stored, room)], b)
		if a, e := max(f.ip*8, f.lose.start), min((f.ip+int64(n))*8, f.lose.end); a < e {
			h.taintAll(h.pos()+(a/8-f.ip), h.pos()+((e+7)/8-f.ip)) // the oracle's loss
		}
		h.w += n
		f.ip += int64(n)
		f.stored -= n
		room -= n
	}
	if f.stored > 0 {
		return evLimit, nil
	}
	return f.blockEnd(), nil
}

// maxMatch is the longest match.
const maxMatch = 258

// codes decodes a Huffman-coded block until its end or the output limit.
// The fast loop runs while 8 input bytes are buffered ahead; near the end
// of the input, symbols are decoded one by one with bounds checks.
func (f *inflater) codes(limit int64) (event, error) {
	h := f.h
	for {
		if f.in.end()-f.ip < 8 {
			f.in.fill(f.ip + readSize)
		}
		if f.in.end()-f.ip < 8 || f.lose.end > 0 {
			return f.codesSlow(limit)
		}
		ev, done, err := f.fast(limit)
		if done || err != nil || h.pos() >= limit {
			return ev, err
		}
	}
}

// fast is the hot loop: it decodes until the block ends, the output
// reaches limit, or fewer than 8 input bytes are buffered ahead.
func (f *inflater) fast(limit int64) (ev event, done bool, err error) {
	h := f.h
	buf := f.in.buf
	ip := int(f.ip - f.in.off)
	bits, nb := f.bits, f.nb
	out := h.buf
	w := h.w
	wEnd := int(min(limit-h.base, int64(len(out)-maxMatch)))
	low := 0 // matches may not reach before out[low]
	if f.low != noLimit {
		low = int(max(f.low-h.base, 0))
	}
	taintIdx := int(max(min(h.taintFrom()-h.base, int64(w)), 0))
	lt, dt := f.lt, f.dt
	var msg string
loop:
	for ip <= len(buf)-8 && w < wEnd {
		bits |= binary.LittleEndian.Uint64(buf[ip:]) << nb
		ip += int(63-nb) >> 3
		nb |= 56

		e := lt[bits&(1<<litBits-1)]
		if e&kindMask == kSub {
			bits >>= litBits
			nb -= litBits
			e = lt[e>>16+uint32(bits)&(1<<(e>>8&31)-1)]
		}
		bits >>= e & 31
		nb -= uint(e & 31)
		switch e & kindMask {
		case kLiteral:
			out[w] = byte(e >> 16)
			w++
			// a second literal needs at most 10 bits of the 41 left
			e = lt[bits&(1<<litBits-1)]
			if e&kindMask == kLiteral {
				bits >>= e & 31
				nb -= uint(e & 31)
				out[w] = byte(e >> 16)
				w++
			}
			continue
		case kLength:
		case kEnd:
			done = true
			break loop
		default:
			msg = "invalid literal/length code"
			break loop
		}
		n := int(e>>16) + int(bits&(1<<(e>>8&31)-1))
		bits >>= e >> 8 & 31
		nb -= uint(e >> 8 & 31)

		d := dt[bits&(1<<distBits-1)]
		if d&kindMask == kSub {
			bits >>= distBits
			nb -= distBits
			d = dt[d>>16+uint32(bits)&(1<<(d>>8&31)-1)]
		}
		if d&kindMask != kDist {
			msg = "invalid distance code"
			break loop
		}
		bits >>= d & 31
		nb -= uint(d & 31)
		dist := int(d>>16) + int(bits&(1<<(d>>8&31)-1))
		bits >>= d >> 8 & 31
		nb -= uint(d >> 8 & 31)

		src := w - dist
		if src < low {
			msg = "distance too far back"
			break loop
		}
		if src < taintIdx {
			h.copyTaint(h.base+int64(src), h.base+int64(w), int64(n))
			taintIdx = int(h.taintFrom() - h.base)
		}
		if dist >= n {
			copy(out[w:w+n], out[src:src+n])
		} else {
			k := copy(out[w:w+n], out[src:w])
			for k < n {
				k += copy(out[w+k:w+n], out[w:w+k])
			}
		}
		w += n
	}
	f.ip = f.in.off + int64(ip)
	f.bits, f.nb = bits, nb
	h.w = w
	switch {
	case msg != "":
		return evLimit, true, f.corrupt(msg)
	case done:
		return f.blockEnd(), true, nil
	}
	return evLimit, false, nil
}

// codesSlow decodes symbols one at a time near the end of the input.
func (f *inflater) codesSlow(limit int64) (event, error) {
	h := f.h
	for h.pos() < limit {
		bit, dst := f.bitPos(), h.pos()
		e, err := f.symbol(f.lt[:], litBits)
		if err != nil {
			return evLimit, err
		}
		switch e & kindMask {
		case kLiteral:
			h.buf[h.w] = byte(e >> 16)
			h.w++
			f.oracle(bit, dst)
			continue
		case kEnd:
			return f.blockEnd(), nil
		case kLength:
		default:
			return evLimit, f.corrupt("invalid literal/length code")
		}
		x := uint(e >> 8 & 31)
		if !f.need(x) {
			return evLimit, io.ErrUnexpectedEOF
		}
		n := int(e>>16) + int(f.bits&(1<<x-1))
		f.drop(x)
		d, err := f.symbol(f.dt[:], distBits)
		if err != nil {
			return evLimit, err
		}
		if d&kindMask != kDist {
			return evLimit, f.corrupt("invalid distance code")
		}
		x = uint(d >> 8 & 31)
		if !f.need(x) {
			return evLimit, io.ErrUnexpectedEOF
		}
		dist := int64(d>>16) + int64(f.bits&(1<<x-1))
		f.drop(x)
		if err := f.copyMatch(dist, n); err != nil {
			return evLimit, err
		}
		f.oracle(bit, dst)
	}
	return evLimit, nil
}

// oracle taints the output from dst on if the symbol just decoded, from
// bit on, has a bit in the range lose.
func (f *inflater) oracle(bit, dst int64) {
	if f.lose.end > 0 && bit < f.lose.end && f.bitPos() > f.lose.start {
		f.h.taintAll(dst, f.h.pos())
	}
}

// symbol decodes one code with table t (primary bits p).
func (f *inflater) symbol(t []uint32, p uint) (uint32, error) {
	f.need(maxCode)
	e := t[f.bits&(1<<p-1)]
	if e&kindMask == kSub {
		if f.nb < p {
			return 0, io.ErrUnexpectedEOF
		}
		f.drop(p)
		e = t[e>>16+uint32(f.bits)&(1<<(e>>8&31)-1)]
	}
	if uint(e&31) > f.nb {
		return 0, io.ErrUnexpectedEOF
	}
	f.drop(uint(e & 31))
	return e, nil
}

// copyMatch copies a match of n bytes from dist back (slow path).
func (f *inflater) copyMatch(dist int64, n int) error {
	h := f.h
	dst := h.pos()
	src := dst - dist
	if f.low != noLimit && src < f.low {
		return f.corrupt("distance too far back")
	}
	if src < h.taintFrom() {
		h.copyTaint(src, dst, int64(n))
	}
	s := int(src - h.base)
	for i := range n {
		h.buf[h.w+i] = h.buf[s+i]
	}
	h.w += n
	return nil
}

// isTruncation reports whether err says the input ended early.
func isTruncation(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }

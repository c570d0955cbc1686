// Package gzip decodes gzip streams (RFC 1952) as vzdump writes them
// (`gzip --rsyncable` or `pigz --rsyncable`) into a codec.Reader: the output
// bytes plus an account of which of them are damaged.
//
// Every member's CRC-32 and size are checked. gzip's only integrity check is
// at the end of a member, so a salvaging Reader holds decoded output back
// until the decoder is holdIn bytes of input further on (or the member's
// trailer has verified it): when the deflate data turns out to be corrupt,
// the held output, which a corrupt stream usually decodes wrongly for a
// while before the error shows, is reported Tainted rather than passed as
// good. After the error it resumes at the next member header, if any
// (concatenated streams); what lies in between is a Lost span with Resync
// set. A stream whose CRC fails without a deflate error has Checksum
// Mismatch and no span: nothing says where the damage is.
package gzip

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/flate"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

const (
	// bufSize is the input buffer, and the window the resync scan and the
	// trial decode of a candidate member look at.
	bufSize = 512 << 10
	// chunk is the most output decoded per step.
	chunk = 64 << 10
	// holdIn: output is held back until the decoder has read this many
	// bytes of input past the input that produced it. Corrupt deflate data
	// is detected within ~15 KiB (rsyncable) to ~250 KiB (plain gzip -6) of
	// compressed input in measurements (see the package tests).
	holdIn = 1 << 20
	// maxHold caps the held output (highly compressible data).
	maxHold = 16 << 20
	// trialOut is how much a candidate member must decode cleanly before
	// the resync scan accepts it (or verify its own trailer first).
	trialOut = 64 << 10
	// maxPlaceholder caps the zeros standing in for a skipped region.
	maxPlaceholder = 64 << 20
)

const layer = "gzip"

// counter counts the bytes read from the input and remembers a read error.
type counter struct {
	r   io.Reader
	n   int64
	err error
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// checkpoint: after Read, output up to out had come from input before in.
type checkpoint struct{ in, out int64 }

type state uint8

const (
	stHeader state = iota
	stBody
	stTrailer
	stEnd
)

// Reader is a salvaging gzip decoder. Create it with NewReader.
type Reader struct {
	opt codec.Options
	src counter
	br  *bufio.Reader
	fr  io.ReadCloser // flate decoder, reset per member

	trialSrc bytes.Reader
	trial    io.ReadCloser
	trialBuf []byte

	st      state
	members int // members verified by their trailer
	// The member being decoded: where its deflate data starts (input) and
	// its output starts, its running CRC-32 and size.
	memberIn, memberOut int64
	crc                 uint32
	size                uint32

	// Output: buf[r:rel] may be returned, buf[rel:w] is held back.
	buf       []byte
	r, rel, w int
	base      int64 // output offset of buf[0]
	cps       []checkpoint
	zeros     int64 // placeholder zeros to return once buf is drained

	spans    []codec.Span
	problems []damage.Problem
	mismatch bool  // a member failed its CRC or size
	unknown  bool  // damage made a check impossible
	err      error // returned once buf and zeros are drained
}

// NewReader returns a Reader decoding the gzip stream r. It fails only when
// r does not start with the gzip magic; damage anywhere else is reported by
// the Reader (or, with opt.Strict, returned by Read).
func NewReader(r io.Reader, opt codec.Options) (codec.Reader, error) {
	z := &Reader{opt: opt}
	z.src.r = r
	z.br = bufio.NewReaderSize(&z.src, bufSize)
	b, err := z.br.Peek(2)
	if len(b) < 2 || b[0] != id1 || b[1] != id2 {
		if z.src.err != nil {
			return nil, fmt.Errorf("gzip: %w", z.src.err)
		}
		if len(b) < 2 && (len(b) == 0 || b[0] == id1) && (err == io.EOF || err == nil) {
			return nil, fmt.Errorf("gzip: %w: no complete header", codec.ErrTruncated)
		}
		return nil, fmt.Errorf("gzip: %w", errNotGzip)
	}
	z.buf = make([]byte, 4*chunk)
	return z, nil
}

// Spans returns the damaged output ranges found so far.
func (z *Reader) Spans() []codec.Span { return z.spans }

// Problems returns what was found wrong so far, at input offsets.
func (z *Reader) Problems() []damage.Problem { return z.problems }

// Checksum reports whether every member's CRC-32 and size matched.
func (z *Reader) Checksum() codec.Checksum {
	switch {
	case z.mismatch:
		return codec.ChecksumMismatch
	case z.st != stEnd || z.unknown || z.members == 0:
		return codec.ChecksumUnknown
	}
	return codec.ChecksumOK
}

// Read returns decoded bytes; see the package documentation for what is
// held back and why.
func (z *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if z.r < z.rel {
			n := copy(p, z.buf[z.r:z.rel])
			z.r += n
			return n, nil
		}
		if z.zeros > 0 {
			n := int(min(int64(len(p)), z.zeros))
			clear(p[:n])
			z.zeros -= int64(n)
			z.base += int64(n) // placeholder bytes occupy output offsets too
			return n, nil
		}
		if z.st == stEnd {
			if z.err != nil {
				return 0, z.err
			}
			return 0, io.EOF
		}
		z.step()
	}
}

// out returns the output offset of the next decoded byte.
func (z *Reader) out() int64 { return z.base + int64(z.w) }

// inPos returns the input offset of the next byte the decoder would read.
func (z *Reader) inPos() int64 { return z.src.n - int64(z.br.Buffered()) }

func (z *Reader) step() {
	switch z.st {
	case stHeader:
		z.readHeader()
	case stBody:
		z.readBody()
	case stTrailer:
		z.readTrailer()
	}
}

func (z *Reader) problem(off int64, format string, args ...any) {
	z.problems = append(z.problems, damage.Problem{Layer: layer, Offset: off, Message: fmt.Sprintf(format, args...)})
}

// fail ends the stream with err, after the output decoded so far.
func (z *Reader) fail(err error) {
	z.releaseAll()
	z.err = err
	z.st = stEnd
}

// strictFail ends a strict stream at the first problem.
func (z *Reader) strictFail(kind error, off int64, msg string) {
	z.fail(fmt.Errorf("gzip: %w at input offset %d: %s", kind, off, msg))
}

func (z *Reader) readHeader() {
	pos := z.inPos()
	b, _ := z.br.Peek(maxHeaderLen)
	if z.src.err != nil {
		z.fail(fmt.Errorf("gzip: %w", z.src.err))
		return
	}
	if len(b) == 0 {
		z.st = stEnd
		return
	}
	if b[0] == 0 {
		z.skipZeros() // then parse what follows, at the next step
		return
	}
	h, err := parseHeader(b)
	if errors.Is(err, errShortHeader) && len(b) < maxHeaderLen {
		z.unknown = true
		z.problem(pos, "stream ends inside a member header")
		if z.opt.Strict {
			z.strictFail(codec.ErrTruncated, pos, "stream ends inside a member header")
			return
		}
		z.addSpan(codec.Span{Off: z.out(), State: damage.Lost, Resync: true, MaxLen: -1})
		z.br.Discard(len(b))
		z.st = stEnd
		return
	}
	if err != nil {
		msg := "bad member header: " + err.Error()
		if z.members == 0 && z.out() == 0 && pos == 0 {
			msg = "bad first member header: " + err.Error()
		}
		z.problem(pos, "%s", msg)
		if z.opt.Strict {
			z.strictFail(codec.ErrCorrupt, pos, msg)
			return
		}
		z.unknown = true
		z.br.Discard(1)
		z.resync(pos, 1)
		return
	}
	if h.hcrcBad {
		z.problem(pos, "member header CRC-16 mismatch")
		if z.opt.Strict {
			z.strictFail(codec.ErrCorrupt, pos, "member header CRC-16 mismatch")
			return
		}
	}
	z.br.Discard(h.len)
	if z.fr == nil {
		z.fr = flate.NewReader(z.br)
	} else {
		z.fr.(flate.Resetter).Reset(z.br, nil)
	}
	z.memberIn, z.memberOut = z.inPos(), z.out()
	z.crc, z.size = 0, 0
	z.st = stBody
}

// skipZeros consumes a run of zero bytes after a member: padding, which
// gzip ignores too.
func (z *Reader) skipZeros() {
	pos := z.inPos()
	for {
		b, _ := z.br.Peek(bufSize)
		if len(b) == 0 {
			z.st = stEnd
			return
		}
		n := 0
		for n < len(b) && b[n] == 0 {
			n++
		}
		z.br.Discard(n)
		if n < len(b) {
			z.problem(pos, "%d zero bytes between members", z.inPos()-pos)
			return
		}
	}
}

func (z *Reader) readBody() {
	z.room()
	n, err := z.fr.Read(z.buf[z.w : z.w+chunk])
	if n > 0 {
		z.crc = crc32.Update(z.crc, crc32.IEEETable, z.buf[z.w:z.w+n])
		z.size += uint32(n)
		z.w += n
		z.cps = append(z.cps, checkpoint{z.inPos(), z.out()})
		z.release()
	}
	switch {
	case err == nil:
	case err == io.EOF:
		z.st = stTrailer
	case z.src.err != nil:
		z.fail(fmt.Errorf("gzip: %w", z.src.err))
	default:
		z.corrupt(err)
	}
}

func (z *Reader) readTrailer() {
	pos := z.inPos()
	b, _ := z.br.Peek(trailerLen)
	if len(b) < trailerLen {
		if z.src.err != nil {
			z.fail(fmt.Errorf("gzip: %w", z.src.err))
			return
		}
		z.problem(pos, "stream ends inside a member trailer: CRC-32 not checked")
		if z.opt.Strict {
			z.strictFail(codec.ErrTruncated, pos, "stream ends inside a member trailer")
			return
		}
		z.unknown = true
		z.releaseAll()
		z.br.Discard(len(b))
		z.st = stEnd
		return
	}
	crc := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	size := uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24
	z.br.Discard(trailerLen)
	if crc != z.crc || size != z.size {
		msg := fmt.Sprintf("member output (offset %d, %d bytes) fails its check: CRC-32 %08x, trailer says %08x; size mod 2^32 %d, trailer says %d",
			z.memberOut, z.out()-z.memberOut, z.crc, crc, z.size, size)
		z.problem(pos, "%s", msg)
		if z.opt.Strict {
			z.strictFail(codec.ErrCorrupt, pos, msg)
			return
		}
		z.mismatch = true
	} else {
		z.members++
	}
	z.releaseAll()
	z.st = stHeader
}

// corrupt handles a deflate error: the held output is tainted, and reading
// resumes at the next member, if one can be found.
func (z *Reader) corrupt(err error) {
	pos := z.inPos()
	truncated := errors.Is(err, io.ErrUnexpectedEOF)
	kind, msg := codec.ErrCorrupt, "corrupt deflate data"
	if truncated {
		kind, msg = codec.ErrTruncated, "stream ends inside deflate data"
	}
	var ce flate.CorruptInputError
	if errors.As(err, &ce) {
		msg = fmt.Sprintf("corrupt deflate data (%d bytes into the member)", int64(ce))
	}
	z.problem(pos, "%s", msg)
	if z.opt.Strict {
		z.strictFail(kind, pos, msg)
		return
	}
	z.unknown = true
	if z.rel < z.w {
		// A corrupt deflate stream usually decodes to wrong bytes for a
		// while before an error shows: distrust what was held back. An
		// early end is no different: damage can make the decoder run past
		// the member's true end into the end of the input.
		z.addSpan(codec.Span{Off: z.base + int64(z.rel), Len: int64(z.w - z.rel), State: damage.Tainted})
	}
	z.releaseAll()
	ratio := 1.0
	if in := pos - z.memberIn; in > 0 {
		ratio = float64(z.out()-z.memberOut) / float64(in)
	}
	z.resync(pos, ratio)
}

// resync scans the input for the next member and reports what lies before
// it as lost. ratio (output bytes per input byte) sizes the placeholder.
func (z *Reader) resync(from int64, ratio float64) {
	found := z.scan()
	skipped := z.inPos() - from
	sp := codec.Span{Off: z.out(), State: damage.Lost, Resync: true, MaxLen: -1}
	if !found {
		z.problem(from, "no further gzip member in the remaining %d bytes: the rest of the stream is lost", skipped)
		z.addSpan(sp)
		z.st = stEnd
		return
	}
	est := float64(skipped) * ratio
	if est > maxPlaceholder {
		est = maxPlaceholder
	}
	sp.Len = int64(est) &^ 511
	z.problem(from, "skipped %d bytes to the next gzip member at input offset %d", skipped, z.inPos())
	z.addSpan(sp)
	z.zeros = sp.Len
	z.st = stHeader
}

// scan advances the input to the next plausible member header that decodes
// cleanly, reporting false at the end of the input.
func (z *Reader) scan() bool {
	magic := []byte{id1, id2, cmDeflate}
	for {
		b, _ := z.br.Peek(bufSize)
		if z.src.err != nil || len(b) < fixedHeaderLen {
			z.br.Discard(len(b))
			return false
		}
		i := bytes.Index(b, magic)
		if i < 0 {
			z.br.Discard(len(b) - len(magic) + 1)
			continue
		}
		if i > 0 {
			z.br.Discard(i)
			continue // peek again: the candidate gets a full window
		}
		if plausibleStart(b) && z.trialOK(b, len(b) < bufSize) {
			return true
		}
		z.br.Discard(1)
	}
}

// trialOK decodes the start of the candidate member at b. atEOF says b
// holds the rest of the input.
func (z *Reader) trialOK(b []byte, atEOF bool) bool {
	h, err := parseHeader(b)
	if err != nil {
		return false
	}
	body := b[h.len:]
	z.trialSrc.Reset(body)
	if z.trial == nil {
		z.trial = flate.NewReader(&z.trialSrc)
		z.trialBuf = make([]byte, trialOut)
	} else {
		z.trial.(flate.Resetter).Reset(&z.trialSrc, nil)
	}
	n := 0
	for n < len(z.trialBuf) {
		m, err := z.trial.Read(z.trialBuf[n:])
		n += m
		switch {
		case err == nil:
			continue
		case err == io.EOF:
			used := len(body) - z.trialSrc.Len()
			if used+trailerLen > len(body) {
				return atEOF && n >= 1024
			}
			t := body[used:]
			crc := uint32(t[0]) | uint32(t[1])<<8 | uint32(t[2])<<16 | uint32(t[3])<<24
			size := uint32(t[4]) | uint32(t[5])<<8 | uint32(t[6])<<16 | uint32(t[7])<<24
			return crc == crc32.ChecksumIEEE(z.trialBuf[:n]) && size == uint32(n)
		case errors.Is(err, io.ErrUnexpectedEOF):
			// The input ended (a window of bufSize always holds more
			// than trialOut of output): a truncated member is still worth
			// reading.
			return n >= 1024
		default:
			return false
		}
	}
	return true
}

func (z *Reader) addSpan(s codec.Span) { z.spans = append(z.spans, s) }

// release makes the output available that came from input at least holdIn
// bytes behind the decoder, or all but maxHold bytes of it.
func (z *Reader) release() {
	limit := z.inPos() - holdIn
	k := 0
	for k < len(z.cps) && z.cps[k].in <= limit {
		k++
	}
	if k > 0 {
		z.rel = max(z.rel, int(z.cps[k-1].out-z.base))
		z.cps = append(z.cps[:0], z.cps[k:]...)
	}
	if z.w-z.rel > maxHold {
		z.rel = z.w - maxHold
	}
}

func (z *Reader) releaseAll() {
	z.rel = z.w
	z.cps = z.cps[:0]
}

// room makes space for a chunk of output at buf[w:], moving the bytes not
// yet returned to the front and growing buf when they fill half of it.
func (z *Reader) room() {
	if len(z.buf)-z.w >= chunk {
		return
	}
	n := copy(z.buf, z.buf[z.r:z.w])
	z.base += int64(z.r)
	z.rel -= z.r
	z.w, z.r = n, 0
	if len(z.buf)-z.w < max(chunk, len(z.buf)/2) {
		nb := make([]byte, max(2*len(z.buf), z.w+chunk))
		copy(nb, z.buf[:z.w])
		z.buf = nb
	}
}

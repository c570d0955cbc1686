// Package gzip decodes gzip streams (RFC 1952) as vzdump writes them
// (`gzip --rsyncable` or `pigz --rsyncable`) into a codec.Reader: the output
// bytes plus an account of which of them are damaged. The deflate decoder
// (RFC 1951) is our own, so that it can go on past damage.
//
// gzip's only integrity check is a member's CRC-32 and size, at its end,
// and corrupt deflate data usually decodes to wrong bytes for a while before
// an error shows. So output is held back until it is known good: up to a
// sync point (a stored block, such as the empty one pigz and gzip
// --rsyncable end their chunks with, marks a place where a decoder that
// has gone wrong is right again: an error after it lies after it), or,
// without one, until the decoder is a few blocks and holdIn input bytes
// further on. When an error shows (a final block not followed by a
// member's end is one too), the held output is dropped and the decoder
// looks for the next place to resume: a member, a stored block, or a
// dynamic block header at any bit offset, that decodes a run of blocks.
// The output it skipped is a Lost span with Resync set (its length is an
// estimate). Decoding then resumes with the 32 KiB window before that place
// unknown: bytes copied from it, or from bytes copied from it, are Tainted,
// never guessed. When the input ends inside deflate data, what was decoded
// is kept but what was held is Tainted: damage that runs on over the end
// looks like a cut.
//
// A member decoded without a loss is checked by its CRC-32 and size; one
// that fails with no deflate error has Checksum Mismatch and no span
// (nothing says where the damage is: a small damage usually decodes
// without error, as Huffman codes fall back into step). A member with a
// loss cannot be checked: its checksum is unknown.
package gzip

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

const (
	// chunk is the most output decoded per step.
	chunk = 256 << 10
	// historySize is the output buffer's usual size.
	historySize = 4 << 20
	// holdBlocks and holdIn: without a sync point, output is released once
	// the decoder is holdBlocks blocks and holdIn input bytes past the
	// block that produced it (corrupt deflate data shows as an error within
	// that, measured: see the package tests).
	holdBlocks = 4
	holdIn     = 64 << 10
	// maxHold caps the held output (highly compressible data).
	maxHold = 16 << 20
	// maxKeep caps the input kept behind the decoder to look for a place
	// to resume.
	maxKeep = 4 << 20
	// maxPlaceholder caps the zeros standing in for a skipped region.
	maxPlaceholder = 64 << 20
	// maxExpand bounds the output of one bit of deflate data: a match of
	// 258 bytes takes at least 2 bits.
	maxExpand = 129
)

const layer = "gzip"

type state uint8

const (
	stHeader state = iota
	stBody
	stTrailer
	stEnd
)

// mark is a place in the stream: a bit offset of the input and the output
// offset of what it decodes to.
type mark struct{ bit, out int64 }

// Reader is a salvaging gzip decoder. Create it with NewReader.
type Reader struct {
	opt codec.Options
	in  input
	h   *history
	f   inflater
	st  state

	// The member being decoded: where its deflate data starts, where its
	// output starts, its running CRC-32 (over output up to crcAt) and
	// whether it was decoded without a loss.
	member mark
	crc    uint32
	crcAt  int64
	exact  bool
	placed int64  // placeholder bytes standing for losses in the member
	sums   [3]int // members by check: ok, mismatch, unknown

	// Holding back: output before rel may be returned; taints before it
	// were reported as spans. blocks holds the starts of recent blocks,
	// sync a stored block whose output offset becomes a release point once
	// the block after it has decoded too.
	rel      mark
	blocks   []mark
	sync     mark
	syncEnds int // block ends since sync was seen (-1: none pending)

	// Resync search.
	th    *history
	trial inflater

	// pending placeholder bytes of a loss still to write; afterPending:
	// decoding resumed inside a stored block, a sync point once written.
	pending      int64
	afterPending bool

	spans    []codec.Span
	frozen   int // spans[:frozen] were handed out
	problems []damage.Problem
	nprob    int // problems found (some not kept: codec.Options.MaxProblems)
	err      error
}

const (
	sumOK = iota
	sumMismatch
	sumUnknown
)

// NewReader returns a Reader decoding the gzip stream r. It fails only when
// r does not start with the gzip magic; damage anywhere else is reported by
// the Reader (or, with opt.Strict, returned by Read).
func NewReader(r io.Reader, opt codec.Options) (codec.Reader, error) {
	z := &Reader{opt: opt, syncEnds: -1}
	z.in.src = r
	b := z.in.at(0, 2)
	if len(b) < 2 || b[0] != id1 || b[1] != id2 {
		if z.in.err != nil {
			return nil, fmt.Errorf("gzip: %w", z.in.err)
		}
		if len(b) == 0 || len(b) == 1 && b[0] == id1 {
			return nil, fmt.Errorf("gzip: %w: no complete header", codec.ErrTruncated)
		}
		return nil, fmt.Errorf("gzip: %w", errNotGzip)
	}
	z.h = newHistory(historySize)
	z.f.in, z.f.h = &z.in, z.h
	z.rel = mark{0, 0}
	return z, nil
}

// Spans returns the damaged output ranges found so far.
func (z *Reader) Spans() []codec.Span {
	z.frozen = len(z.spans)
	return z.spans[:len(z.spans):len(z.spans)]
}

// TrimSpans implements codec.Trimmer.
func (z *Reader) TrimSpans(off int64) {
	z.spans, z.frozen = codec.TrimSpans(z.spans, z.frozen, off)
}

// ProblemCount implements codec.ProblemCounter.
func (z *Reader) ProblemCount() int { return z.nprob }

// Problems returns what was found wrong so far, at input offsets.
func (z *Reader) Problems() []damage.Problem { return z.problems[:len(z.problems):len(z.problems)] }

// Checksum reports whether every member's CRC-32 and size matched.
func (z *Reader) Checksum() codec.Checksum {
	switch {
	case z.sums[sumMismatch] > 0:
		return codec.ChecksumMismatch
	case z.st != stEnd || z.sums[sumUnknown] > 0 || z.sums[sumOK] == 0:
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
		if rel := int(z.rel.out - z.h.base); z.h.r < rel {
			n := copy(p, z.h.buf[z.h.r:rel])
			z.h.r += n
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

func (z *Reader) step() {
	if z.pending > 0 {
		z.writePending()
		return
	}
	switch z.st {
	case stHeader:
		z.readHeader()
	case stBody:
		z.readBody()
	case stTrailer:
		z.readTrailer()
	}
}

func (z *Reader) problem(kind damage.Kind, off int64, format string, args ...any) {
	z.nprob++
	if codec.KeepProblem(len(z.problems), z.opt.MaxProblems, kind) {
		z.problems = append(z.problems, damage.Problem{Layer: layer, Offset: off, Message: fmt.Sprintf(format, args...), Kind: kind})
	}
}

// fail ends the stream with err, after the output released so far.
func (z *Reader) fail(err error) {
	z.err = err
	z.st = stEnd
}

// strictFail ends a strict stream at the first problem.
func (z *Reader) strictFail(kind error, off int64, msg string) {
	z.fail(fmt.Errorf("gzip: %w at input offset %d: %s", kind, off, msg))
}

// readErr ends the stream at a read error.
func (z *Reader) readErr() bool {
	if z.in.err == nil {
		return false
	}
	z.releaseAll()
	z.fail(fmt.Errorf("gzip: %w", z.in.err))
	return true
}

// ---- members ----

func (z *Reader) readHeader() {
	pos := z.f.ip
	z.in.keep = pos
	b := z.in.at(pos, maxHeaderLen)
	if z.readErr() {
		return
	}
	if len(b) == 0 {
		z.st = stEnd
		return
	}
	if b[0] == 0 {
		z.skipZeros()
		return
	}
	h, err := parseHeader(b)
	if errors.Is(err, errShortHeader) && len(b) < maxHeaderLen {
		z.problem(damage.Truncated, pos, "stream ends inside a member header")
		if z.opt.Strict {
			z.strictFail(codec.ErrTruncated, pos, "stream ends inside a member header")
			return
		}
		z.sums[sumUnknown]++
		z.addSpan(codec.Span{Off: z.h.pos(), State: damage.Lost, Resync: true, MaxLen: -1})
		z.st = stEnd
		return
	}
	if err != nil {
		msg := "bad member header: " + err.Error()
		z.problem(damage.Corrupt, pos, "%s", msg)
		if z.opt.Strict {
			z.strictFail(codec.ErrCorrupt, pos, msg)
			return
		}
		z.sums[sumUnknown]++
		z.resync(pos*8+1, pos)
		return
	}
	if h.hcrcBad {
		z.problem(damage.Corrupt, pos, "member header CRC-16 mismatch")
		if z.opt.Strict {
			z.strictFail(codec.ErrCorrupt, pos, "member header CRC-16 mismatch")
			return
		}
	}
	z.startMember(pos + int64(h.len))
}

// startMember starts decoding a member whose deflate data starts at input
// offset p, with an empty window.
func (z *Reader) startMember(p int64) {
	z.f.startAt(p * 8)
	z.f.low = z.h.pos()
	z.member = mark{p * 8, z.h.pos()}
	z.crc, z.crcAt, z.exact, z.placed = 0, z.h.pos(), true, 0
	z.blocks = z.blocks[:0]
	z.syncEnds = -1
	z.st = stBody
}

// skipZeros consumes a run of zero bytes after a member: padding, which
// gzip ignores too.
func (z *Reader) skipZeros() {
	pos := z.f.ip
	for {
		z.in.keep = z.f.ip
		b := z.in.at(z.f.ip, readSize)
		if len(b) == 0 {
			z.st = stEnd
			return
		}
		n := 0
		for n < len(b) && b[n] == 0 {
			n++
		}
		z.f.ip += int64(n)
		if n < len(b) {
			z.problem(damage.Corrupt, pos, "%d zero bytes between members", z.f.ip-pos)
			return
		}
	}
}

func (z *Reader) readBody() {
	z.h.reserve(chunk + maxMatch)
	ev, err := z.f.step(z.h.pos() + chunk)
	if z.exact {
		z.crc = crc32.Update(z.crc, crc32.IEEETable, z.h.buf[z.crcAt-z.h.base:z.h.w])
		z.crcAt = z.h.pos()
	}
	if err != nil {
		if !z.readErr() {
			z.damaged(err)
		}
		return
	}
	switch ev {
	case evHeader:
		z.blockStarted()
	case evBlock:
		z.blockEnded()
	case evEnd:
		z.blockEnded()
		z.st = stTrailer
	}
	z.release()
}

func (z *Reader) readTrailer() {
	pos := z.f.ip
	b := z.in.at(pos, trailerLen)
	if z.readErr() {
		return
	}
	if len(b) < trailerLen {
		z.problem(damage.Truncated, pos, "stream ends inside a member trailer: CRC-32 not checked")
		if z.opt.Strict {
			z.strictFail(codec.ErrTruncated, pos, "stream ends inside a member trailer")
			return
		}
		z.sums[sumUnknown]++
		z.releaseAll()
		z.st = stEnd
		return
	}
	crc := le32(b)
	size := le32(b[4:])
	n := z.h.pos() - z.member.out
	verified := z.exact && crc == z.crc && size == uint32(n)
	if !verified && !z.membersEnd(pos) {
		// Not followed by the end, padding or a member: the last block was
		// not the member's last one, but damage decoded as one.
		z.damaged(&errDeflate{pos * 8, "a final block not followed by a member's end"})
		return
	}
	z.f.ip += trailerLen
	switch {
	case verified:
		z.sums[sumOK]++
	case !z.exact:
		z.sums[sumUnknown]++
		// the placeholders stood for losses whose total the size field gives
		if diff := int64(int32(size - uint32(n))); diff != 0 {
			z.problem(damage.Corrupt, pos, "member output not checked (a loss of unknown length); by its size field the losses were %d bytes, not the %d placeholder bytes", z.placed+diff, z.placed)
		}
	default:
		msg := fmt.Sprintf("member output (offset %d, %d bytes) fails its check: CRC-32 %08x, trailer says %08x; size mod 2^32 %d, trailer says %d",
			z.member.out, n, z.crc, crc, uint32(n), size)
		z.problem(damage.ChecksumMismatch, pos, "%s", msg)
		if z.opt.Strict {
			z.strictFail(codec.ErrCorrupt, pos, msg)
			return
		}
		z.sums[sumMismatch]++
	}
	z.releaseAll()
	z.st = stHeader
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// ---- holding output back ----

// blockStarted notes a block header: a release point for later, and a sync
// point if it is a stored block.
func (z *Reader) blockStarted() {
	m := mark{z.f.blockStart, z.h.pos()}
	if len(z.blocks) == holdBlocks+4 {
		copy(z.blocks, z.blocks[1:])
		z.blocks = z.blocks[:len(z.blocks)-1]
	}
	z.blocks = append(z.blocks, m)
	z.in.keep = max(m.bit/8, z.f.ip-maxKeep)
	if z.f.st == bsStored {
		z.confirmSync()
		z.sync, z.syncEnds = m, 0
	}
}

// blockEnded confirms a pending sync point once the block after the stored
// block has decoded too.
func (z *Reader) blockEnded() {
	if z.syncEnds >= 0 {
		z.syncEnds++
		if z.syncEnds >= 2 {
			z.confirmSync()
		}
	}
}

func (z *Reader) confirmSync() {
	if z.syncEnds > 0 {
		z.setRel(z.sync)
	}
	z.syncEnds = -1
}

// release moves the release point as far as the rules allow (see the
// package documentation).
func (z *Reader) release() {
	if n := len(z.blocks) - holdBlocks; n > 0 {
		for i := n - 1; i >= 0; i-- {
			if z.f.bitPos()-z.blocks[i].bit >= holdIn*8 {
				z.setRel(z.blocks[i])
				break
			}
		}
	}
	if z.h.pos()-z.rel.out > maxHold {
		// where that output came from is not noted: the last release
		// point's input offset stays, a bound for a loss's MaxLen
		z.setRel(mark{z.rel.bit, z.h.pos() - maxHold})
	}
}

func (z *Reader) releaseAll() { z.setRel(mark{z.f.bitPos(), z.h.pos()}) }

// setRel moves the release point to m (if it is further on) and reports
// the taints before it as spans.
func (z *Reader) setRel(m mark) {
	if m.out <= z.rel.out {
		return
	}
	ts := z.h.taints
	for i := z.h.firstAfter(z.rel.out); i < len(ts) && ts[i].start < m.out; i++ {
		a, b := max(ts[i].start, z.rel.out), min(ts[i].end, m.out)
		z.addSpan(codec.Span{Off: a, Len: b - a, State: damage.Tainted})
	}
	z.rel = m
}

// addSpan appends a span, merging it into the last one when that was not
// handed out yet and they touch with the same state.
func (z *Reader) addSpan(s codec.Span) {
	if n := len(z.spans); n > z.frozen && !s.Resync {
		l := &z.spans[n-1]
		if !l.Resync && l.State == s.State && l.End() == s.Off {
			l.Len += s.Len
			return
		}
	}
	z.spans = append(z.spans, s)
}

// ---- damage ----

// damaged handles a deflate error: the held output is dropped (or, when
// the input ends, tainted), and decoding resumes where the data decodes
// again.
func (z *Reader) damaged(err error) {
	truncated := isTruncation(err)
	var pos int64
	var de *errDeflate
	switch {
	case errors.As(err, &de):
		pos = de.bit / 8
	default:
		pos = z.in.end()
	}
	kind, pk, msg := codec.ErrCorrupt, damage.Corrupt, err.Error()
	if de != nil {
		msg = "corrupt deflate data: " + de.msg
	}
	if truncated {
		kind, pk, msg = codec.ErrTruncated, damage.Truncated, "stream ends inside deflate data"
	}
	z.problem(pk, pos, "%s", msg)
	if z.opt.Strict {
		z.strictFail(kind, pos, msg)
		return
	}
	z.exact = false
	if truncated {
		// A cut leaves what was decoded before it right, but damage that
		// runs on to the end of the input (over the trailer) looks the
		// same: the held output is kept, and distrusted.
		if z.rel.out < z.h.pos() {
			z.addSpan(codec.Span{Off: z.rel.out, Len: z.h.pos() - z.rel.out, State: damage.Tainted})
			z.rel.out = z.h.pos()
		}
		z.releaseAll()
		z.sums[sumUnknown]++
		z.addSpan(codec.Span{Off: z.h.pos(), State: damage.Lost, Resync: true, MaxLen: -1})
		z.st = stEnd
		return
	}
	z.h.truncate(z.rel.out)
	z.sums[sumUnknown]++
	z.resync(z.f.blockStart+1, pos)
}

// resync looks for the next place to resume from bit offset from on (the
// damage showed at input offset at), reports what lies between the release
// point and there as a Lost span with Resync set, and resumes.
func (z *Reader) resync(from, at int64) {
	c, ok := z.search(from)
	sp := codec.Span{Off: z.rel.out, State: damage.Lost, Resync: true, MaxLen: -1}
	if !ok {
		z.problem(damage.Corrupt, at, "no place to resume decoding after the damage: the rest of the stream (%d bytes) is lost", z.in.end()-from/8)
		z.addSpan(sp)
		z.st = stEnd
		return
	}
	skipped := c.bit - z.rel.bit
	sp.Len = min(int64(float64(skipped)/8*z.ratio()), maxPlaceholder) &^ 511
	sp.MaxLen = max(skipped*maxExpand, sp.Len)
	z.problem(damage.Corrupt, at, "skipped input up to offset %d (%s) after the damage", c.bit/8, c.kind)
	z.addSpan(sp)
	z.pending = sp.Len
	z.placed += sp.Len
	z.rel.bit = c.bit
	z.blocks = z.blocks[:0]
	z.syncEnds = -1
	z.exact = false
	if c.kind == candMember {
		z.f.ip = c.bit / 8
		z.st = stHeader
		return
	}
	// the window before the place is unknown: copies from it are tainted
	z.h.floor = z.h.pos() + z.pending
	if c.kind == candStored {
		z.f.startStored(c.bit/8, c.stored)
		if z.pending == 0 {
			z.blockStarted()
		} else {
			z.afterPending = true
		}
	} else {
		z.f.startAt(c.bit)
	}
	z.f.low = noLimit
	z.st = stBody
}

// writePending writes placeholder bytes of a loss (a chunk at a time, as
// they are read) and releases them.
func (z *Reader) writePending() {
	k := int(min(z.pending, chunk))
	z.h.reserve(k)
	clear(z.h.buf[z.h.w : z.h.w+k])
	z.h.w += k
	z.pending -= int64(k)
	z.rel.out = z.h.pos()
	if z.pending == 0 && z.afterPending {
		z.afterPending = false
		z.blockStarted() // the stored block resumed in
	}
}

// ratio returns output bytes per input byte decoded lately, for sizing a
// loss.
func (z *Reader) ratio() float64 {
	a, b := z.member, mark{z.f.bitPos(), z.h.pos()}
	if len(z.blocks) > 1 {
		a, b = z.blocks[0], z.blocks[len(z.blocks)-1]
	}
	if b.bit-a.bit < 8<<10 {
		return 3
	}
	return min(max(float64(b.out-a.out)/float64(b.bit-a.bit)*8, 0.5), maxExpand*8)
}

package zstd

import (
	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// Holding output back.
//
// Physical damage is contiguous. When the chain of block headers breaks at
// input offset X (a header that cannot be right, or one whose size leads
// to one), the damage very likely began before X: a garbage run that
// starts inside block B and covers the next header often leaves B
// decodable, with wrong bytes. So a chain break at X taints the output of
// the blocks before X, walking back from X: the block ending at X, and
// before it, while within [X-holdIn, X), every block whose content cannot
// reveal garbage (raw and RLE blocks) until the first compressed block,
// which is tainted too — garbage that began inside an earlier compressed
// block would almost surely have made that block fail (measured: 1 in 1890
// placements that reach the next header decode cleanly). Through the
// history, whatever copies from tainted output is tainted too.
// A block whose valid header leads to a valid next header but whose
// content fails to decode is different: a run that began earlier would
// almost surely have broken that header, so the blocks before it stay
// clean.
//
// Since spans for bytes already returned must exist, output (and its
// spans) is held back until the chain has been read holdIn bytes past the
// end of the block that produced it. Everything is released at the end of
// the input; if more than history.holdMax bytes are held (highly
// compressible data, where holdIn of input holds dozens of block headers
// that any garbage run would have broken), the oldest is released anyway.
//
// The rule of what a break taints is the salvage policy's (salvage.retaint);
// this file keeps the account: the marks, the held output and its spans.

// holdIn is how far past a block the chain must be read before the
// block's output is released.
const holdIn = 128 << 10

// mark records that the output before out came from blocks whose input
// ends at or before in. soft marks a block whose content could hide
// garbage without failing to decode (raw, RLE, placeholders).
type mark struct {
	in, out int64
	soft    bool
	// full: a compressed block that decoded, in a frame where every block
	// before it decoded to exactly Block_Maximum_Size, to that size too
	// (zstd up to 1.5.6 writes such frames). Garbage in its sequences
	// would almost surely have changed its size as well as failed its
	// decoding, so a chain break after it does not taint it.
	full bool
	// deviant: a compressed block that decoded to less than
	// Block_Maximum_Size in a frame where every block before it had that
	// size: if the next block fails, this one is suspect.
	deviant bool
}

// holder is the held-back part of the output.
type holder struct {
	marks []mark // unreleased, in order; marks[head:] are live
	head  int
	rel   int64        // output before rel is released
	spans []codec.Span // spans not yet released, ordered
}

// inPos returns the input offset of the first structure not yet checked:
// a chain break can only be found at or after it.
func (z *Reader) inPos() int64 {
	if z.state == stClean {
		return z.clean.inEnd
	}
	return z.pos
}

// markBlock records a block (or blocks) ending at input offset in, whose
// output ends at the current output position, and releases what may be.
func (z *Reader) markBlock(in int64, soft bool) {
	z.markAt(mark{in: in, out: z.h.pos() + z.pending, soft: soft})
}

// markDecoded records a block that decoded to n bytes, ending at input
// offset in (see mark.full).
func (z *Reader) markDecoded(in int64, soft bool, n int64) {
	full := !soft && n == int64(z.fh.blockMax) && !z.notFull
	deviant := !soft && n != int64(z.fh.blockMax) && !z.notFull
	if n != int64(z.fh.blockMax) {
		z.notFull = true
	}
	z.markAt(mark{in: in, out: z.h.pos() + z.pending, soft: soft, full: full, deviant: deviant})
}

// markAt records that the output before m.out came from input before m.in.
func (z *Reader) markAt(m mark) {
	if n := len(z.hold.marks); n > z.hold.head && z.hold.marks[n-1].out >= m.out {
		z.hold.marks[n-1].in = max(z.hold.marks[n-1].in, m.in)
	} else {
		z.hold.marks = append(z.hold.marks, m)
	}
	z.releaseHeld()
}

// releaseHeld releases the output of blocks the chain has moved holdIn
// past, and the oldest output beyond holdMax.
func (z *Reader) releaseHeld() {
	hd := &z.hold
	lim := z.inPos() - holdIn
	hmax := z.h.holdMax()
	for hd.head < len(hd.marks) {
		m := hd.marks[hd.head]
		if m.in > lim && z.h.pos()-hd.rel <= hmax {
			break
		}
		z.releaseTo(m.out)
		hd.head++
	}
	if hd.head == len(hd.marks) {
		hd.marks, hd.head = hd.marks[:0], 0
	} else if hd.head > 1024 && hd.head > len(hd.marks)/2 {
		n := copy(hd.marks, hd.marks[hd.head:])
		hd.marks, hd.head = hd.marks[:n], 0
	}
}

// releaseTo makes the output before o readable and moves the spans that
// start before o to Spans (a span crossing o is split there).
func (z *Reader) releaseTo(o int64) {
	hd := &z.hold
	if o <= hd.rel {
		return
	}
	z.hashTo(o)
	hd.rel = o
	i := 0
	for ; i < len(hd.spans) && hd.spans[i].Off < o; i++ {
		s := hd.spans[i]
		if s.End() > o && !s.Resync {
			head := s
			head.Len = o - s.Off
			z.addSpan(head)
			hd.spans[i].Len -= head.Len
			hd.spans[i].Off = o
			break
		}
		z.addSpan(s)
	}
	hd.spans = append(hd.spans[:0], hd.spans[i:]...)
}

// releaseAll releases everything (at the end of the input).
func (z *Reader) releaseAll() {
	z.releaseTo(z.h.pos() + z.pending)
	for _, s := range z.hold.spans {
		z.addSpan(s)
	}
	z.hold.spans = z.hold.spans[:0]
	z.hold.marks, z.hold.head = z.hold.marks[:0], 0
}

// holdSpan adds a span for output that is not released yet (or, for the
// part before the release point, to Spans at once).
func (z *Reader) holdSpan(s codec.Span) {
	if s.Len <= 0 && !s.Resync {
		return
	}
	if s.Len > 0 {
		z.ckptTouched(s.Off)
	}
	if s.Off < z.hold.rel && !s.Resync {
		head := s
		head.Len = min(s.Len, z.hold.rel-s.Off)
		z.addSpan(head)
		s.Off += head.Len
		s.Len -= head.Len
		if s.Len <= 0 {
			return
		}
	}
	z.hold.spans = appendSpan(z.hold.spans, s)
}

// appendSpan appends s to spans, merging it into the last one when they
// touch with the same state and neither is a Resync span.
func appendSpan(spans []codec.Span, s codec.Span) []codec.Span {
	if n := len(spans); n > 0 && mergeable(spans[n-1], s) {
		spans[n-1].Len += s.Len
		return spans
	}
	return append(spans, s)
}

func mergeable(l, s codec.Span) bool {
	return !l.Resync && !s.Resync && l.State == s.State && l.Cond == s.Cond && l.Donor == s.Donor && l.End() == s.Off
}

// taintHeld taints the held output from output offset a up to cur (lost
// bytes stay lost, Cond bytes become plainly tainted), in the history and
// in the held spans, and lets a donor replace it (donateHeld).
func (z *Reader) taintHeld(a, cur int64) {
	hd := &z.hold
	if a >= cur {
		return
	}
	z.ckptTouched(a)
	z.h.addTaint(a, cur, lvTainted)
	// Spans: only the unreleased part can change (the part before rel is
	// already tainted when this is a replay after Resize).
	a = max(a, hd.rel)
	old := hd.spans
	out := z.scratch[:0]
	p := a
	for _, s := range old {
		if s.End() <= a {
			out = appendSpan(out, s)
			continue
		}
		if s.State == damage.Lost {
			// kept whole: lost bytes stay lost, and a Resync span is one
			// loss (split, its head was grown over its tail by lose)
			if s.Off > p {
				out = appendSpan(out, codec.Span{Off: p, Len: s.Off - p, State: damage.Tainted})
			}
			out = appendSpan(out, s)
			p = max(p, s.End())
			continue
		}
		if s.Off < a {
			head := s
			head.Len = a - s.Off
			out = appendSpan(out, head)
		}
	}
	if cur > p {
		out = appendSpan(out, codec.Span{Off: p, Len: cur - p, State: damage.Tainted})
	}
	z.scratch = old[:0]
	hd.spans = out
	z.donateHeld(a, z.h.pos())
}

// emitSpans turns the taints of [start, end) into spans and reports
// whether there were any. A block with many small taints becomes one span.
func (z *Reader) emitSpans(start, end int64) bool {
	ts := z.h.taints
	i := len(ts)
	for i > 0 && ts[i-1].end > start {
		i--
	}
	ts = ts[i:]
	if len(ts) == 0 {
		return false
	}
	// Taints of one kind (Cond, or not) closer than mergeGap become one
	// span: thousands of tiny spans help nobody. Cond and plain taints are
	// not merged, or Cond bytes would be lost to the worse state, except,
	// for a coarse reader (codec.Options.Coarse), short islands of Cond
	// bytes within plain taints (condIsland).
	a, b, st := max(ts[0].start, start), min(ts[0].end, end), ts[0].state
	for k := 1; k < len(ts); k++ {
		t := ts[k]
		if t.start-b < mergeGap && t.state.class() == st.class() {
			b, st = min(t.end, end), max(st, t.state)
			continue
		}
		if st == lvTainted && z.coarse {
			if j := condIsland(ts, k, b, end); j > k {
				b, k = ts[j-1].end, j-1
				continue
			}
		}
		z.holdSpan(levelSpan(a, b, st))
		a, b, st = t.start, min(t.end, end), t.state
	}
	z.holdSpan(levelSpan(a, b, st))
	return true
}

// mergeGap: taints of one kind closer than this become one span.
const mergeGap = 64

// condIsland looks at the Cond taints from ts[k] on, after plain tainted
// bytes ending at b: if they lie within mergeGap of each other and of b,
// span less than islandMax, and plain tainted bytes (lvTainted) follow
// within mergeGap, before end, it returns the index of that plain taint
// (else k). Such an island is reported plainly tainted with its
// surroundings (codec.Options.Coarse): a reader that accounts damage in
// 512-byte sectors (the VMA reader) mostly finds plain taint in the same
// sectors and blocks anyway; where it does not, a sector or block counts
// as tainted where it was Cond or clean, never the reverse. Without this,
// the alternation of Cond and plain taints after a loss of unknown length
// costs a span per few bytes (measured: 11 million spans, 330 MB, for a
// 512 MiB stream with 30 damaged places; the VMA report is the same).
func condIsland(ts []taint, k int, b, end int64) int {
	first, last := ts[k].start, b
	j := k
	for ; j < len(ts) && ts[j].state == lvCond && ts[j].start-last < mergeGap; j++ {
		last = ts[j].end
	}
	if j == k || j == len(ts) || last-first >= islandMax {
		return k
	}
	if t := ts[j]; t.state != lvTainted || t.start-last >= mergeGap || t.end > end {
		return k
	}
	return j
}

// islandMax bounds the Cond islands condIsland merges: the sector the VMA
// reader widens damage to (vma.damageUnit).
const islandMax = 512

func levelSpan(a, b int64, lv level) codec.Span {
	st, cond := lv.span()
	return codec.Span{Off: a, Len: b - a, State: st, Cond: cond, Donor: lv == lvDonor}
}

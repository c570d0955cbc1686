package zstd

import (
	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// Donor re-decoding.
//
// A second pass over a stream the first pass salvaged (codec.Options.Donor)
// decodes exactly as the first did — the same blocks lost at the same input
// offsets — with two differences:
//
//   - A loss whose true length the first pass established (LossLen, at
//     the output offset where the loss starts) is of known length from
//     the start: no Resync span, no Cond bytes after it (matches that
//     reach back across it copy from the true distance), and the frame's
//     output length stays exact.
//   - Output the first pass lost — the placeholders of such a loss, a
//     match whose repeat offset was lost, a block whose literals could not
//     be decoded — takes the donor's bytes where it has them (level
//     lvDonor), so that every match that copies them yields the donor's
//     bytes too, not taint.
//
// Every byte of output, placeholders and donated bytes included, goes into
// the frame's hash: when the frame's checksum then matches, the output is
// the original, bit for bit, and the donor was right wherever it was used.
// When it does not, donated bytes and what copies them are reported as
// Donor spans (another source's, not known right), and what depends on
// output the donor did not have stays tainted or lost.

// loseKnown starts (or grows) a loss whose true length the donor knows. It
// returns false when there is none: the loss is of unknown length.
func (z *Reader) loseKnown() (at, grow int64, ok bool) {
	if z.donor == nil {
		return 0, 0, false
	}
	if z.afterResync {
		// Nothing decoded since the latest loss: this one is part of it.
		if z.gapKnown {
			return z.gap.off + z.gap.est, 0, true
		}
		return 0, 0, false
	}
	off := z.h.pos() + z.pending
	l, known := z.donor.Loss(off)
	if !known || l.Len < 0 || l.Off != off {
		z.gapKnown = false
		return 0, 0, false
	}
	z.gap = gap{off: off, est: l.Len, maxLen: l.Len}
	z.gapKnown, z.gapLoss = true, l
	z.cp.valid, z.cp.resumed = false, false // nothing to resize
	z.in.unpin()
	z.h.addTaint(off, off+l.Len, lvLost)
	z.pending += l.Len
	z.frameN += l.Len
	z.afterResync = true
	z.d.reps = [3]uint32{}
	return off, l.Len, true
}

// resumeKnown is called when a block at z.pos, the first after a loss,
// decoded (output [start, …) from h.buf[w0:]). In a first pass it notes
// where decoding resumed. In a second pass, after a loss of known length,
// decoding must resume where the first pass did, or the length would not
// be right: a block before that place decodes now (the first pass failed
// it, at the distances its estimate gave) — it is rolled back and decoding
// jumps to the first pass's resume point, from unknown state, as after a
// resync; it reports true then. Resuming beyond that place (never seen)
// would leave the output after it at an unknown offset: a Resync span of
// no length says so.
func (z *Reader) resumeKnown(start int64, w0 int) bool {
	if z.donor == nil {
		if n := len(z.losses); n > 0 && z.losses[n-1].Resume < 0 {
			z.losses[n-1].Resume = z.pos
		}
		return false
	}
	if !z.gapKnown {
		return false
	}
	switch r := z.gapLoss.Resume; {
	case z.pos < r:
		z.h.truncateTaints(start)
		z.h.w = w0
		z.d.forget()
		z.pos = r
		return true
	case z.pos > r:
		z.holdSpan(codec.Span{Off: start, State: damage.Lost, Resync: true, MaxLen: -1})
		z.exact = false
	}
	z.gapKnown = false
	return false
}

// noteLoss records, in a first pass, the latest loss of unknown length
// as it now stands (Losses).
func (z *Reader) noteLoss() {
	if z.donor != nil {
		return
	}
	l := codec.Loss{Off: z.gap.off, Len: z.gap.est, Resume: -1}
	if n := len(z.losses); n > 0 && z.losses[n-1].Off == l.Off {
		z.losses[n-1].Len = l.Len
		return
	}
	if len(z.losses) < maxLosses {
		z.losses = append(z.losses, l)
	}
}

// maxLosses bounds the losses a Reader lists.
const maxLosses = 1 << 16

// resizeLoss records a Resize: the loss at off has trueLen bytes; the
// losses after it will be made anew.
func (z *Reader) resizeLoss(off, trueLen int64) {
	for i, l := range z.losses {
		if l.Off == off {
			z.losses[i].Len = trueLen
			z.losses = z.losses[:i+1]
			return
		}
	}
}

// Losses implements codec.LossLister: the losses of unknown length of a
// first pass, with their lengths as estimated or resized.
func (z *Reader) Losses() []codec.Loss { return append([]codec.Loss(nil), z.losses...) }

// donatePending completes writePending in a second pass: the placeholders
// just written at output offset p0 (b) take the donor's bytes where it has
// them, and go into the frame's hash. The spans of a loss of known length
// are emitted here, piece by piece.
func (z *Reader) donatePending(p0 int64, b []byte) {
	if z.donor == nil {
		return
	}
	if z.gapKnown && z.afterResync {
		pieces := z.donor.Donate(p0, b)
		z.h.truncateTaints(p0)
		z.setPieces(p0, p0+int64(len(b)), pieces, lvLost, true)
		if z.pending > 0 {
			end := z.h.pos()
			z.h.addTaint(end, end+z.pending, lvLost)
		}
	}
}

// hashOut adds decoded output to the frame's hash; a second pass hashes
// output only as it is released (hashTo), since donations may still
// change held output.
func (z *Reader) hashOut(b []byte) {
	if z.donor == nil {
		z.hash.Write(b)
	}
}

// hashTo hashes, in a second pass, the output before o not hashed yet.
func (z *Reader) hashTo(o int64) {
	if z.donor == nil || o <= z.hashed {
		return
	}
	h := &z.h
	o = min(o, h.pos())
	if z.hashed < h.base {
		z.hashed = -1 << 62 // slid out unhashed: the frame cannot be checked
		return
	}
	if o > z.hashed {
		z.hash.Write(h.buf[z.hashed-h.base : o-h.base])
		z.hashed = o
	}
}

// hashFrame completes the frame's hash before its checksum is compared:
// in a second pass the output is released up to the frame's end. It
// reports false when the hash could not cover every byte.
func (z *Reader) hashFrame() bool {
	if z.donor == nil {
		return true
	}
	z.releaseTo(z.h.pos())
	return z.hashed == z.h.pos()
}

// donateHeld lets the donor replace held output [a, b) that a chain break
// tainted (a garbage run may have let its block decode, wrongly): where the
// bytes are tainted (not lost, not donated already) and the donor has
// them, they become the donor's.
func (z *Reader) donateHeld(a, b int64) {
	h := &z.h
	if z.donor == nil || b <= a || a < h.base {
		return
	}
	var tainted []taint
	for i := h.firstAfter(a); i < len(h.taints) && h.taints[i].start < b; i++ {
		if t := h.taints[i]; t.state == lvTainted {
			tainted = append(tainted, taint{max(t.start, a), min(t.end, b), lvTainted})
		}
	}
	if len(tainted) == 0 {
		return
	}
	tmp := make([]byte, b-a)
	for _, pc := range z.donor.Donate(a, tmp) {
		for _, t := range tainted {
			lo, hi := max(pc.Off, t.start), min(pc.Off+pc.Len, t.end)
			if hi <= lo {
				continue
			}
			copy(h.buf[lo-h.base:hi-h.base], tmp[lo-a:hi-a])
			h.setLevel(lo, hi, lvDonor)
			z.hold.spans = setSpan(z.hold.spans, levelSpan(lo, hi, lvDonor))
		}
	}
}

// setLevel sets [a, b) to lv, whatever the taints there were.
func (h *history) setLevel(a, b int64, lv level) {
	var before, after []taint
	for _, t := range h.taints {
		if t.start < a {
			before = append(before, taint{t.start, min(t.end, a), t.state})
		}
		if t.end > b {
			after = append(after, taint{max(t.start, b), t.end, t.state})
		}
	}
	h.taints = append(append(before, taint{a, b, lv}), after...)
}

// setSpan puts s into spans (ordered, disjoint), replacing what they said
// of its range.
func setSpan(spans []codec.Span, s codec.Span) []codec.Span {
	var out []codec.Span
	placed := false
	for _, x := range spans {
		if x.End() <= s.Off || x.Off >= s.End() || x.Resync {
			if !placed && x.Off >= s.End() {
				out = appendSpan(out, s)
				placed = true
			}
			out = appendSpan(out, x)
			continue
		}
		if x.Off < s.Off {
			head := x
			head.Len = s.Off - x.Off
			out = appendSpan(out, head)
		}
		if !placed {
			out = appendSpan(out, s)
			placed = true
		}
		if x.End() > s.End() {
			tail := x
			tail.Off, tail.Len = s.End(), x.End()-s.End()
			out = appendSpan(out, tail)
		}
	}
	if !placed {
		out = appendSpan(out, s)
	}
	return out
}

// donateBlock lets the donor replace the output of a block just decoded
// whose output is tainted as a whole (its literals were lost): output
// [start, …) written from h.buf[w0:].
func (z *Reader) donateBlock(start int64, w0 int) {
	if z.donor == nil {
		return
	}
	pieces := z.donor.Donate(start, z.h.buf[w0:z.h.w])
	if len(pieces) == 0 {
		return
	}
	z.h.truncateTaints(start)
	z.setPieces(start, z.h.pos(), pieces, lvTainted, false)
}

// setPieces marks [a, b) as lvDonor where the pieces are and other
// elsewhere, in the taints and, with spans, in the held spans.
func (z *Reader) setPieces(a, b int64, pieces []codec.Piece, other level, spans bool) {
	mark := func(lo, hi int64, lv level) {
		if hi <= lo {
			return
		}
		z.h.addTaint(lo, hi, lv)
		if spans {
			z.holdSpan(levelSpan(lo, hi, lv))
		}
	}
	p := a
	for _, pc := range pieces {
		lo, hi := max(pc.Off, p), min(pc.Off+pc.Len, b)
		if hi <= lo {
			continue
		}
		mark(p, lo, other)
		mark(lo, hi, lvDonor)
		p = hi
	}
	mark(p, b, other)
}

// lostBytes marks b, output at p that a match with a lost repeat offset
// should have produced, as lost, or takes the donor's bytes for it.
func (h *history) lostBytes(p int64, b []byte) {
	end := p + int64(len(b))
	if h.donor == nil {
		h.addTaint(p, end, lvLost)
		return
	}
	q := p
	for _, pc := range h.donor.Donate(p, b) {
		lo, hi := max(pc.Off, q), min(pc.Off+pc.Len, end)
		if hi <= lo {
			continue
		}
		h.addTaint(q, lo, lvLost)
		h.addTaint(lo, hi, lvDonor)
		q = hi
	}
	h.addTaint(q, end, lvLost)
}

// flushPending writes, in a second pass, the placeholders still pending at
// the end of a frame, so that its hash covers them before it is checked.
func (z *Reader) flushPending() {
	for z.donor != nil && z.pending > 0 {
		z.writePending()
	}
}

// class says which levels may merge into one span: Cond, Donor and the
// rest are reported apart.
func (l level) class() int {
	switch l {
	case lvCond:
		return 1
	case lvDonor:
		return 2
	}
	return 0
}

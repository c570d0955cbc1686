package zstd

import (
	"fmt"
	"slices"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// Resync losses and Resize.
//
// A Resync loss stands for output of unknown length: the blocks in input
// the decoder skipped to find a valid chain again, or a block whose header
// is valid but whose content cannot be decoded. Losses with nothing decoded
// between them are one loss, one span. The decoder goes on after it with
// the window laid out as if the estimate were the true length: bytes
// copied from before the loss are Cond (see level).
//
// For the latest loss the Reader keeps a checkpoint: the window before the
// loss, and the decoding state and compressed input from where decoding
// resumed after it (at most pinMax bytes of input). Resize rewinds to the
// loss, writes the true number of placeholder bytes and decodes again from
// the resume point, now at the right distances.

// gap is the latest Resync loss.
type gap struct {
	off     int64 // output offset of its span
	est     int64 // its length, as estimated
	maxLen  int64
	skipped int64 // compressed bytes skipped by resyncs
	lost    int64 // blocks lost with a valid header
}

// checkpoint is what Resize needs to decode again after the latest loss.
type checkpoint struct {
	valid   bool // the part before the loss is saved
	resumed bool // the resume state is saved

	// Before the loss.
	off        int64
	win        []byte  // output [off-len(win), off)
	taints     []taint // taints before off
	window     int
	frameStart int64

	// At the resume point.
	run    run
	dec    decState
	nprob  int
	nfound int
	est    int64 // the loss's estimated length then
	maxLen int64
}

// decState is the decoder's carried state: tables and repeat offsets.
type decState struct {
	blockMax   int
	huf        hufTable
	hufDefined bool
	reps       [3]uint32
	tabs       [3]*fseTable
	bufs       [3]fseTable // copies of the decoder's own tables in use
}

func (d *decoder) tables() ([3]**fseTable, [3]*fseTable) {
	return [3]**fseTable{&d.ll, &d.of, &d.ml}, [3]*fseTable{&d.llBuf, &d.ofBuf, &d.mlBuf}
}

// ownTable stands, in a decState detached from its decoder, for the
// table in the decoder's own buffer (its copy is in bufs).
var ownTable fseTable

// detach makes a saved state refer to no table of the decoder it was
// saved from (a Checkpoint outlives that decoder: it must not keep it,
// its history and buffers alive): restore puts the copies in bufs into
// the restoring decoder's own buffers.
func (s *decState) detach(d *decoder) {
	_, own := d.tables()
	for i := range s.tabs {
		if s.tabs[i] == own[i] {
			s.tabs[i] = &ownTable
		}
	}
}

func (s *decState) save(d *decoder) {
	s.blockMax, s.huf, s.hufDefined, s.reps = d.blockMax, d.huf, d.hufDefined, d.reps
	cur, own := d.tables()
	for i := range cur {
		s.tabs[i] = *cur[i]
		if *cur[i] == own[i] {
			s.bufs[i].log, s.bufs[i].valid = own[i].log, own[i].valid
			s.bufs[i].t = append(s.bufs[i].t[:0], own[i].t...)
		}
	}
}

func (s *decState) restore(d *decoder) {
	d.blockMax, d.huf, d.hufDefined, d.reps = s.blockMax, s.huf, s.hufDefined, s.reps
	cur, own := d.tables()
	for i := range cur {
		t := s.tabs[i]
		if t == &ownTable {
			t = own[i]
		}
		*cur[i] = t
		if t == own[i] {
			own[i].log, own[i].valid = s.bufs[i].log, s.bufs[i].valid
			own[i].t = append(own[i].t[:0], s.bufs[i].t...)
		}
	}
}

// lose records a Resync loss at the current output position: skipped bytes
// of compressed input, or one lost block. When nothing was decoded since
// the latest loss, it grows that one. It returns the output offset and the
// number of placeholder bytes added.
func (z *Reader) lose(skipped int64, lostBlock bool) (int64, int64) {
	if at, grow, ok := z.loseKnown(); ok {
		return at, grow
	}
	g := &z.gap
	si := -1
	if z.afterResync {
		for i := len(z.hold.spans) - 1; i >= 0; i-- {
			if s := z.hold.spans[i]; s.Resync && s.Off == g.off {
				si = i
				break
			}
		}
	}
	if si < 0 {
		*g = gap{off: z.h.pos() + z.pending}
		z.saveBefore()
	}
	defer z.noteLoss()
	g.skipped += skipped
	if lostBlock {
		g.lost++
	}
	est, maxLen := z.sv.estimate(g.skipped, g.lost)
	est = max(est, g.est)
	at, grow := g.off+g.est, est-g.est
	g.est, g.maxLen = est, maxLen
	z.h.addTaint(at, at+grow, lvLost)
	z.h.floor = g.off + est
	z.pending += grow
	z.frameN += grow
	if si >= 0 {
		z.hold.spans[si].Len, z.hold.spans[si].MaxLen = est, maxLen
	} else {
		z.holdSpan(codec.Span{Off: g.off, Len: est, State: damage.Lost, Resync: true, MaxLen: maxLen})
	}
	z.exact = false
	z.afterResync = true
	z.d.reps = [3]uint32{}
	return at, grow
}

// saveBefore starts a checkpoint for a loss at the current output
// position: the window before it.
func (z *Reader) saveBefore() {
	cp := &z.cp
	h := &z.h
	cp.valid, cp.resumed = false, false
	z.in.unpin()
	if z.pending > 0 || z.closed {
		return // not at a written position: no checkpoint
	}
	off := h.pos()
	k := min(int64(h.window), off-h.frameStart, int64(h.w))
	cp.win = append(cp.win[:0], h.buf[int64(h.w)-k:h.w]...)
	var ok bool
	if cp.taints, ok = checkpointTaints(cp.taints, h.taints); !ok {
		return // lost ranges alone are too many: no checkpoint
	}
	cp.window, cp.frameStart = h.window, h.frameStart
	cp.off = off
	cp.valid = true
}

// saveResume completes the checkpoint with the state decoding resumes
// from after the latest loss (again after each growth of it).
func (z *Reader) saveResume() {
	cp := &z.cp
	if !cp.valid {
		return
	}
	z.hashSync()
	cp.run = z.run
	cp.dec.save(&z.d)
	cp.nprob, cp.nfound = len(z.problems), z.nprob
	cp.est, cp.maxLen = z.gap.est, z.gap.maxLen
	cp.resumed = true
	z.in.setPin(z.pos)
}

// Resize implements codec.Resizer: it sets the true length of the latest
// Resync loss, at output offset off, and decodes again after it.
func (z *Reader) Resize(off, trueLen int64) error {
	z.leaveClean()
	z.hashSync()
	cp := &z.cp
	if z.closed || !cp.valid || !cp.resumed || cp.off != off || z.in.pinLost {
		return codec.ErrCannotResize
	}
	if trueLen < 0 || cp.maxLen >= 0 && trueLen > cp.maxLen {
		return fmt.Errorf("zstd: cannot resize the loss at output offset %d to %d bytes (at most %d)", off, trueLen, cp.maxLen)
	}
	h := &z.h
	hd := &z.hold

	// Spans and marks from off on go; they will be reported anew.
	z.spans = cutSpans(z.spans, off)
	z.frozen = min(z.frozen, len(z.spans))
	hd.spans = cutSpans(hd.spans, off)
	n := len(hd.marks)
	for n > hd.head && hd.marks[n-1].out > off {
		n--
	}
	hd.marks = hd.marks[:n]
	hd.rel = min(hd.rel, off)

	// Output: back to off, with the window before it.
	returned := h.base + int64(h.r)
	k := int64(len(cp.win))
	if h.base <= off-k && off <= h.pos() {
		h.w = int(off - h.base)
	} else {
		h.base, h.w, h.r = off-k, 0, 0
		h.reserve(int(k))
		copy(h.buf, cp.win)
		h.w = int(k)
	}
	h.r = int(min(max(returned-h.base, 0), int64(h.w)))
	h.taints = append(h.taints[:0], cp.taints...)
	h.window, h.frameStart = cp.window, cp.frameStart

	// The decoding state where decoding resumed after the loss.
	z.run = cp.run
	cp.dec.restore(&z.d)
	z.problems, z.nprob = z.problems[:cp.nprob], cp.nfound
	z.err = nil
	z.frameN += trueLen - cp.est

	// The loss, now of known length: placeholders, and Cond bytes after it
	// for what copies from before it.
	z.pending = trueLen
	h.addTaint(off, off+trueLen, lvLost)
	h.floor = off + trueLen
	z.holdSpan(codec.Span{Off: off, Len: trueLen, State: damage.Lost})
	z.gap = gap{off: -1}
	z.resizeLoss(off, trueLen)
	cp.valid, cp.resumed = false, false
	z.in.unpin()
	if z.cfg.trace != nil {
		z.cfg.trace(blockRecord{In: -1, Out: off, N: trueLen, Placeholder: true})
	}
	return nil
}

// cutSpans drops the spans that start at or after off.
func cutSpans(spans []codec.Span, off int64) []codec.Span {
	i, _ := slices.BinarySearchFunc(spans, off, func(s codec.Span, off int64) int {
		if s.Off < off {
			return -1
		}
		return 1
	})
	return spans[:i]
}

// maxCheckpointTaints bounds the taints a checkpoint copies (24 bytes
// each: 1.5 MiB). The window may hold maxTaints; copying all of them at
// each loss doubled what the taints cost.
const maxCheckpointTaints = 1 << 16

// checkpointTaints copies ts into dst[:0]. Past maxCheckpointTaints it
// copies them coarsened: neighbours closer than a gap merge into one range
// with the worse level, the bytes between included (as coarsenTaints), so
// a Resize restores the window with more damage, never less. Lost ranges
// are never merged; when they alone leave too many it reports false (the
// caller keeps no checkpoint, as when the pinned input is lost). A dst
// grown far past the bound is not kept.
func checkpointTaints(dst, ts []taint) ([]taint, bool) {
	if cap(dst) > 2*maxCheckpointTaints {
		dst = nil
	}
	if len(ts) <= maxCheckpointTaints {
		return append(dst[:0], ts...), true
	}
	// n ranges over span bytes: fewer than span/gap gaps are gap or wider.
	span := ts[len(ts)-1].end - ts[0].start
	for gap, i := span/(maxCheckpointTaints/2)+1, 0; i < 8; gap, i = gap*2, i+1 {
		if mergeTaints(nil, ts, gap) <= maxCheckpointTaints {
			dst = dst[:0]
			mergeTaints(&dst, ts, gap)
			return dst, true
		}
	}
	return dst[:0], false
}

// mergeTaints merges neighbouring non-lost taints of ts closer than gap,
// appending the result to *out when out is not nil, and returns how many
// ranges the result has.
func mergeTaints(out *[]taint, ts []taint, gap int64) int {
	n := 0
	var l taint
	for i, t := range ts {
		if i > 0 && t.start-l.end < gap && l.state != lvLost && t.state != lvLost {
			l.end, l.state = t.end, max(l.state, t.state)
			continue
		}
		if i > 0 && out != nil {
			*out = append(*out, l)
		}
		l = t
		n++
	}
	if n > 0 && out != nil {
		*out = append(*out, l)
	}
	return n
}

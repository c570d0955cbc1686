package zstd

import (
	"sort"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// level says how far a range of output is from trustworthy; a larger level
// is worse, and where two meet the worse one wins.
type level uint8

const (
	// lvCond: decoded from matches whose source lies before a Resync loss,
	// at the distance the loss's assumed length gives: right if, and only
	// if, that length is.
	lvCond level = iota + 1
	// lvDonor: bytes a donor gave for lost output in a second pass, or
	// copied from such bytes (see donor.go).
	lvDonor
	// lvTainted: not to be trusted.
	lvTainted
	// lvLost: placeholder bytes (zeros) for output that is unknown.
	lvLost
)

// span returns the damage state and Cond flag a span of this level carries.
func (l level) span() (damage.State, bool) {
	switch l {
	case lvCond:
		return damage.Tainted, true
	case lvDonor, lvTainted:
		return damage.Tainted, false
	}
	return damage.Lost, false
}

// copied returns the level of bytes copied from bytes of level l: a copy
// of lost or tainted bytes is tainted, a copy of Cond bytes is Cond.
func (l level) copied() level { return min(l, lvTainted) }

// taint is a range [start, end) of output, in absolute output offsets,
// whose bytes cannot be trusted outright.
type taint struct {
	start, end int64
	state      level
}

// history holds the decoder's output: the last window of it (what matches
// may copy from), the bytes not yet returned by Read (held back or not yet
// read), and which of them are tainted. Offsets called absolute count every
// byte of output since the start of the stream, placeholders included.
type history struct {
	buf  []byte // buf[i] is output byte base+i
	base int64
	w    int // bytes of buf written
	r    int // bytes of buf returned to the reader

	window     int   // bytes matches may reach back (the frame's window)
	frameStart int64 // matches never reach before the current frame
	limit      int   // capacity of buf beyond which old output slides out
	// keepBack: output kept behind the write position besides the window
	// (a Reader keeping a checkpoint, until its first handover), and the
	// room added to limit for it.
	keepBack, extra int

	taints []taint // sorted, non-overlapping, within the window
	// taintsLeft: how many taints the last coarsening left (boundTaints).
	taintsLeft int
	// floor: the end of the latest Resync loss. A match whose source lies
	// before it copies at an assumed distance: its bytes are Cond at best.
	floor int64

	donor codec.Donor // a second pass's donor (donor.go), or nil

	// lent lists the ranges of output lent (Reader.Lend) and not given
	// back: no byte of them is written until they are.
	lent  []loan
	spare []byte // an array buf moved out of (move), to move back into
}

// loan is a range of an array of output lent.
type loan struct {
	array  *byte // the array's first byte
	first  *byte // the loan's first byte
	lo, hi int   // the loan in the array
}

// lend records b = buf[lo:hi] as lent.
func (h *history) lend(lo, hi int) []byte {
	b := h.buf[lo:hi:hi]
	h.lent = append(h.lent, loan{array: &h.buf[0], first: &b[0], lo: lo, hi: hi})
	return b
}

// giveBack ends the loan of b (a slice lend returned).
func (h *history) giveBack(b []byte) {
	if len(b) == 0 {
		return
	}
	for i, l := range h.lent {
		if l.first == &b[0] && l.hi-l.lo == len(b) {
			h.lent = append(h.lent[:i], h.lent[i+1:]...)
			return
		}
	}
}

// unlent reports whether no byte of buf[a:b] is lent.
func (h *history) unlent(a, b int) bool {
	if len(h.lent) == 0 || len(h.buf) == 0 {
		return true
	}
	for _, l := range h.lent {
		if l.array == &h.buf[0] && l.lo < b && a < l.hi {
			return false
		}
	}
	return true
}

// unlentIn reports whether no byte of array a is lent.
func (h *history) unlentIn(a []byte) bool {
	if len(h.lent) == 0 || cap(a) == 0 {
		return true
	}
	for _, l := range h.lent {
		if l.array == &a[:1][0] {
			return false
		}
	}
	return true
}

// pos returns the absolute offset of the next byte to write.
func (h *history) pos() int64 { return h.base + int64(h.w) }

// setWindow prepares for a frame whose window is window bytes.
func (h *history) setWindow(window int64) {
	h.window = int(window)
	h.frameStart = h.pos()
	// Room for the window, the held-back output and a good stretch of new
	// output, so that sliding (a copy of the window) is rare.
	h.limit = h.window + max(min(4*h.window, 16<<20), 4*maxBlockSize)
	h.extra = 0
	if h.keepBack > h.window {
		h.extra = h.keepBack - h.window
		h.limit += h.extra
	}
}

// holdMax is how much output may be held back (not yet released to the
// reader) before the oldest is released anyway.
func (h *history) holdMax() int64 { return int64(h.limit-h.extra-h.window) / 2 }

// reserve makes sure n more bytes can be written at buf[w:]. It grows the
// buffer up to its limit, then slides out old output that is both returned
// and outside the window. Where output was lent (lend) and not given back,
// it writes nothing in place: it moves to another array instead.
func (h *history) reserve(n int) {
	if len(h.buf)-h.w >= n && h.unlent(h.w, h.w+n) {
		return
	}
	keep := h.w
	if h.w+n > h.limit || len(h.buf)-h.w >= n {
		keep = min(h.w, max(h.window, h.keepBack, h.w-h.r))
	}
	size := len(h.buf)
	if keep+n > size {
		// (1 MiB, then the limit if it is not large, else four times:
		// a grown buffer's pages are touched afresh, which costs more
		// than copying them)
		size = min(max(4*len(h.buf), 1<<20), h.limit)
		if len(h.buf) > 0 && h.limit <= 32<<20 {
			size = h.limit
		}
		size = max(size, keep+n)
	}
	if size == len(h.buf) && h.unlent(0, keep+n) {
		h.slide(keep)
		return
	}
	h.move(keep, size)
}

// slide drops all but the last keep written bytes (keep ≥ w-r).
func (h *history) slide(keep int) {
	drop := h.w - keep
	if drop <= 0 {
		return
	}
	copy(h.buf, h.buf[drop:h.w])
	h.dropped(drop)
}

// move is slide into an array of size bytes other than buf: the spare
// one if it is large enough and nothing in it is lent, else a new one.
func (h *history) move(keep, size int) {
	nb := h.spare
	if cap(nb) < size || !h.unlentIn(nb) {
		nb = make([]byte, size)
	}
	nb = nb[:size]
	drop := h.w - keep
	copy(nb, h.buf[drop:h.w])
	h.spare = nil
	if len(h.buf) >= size {
		h.spare = h.buf // (a smaller one, left by growing, is not kept)
	}
	h.buf = nb
	h.dropped(drop)
}

// dropped accounts for the drop bytes slid out of the front of buf.
func (h *history) dropped(drop int) {
	if drop <= 0 {
		return
	}
	h.base += int64(drop)
	h.w -= drop
	h.r = max(h.r-drop, 0)
	// Forget taints that left the window.
	i := 0
	for i < len(h.taints) && h.taints[i].end <= h.base {
		i++
	}
	if i > 0 {
		h.taints = append(h.taints[:0], h.taints[i:]...)
	}
}

// addTaint marks [start, end) with state s. Output is produced in order,
// so start is normally at or after the start of the last range; where it is
// not, the ranges from start on are merged into one with the worst state.
func (h *history) addTaint(start, end int64, s level) {
	if end <= start {
		return
	}
	n := len(h.taints)
	if n == 0 || h.taints[n-1].end < start || (h.taints[n-1].end == start && h.taints[n-1].state != s) {
		h.taints = append(h.taints, taint{start, end, s})
		return
	}
	l := &h.taints[n-1]
	switch {
	case start < l.start:
		worst, last := s, end
		for _, t := range h.taints[h.firstAfter(start):] {
			worst, last = max(worst, t.state), max(last, t.end)
		}
		h.truncateTaints(start)
		h.taints = append(h.taints, taint{start, last, worst})
	case l.state == s:
		l.end = max(l.end, end)
	case s < l.state: // milder: only what lies past the last range
		if end > l.end {
			h.taints = append(h.taints, taint{l.end, end, s})
		}
	default: // worse: cut the last range around the new one
		old := *l
		l.end = start
		if l.end <= l.start {
			h.taints = h.taints[:n-1]
		}
		h.taints = append(h.taints, taint{start, end, s})
		if old.end > end {
			h.taints = append(h.taints, taint{end, old.end, old.state})
		}
	}
}

// maxTaints bounds the taints the window keeps. Damage that alternates
// every few bytes (matches copying from several losses, Cond bytes between
// plain taints) otherwise costs a taint per few bytes of the window:
// 48 MB of them measured on a 119 MiB archive with 30 garbage runs.
const maxTaints = 1 << 20

// coarsenTaints merges neighbouring taints, the closest first, into one
// with the worse level of the two, the bytes between them included, until
// at most half of maxTaints are left or no two are closer than 4 KiB.
// Lost ranges are never merged: they are the placeholders that Resize and a
// donor pass replace. The window then reports more damage (bytes that were
// clean or milder become tainted), never less. It runs between blocks
// (boundTaints), never while code walks the taints.
func (h *history) coarsenTaints() {
	for gap := int64(16); len(h.taints) > maxTaints/2 && gap <= 4096; gap *= 4 {
		ts := h.taints
		out := ts[:1]
		for _, t := range ts[1:] {
			if l := &out[len(out)-1]; t.start-l.end < gap && l.state != lvLost && t.state != lvLost {
				l.end, l.state = t.end, max(l.state, t.state)
				continue
			}
			out = append(out, t)
		}
		h.taints = out
	}
}

// boundTaints coarsens the taints when there are more than maxTaints (or,
// when lost ranges kept more than that, twice as many as were left the
// last time: the work stays linear in the output).
func (h *history) boundTaints() {
	if len(h.taints) > max(maxTaints, h.taintsLeft*2) {
		h.coarsenTaints()
		h.taintsLeft = len(h.taints)
	}
}

// truncateTaints forgets taints at or after p (a block being rolled back).
func (h *history) truncateTaints(p int64) {
	for len(h.taints) > 0 {
		l := &h.taints[len(h.taints)-1]
		if l.start >= p {
			h.taints = h.taints[:len(h.taints)-1]
			continue
		}
		if l.end > p {
			l.end = p
		}
		break
	}
}

// clean reports whether [src, src+n) holds no tainted byte and lies after
// the floor.
func (h *history) clean(src, n int64) bool {
	if src < h.floor {
		return false
	}
	k := len(h.taints)
	if k == 0 || h.taints[k-1].end <= src {
		return true
	}
	i := h.firstAfter(src)
	return i == k || h.taints[i].start >= src+n
}

// firstAfter returns the index of the first taint ending after p.
func (h *history) firstAfter(p int64) int {
	return sort.Search(len(h.taints), func(i int) bool { return h.taints[i].end > p })
}

// worst returns the level a copy of [a, b) gets as a whole (0: clean).
func (h *history) worst(a, b int64) level {
	var lv level
	if a < h.floor {
		lv = lvCond
	}
	for i := h.firstAfter(a); i < len(h.taints) && h.taints[i].start < b; i++ {
		lv = max(lv, h.taints[i].state.copied())
	}
	return lv
}

// propagate taints the copy of [src, src+n) to [dst, dst+n): each byte
// gets the level of its source (lost becomes tainted), and source bytes
// before the floor are Cond at least. dst must be the write position, so
// that every taint lies before it. A copy that overlaps itself
// (dst-src < n) repeats its source period by period; with a short period
// the worst source level taints the whole destination.
func (h *history) propagate(src, dst, n int64) {
	if period := dst - src; period < n {
		if period < 256 {
			h.addTaint(dst, dst+n, h.worst(src, dst))
			return
		}
		for q := int64(0); q < n; q += period {
			h.propagate(src+q, dst+q, min(period, n-q))
		}
		return
	}
	end := src + n
	condEnd := min(h.floor, end) // [src, condEnd) is Cond at least
	// Taints are added at dst and after, past every taint walked here:
	// the walk by index is not disturbed.
	p := src
	for i := h.firstAfter(src); i < len(h.taints) && h.taints[i].start < end; i++ {
		t := h.taints[i]
		a, b := max(t.start, src), min(t.end, end)
		if c := min(a, condEnd); p < c {
			h.addTaint(dst+(p-src), dst+(c-src), lvCond)
		}
		h.addTaint(dst+(a-src), dst+(b-src), t.state.copied())
		p = b
	}
	if p < condEnd {
		h.addTaint(dst+(p-src), dst+(condEnd-src), lvCond)
	}
}

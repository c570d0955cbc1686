package zstd

import (
	"sort"

	"github.com/vzsalvage/vzsalvage/damage"
)

// taint is a range [start, end) of output, in absolute output offsets,
// whose bytes cannot be trusted.
type taint struct {
	start, end int64
	state      damage.State // Lost (placeholder bytes) or Tainted
}

// history holds the decoder's output: the last window of it (what matches
// may copy from), the bytes not yet returned by Read, and which of them are
// tainted. Offsets called absolute count every byte of output since the
// start of the stream, placeholders included.
type history struct {
	buf  []byte // buf[i] is output byte base+i
	base int64
	w    int // bytes of buf written
	r    int // bytes of buf returned to the reader

	window     int   // bytes matches may reach back (the frame's window)
	frameStart int64 // matches never reach before the current frame
	limit      int   // maximum capacity of buf

	taints []taint // sorted, non-overlapping, within the window
	// floor: every source byte before it is unreliable (a Resync loss lies
	// between it and the current output, so distances are unknown).
	floor int64
}

// pos returns the absolute offset of the next byte to write.
func (h *history) pos() int64 { return h.base + int64(h.w) }

// setWindow prepares for a frame whose window is window bytes.
func (h *history) setWindow(window int64) {
	h.window = int(window)
	h.frameStart = h.pos()
	// Room for the window plus a good stretch of new output, so that
	// sliding (a copy of the window) is rare.
	h.limit = h.window + max(min(4*h.window, 16<<20), 4*maxBlockSize)
}

// reserve makes sure n more bytes can be written at buf[w:]. It grows the
// buffer up to its limit, then slides out old output that is both returned
// and outside the window. It must be called only when r == w.
func (h *history) reserve(n int) {
	if len(h.buf)-h.w >= n {
		return
	}
	if h.w+n > h.limit {
		h.slide(min(h.w, h.window))
		if len(h.buf)-h.w >= n {
			return
		}
	}
	size := min(max(2*len(h.buf), 1<<20), h.limit)
	size = max(size, h.w+n)
	nb := make([]byte, size)
	copy(nb, h.buf[:h.w])
	h.buf = nb
}

// slide drops all but the last keep written bytes.
func (h *history) slide(keep int) {
	drop := h.w - keep
	if drop <= 0 {
		return
	}
	copy(h.buf, h.buf[drop:h.w])
	h.base += int64(drop)
	h.w -= drop
	h.r -= drop
	if h.r < 0 {
		h.r = 0
	}
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
func (h *history) addTaint(start, end int64, s damage.State) {
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

// clean reports whether [src, src+n) holds no tainted byte.
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

// propagate taints the copy of [src, src+n) to [dst, dst+n) (dst > src).
// When the copy overlaps itself (dst-src < n) any taint in the source
// taints the whole destination.
func (h *history) propagate(src, dst, n int64) {
	if src < h.floor {
		h.addTaint(dst, dst+n, damage.Tainted)
		return
	}
	if dst-src < n {
		h.addTaint(dst, dst+n, damage.Tainted)
		return
	}
	i := h.firstAfter(src)
	// Collect first: adding may append to the slice being walked.
	type part struct{ a, b int64 }
	var parts [64]part
	np := 0
	for ; i < len(h.taints) && h.taints[i].start < src+n; i++ {
		a, b := max(h.taints[i].start, src), min(h.taints[i].end, src+n)
		if np == len(parts) {
			// Too fragmented: taint the rest as a whole.
			parts[np-1].b = src + n
			break
		}
		parts[np] = part{a, b}
		np++
	}
	for _, p := range parts[:np] {
		h.addTaint(dst+(p.a-src), dst+(p.b-src), damage.Tainted)
	}
}

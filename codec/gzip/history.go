package gzip

import "sort"

// window is how far back a deflate match may reach.
const window = 32 << 10

// history holds the decoder's output: the window matches copy from, the
// bytes not yet returned, and which of them are tainted. Absolute offsets
// count every output byte since the start of the stream, placeholders
// included; buf[i] is output byte base+i. buf starts with window bytes
// that are no output (base starts at -window), so that a match reaching
// into an unknown window never reaches before buf.
type history struct {
	buf  []byte
	base int64
	w    int // bytes of buf written
	r    int // bytes of buf returned to the reader
	max  int // the size buf may grow to (it grows further only to hold unreturned output)

	// floor: copies from before it are tainted (the window before a place
	// where decoding resumed after damage is unknown).
	floor  int64
	taints []extent // tainted output, sorted and disjoint
}

// extent is a range [start, end) of absolute output offsets.
type extent struct{ start, end int64 }

// mergeGap: a taint that starts this close to the last one extends it.
// Tainting the few clean bytes between costs little and keeps the list of
// taints short after a cascade of copies.
const mergeGap = 32

// newHistory returns an empty history whose buffer grows up to max bytes
// (further only to hold output not returned yet).
func newHistory(max int) *history {
	h := &history{buf: make([]byte, window+64<<10), base: -window, w: window, r: window, max: max}
	h.floor = -window
	return h
}

// pos returns the absolute offset of the next byte to write.
func (h *history) pos() int64 { return h.base + int64(h.w) }

// reset forgets the output and taints: the next byte written is at
// absolute offset at.
func (h *history) reset(at int64) {
	clear(h.buf[:window])
	h.base, h.w, h.r = at-window, window, window
	h.floor = at - window
	h.taints = h.taints[:0]
}

// reserve makes room for n more bytes at buf[w:], sliding out output that
// is returned and outside the window before the first byte not returned,
// and growing buf only when what must stay fills half of it.
func (h *history) reserve(n int) {
	if len(h.buf)-h.w >= n {
		return
	}
	if len(h.buf) < h.max {
		h.grow(min(max(2*len(h.buf), h.w+n), h.max))
		if len(h.buf)-h.w >= n {
			return
		}
	}
	// keep the window before the first byte not returned: output may be
	// dropped back to there (truncate), and decoding go on after it
	drop := max(h.r-window, 0)
	copy(h.buf, h.buf[drop:h.w])
	h.base += int64(drop)
	h.w -= drop
	h.r -= drop
	if len(h.buf)-h.w < max(n, len(h.buf)/2) {
		h.grow(max(2*len(h.buf), 2*(h.w+n)))
	}
	// taints out of the window that were returned are no longer needed
	i := 0
	for i < len(h.taints) && h.taints[i].end <= h.base {
		i++
	}
	if i > 0 {
		h.taints = append(h.taints[:0], h.taints[i:]...)
	}
}

// grow makes buf size bytes long.
func (h *history) grow(size int) {
	nb := make([]byte, max(size, h.w))
	copy(nb, h.buf[:h.w])
	h.buf = nb
}

// truncate drops the output from absolute offset p on (p ≥ the returned
// bytes).
func (h *history) truncate(p int64) {
	h.w = int(p - h.base)
	for len(h.taints) > 0 {
		t := &h.taints[len(h.taints)-1]
		if t.start >= p {
			h.taints = h.taints[:len(h.taints)-1]
			continue
		}
		t.end = min(t.end, p)
		break
	}
}

// taintFrom returns the absolute offset from which copies are clean: no
// taint and no unknown window lies at or after it... before it, a copy
// must go through copyTaint.
func (h *history) taintFrom() int64 {
	t := h.floor
	if n := len(h.taints); n > 0 {
		t = max(t, h.taints[n-1].end)
	}
	return t
}

// addTaint marks [a, b) tainted; a is at or after the start of the last
// taint (output is produced in order).
func (h *history) addTaint(a, b int64) {
	if b <= a {
		return
	}
	if n := len(h.taints); n > 0 && a <= h.taints[n-1].end+mergeGap {
		h.taints[n-1].end = max(h.taints[n-1].end, b)
		return
	}
	h.taints = append(h.taints, extent{a, b})
}

// taintAll marks [a, b) tainted, where a may lie before the start of the
// last taint but no taint reaches past b (the output of one symbol).
func (h *history) taintAll(a, b int64) {
	for n := len(h.taints); n > 0 && h.taints[n-1].start >= a; n-- {
		h.taints = h.taints[:n-1]
	}
	h.addTaint(a, b)
}

// firstAfter returns the index of the first taint ending after p.
func (h *history) firstAfter(p int64) int {
	return sort.Search(len(h.taints), func(i int) bool { return h.taints[i].end > p })
}

// tainted reports whether a byte of [a, b) is tainted or lies before the
// floor.
func (h *history) tainted(a, b int64) bool {
	if a < h.floor {
		return true
	}
	i := h.firstAfter(a)
	return i < len(h.taints) && h.taints[i].start < b
}

// copyTaint taints what a copy of n bytes from src to dst (the write
// position) takes from tainted bytes. A copy that overlaps itself repeats
// its source; with a short period, any taint in it taints it all.
func (h *history) copyTaint(src, dst, n int64) {
	if period := dst - src; period < n {
		if period < 256 {
			if h.tainted(src, dst) {
				h.addTaint(dst, dst+n)
			}
			return
		}
		for q := int64(0); q < n; q += period {
			h.copyTaint(src+q, dst+q, min(period, n-q))
		}
		return
	}
	end := src + n
	if src < h.floor {
		h.addTaint(dst, dst+min(h.floor, end)-src)
	}
	// taints added here start at dst or later, past every taint walked
	for i := h.firstAfter(src); i < len(h.taints) && h.taints[i].start < end; i++ {
		t := h.taints[i]
		h.addTaint(dst+max(t.start, src)-src, dst+min(t.end, end)-src)
	}
}

// Package damage describes which byte ranges of a stream, device, volume or
// file are not known to be right. Every layer of vzsalvage speaks it: a codec
// reports damage in output offsets, the VMA scanner turns it into device
// ranges, volumes translate them, and filesystems turn them into files.
package damage

import (
	"encoding/json"
	"fmt"
	"sort"
)

// State says how far the bytes of a range can be trusted. States are ordered:
// a larger value is worse, and where two ranges overlap the worse one wins.
type State uint8

const (
	// OK bytes are known to equal the original.
	OK State = iota
	// Zero bytes are known to be zero (sparse or all-zero content).
	Zero
	// Tainted bytes are present but not trustworthy: they were decoded from
	// damaged input or copied from bytes that were.
	Tainted
	// Lost bytes are unknown; readers see zeros in their place.
	Lost
)

var stateNames = [...]string{OK: "ok", Zero: "zero", Tainted: "tainted", Lost: "lost"}

// String returns the state's name as used in reports: ok, zero, tainted, lost.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("damage: unknown state %q", b)
}

// Range is a byte range [Off, Off+Len) with a state.
type Range struct {
	Off   int64 `json:"offset"`
	Len   int64 `json:"length"`
	State State `json:"state"`
}

// End returns the offset just past the range.
func (r Range) End() int64 { return r.Off + r.Len }

// Map is a set of non-overlapping, non-adjacent-with-equal-state byte ranges
// sorted by offset, each in a state other than OK. The zero value is an empty
// map, meaning "everything is OK". A Map is not safe for concurrent use.
type Map struct {
	r []Range
}

// Len returns the number of ranges in the map.
func (m *Map) Len() int { return len(m.r) }

// Empty reports whether the map holds no range.
func (m *Map) Empty() bool { return m == nil || len(m.r) == 0 }

// Ranges returns the ranges in offset order. The caller must not modify them.
func (m *Map) Ranges() []Range {
	if m == nil {
		return nil
	}
	return m.r
}

// Clone returns an independent copy of the map.
func (m *Map) Clone() *Map {
	c := &Map{}
	if m != nil {
		c.r = append([]Range(nil), m.r...)
	}
	return c
}

// first returns the index of the first range that ends after off.
func (m *Map) first(off int64) int {
	return sort.Search(len(m.r), func(i int) bool { return m.r[i].End() > off })
}

// Add marks [off, off+n) with state s. Where the range overlaps existing
// ones, the worse state wins. Adding OK or an empty range does nothing.
func (m *Map) Add(off, n int64, s State) {
	if n <= 0 || s == OK {
		return
	}
	end := off + n
	// Fast path: at or past the end of the last range (the streaming case).
	if k := len(m.r); k == 0 || m.r[k-1].End() <= off {
		if k > 0 && m.r[k-1].End() == off && m.r[k-1].State == s {
			m.r[k-1].Len += n
		} else {
			m.r = append(m.r, Range{off, n, s})
		}
		return
	}
	// General path: rebuild the affected window, cutting [off,end) into the
	// gaps and overlaps with the existing ranges.
	i := m.first(off - 1)
	j := i
	var out []Range
	pos := off
	for ; j < len(m.r) && m.r[j].Off <= end; j++ {
		e := m.r[j]
		if e.Off > pos && pos < end {
			out = append(out, Range{pos, min(e.Off, end) - pos, s})
		}
		// split e into [e.Off,off) old, overlap, [end,e.End) old
		if e.Off < off {
			out = append(out, Range{e.Off, min(off, e.End()) - e.Off, e.State})
		}
		lo, hi := max(e.Off, off), min(e.End(), end)
		if lo < hi {
			st := e.State
			if s > st {
				st = s
			}
			out = append(out, Range{lo, hi - lo, st})
		}
		if e.End() > end {
			out = append(out, Range{max(e.Off, end), e.End() - max(e.Off, end), e.State})
		}
		pos = max(pos, e.End())
	}
	if pos < end {
		out = append(out, Range{pos, end - pos, s})
	}
	m.splice(i, j, out)
}

// Set marks [off, off+n) with exactly state s, replacing whatever was there.
// Setting OK clears the range.
func (m *Map) Set(off, n int64, s State) {
	if n <= 0 {
		return
	}
	end := off + n
	i := m.first(off - 1)
	j := i
	var out []Range
	for ; j < len(m.r) && m.r[j].Off <= end; j++ {
		e := m.r[j]
		if e.Off < off {
			out = append(out, Range{e.Off, min(off, e.End()) - e.Off, e.State})
		}
		if e.End() > end {
			out = append(out, Range{max(e.Off, end), e.End() - max(e.Off, end), e.State})
		}
	}
	if s != OK {
		out = append(out, Range{off, n, s})
		sort.Slice(out, func(a, b int) bool { return out[a].Off < out[b].Off })
	}
	m.splice(i, j, out)
}

// Clear marks [off, off+n) as OK.
func (m *Map) Clear(off, n int64) { m.Set(off, n, OK) }

// splice replaces m.r[i:j] by rs, merging adjacent ranges of equal state.
func (m *Map) splice(i, j int, rs []Range) {
	merged := make([]Range, 0, len(rs)+2)
	if i > 0 {
		i--
		merged = append(merged, m.r[i])
	}
	merged = append(merged, rs...)
	if j < len(m.r) {
		merged = append(merged, m.r[j])
		j++
	}
	w := 0
	for _, r := range merged {
		if r.Len <= 0 {
			continue
		}
		if w > 0 && merged[w-1].End() == r.Off && merged[w-1].State == r.State {
			merged[w-1].Len += r.Len
			continue
		}
		merged[w] = r
		w++
	}
	merged = merged[:w]
	tail := append([]Range(nil), m.r[j:]...)
	m.r = append(append(m.r[:i], merged...), tail...)
}

// Merge adds every range of o to m (worse state wins).
func (m *Map) Merge(o *Map) {
	if o == nil {
		return
	}
	for _, r := range o.r {
		m.Add(r.Off, r.Len, r.State)
	}
}

// Overlaps returns the parts of ranges that lie within [off, off+n), clipped
// to it, in offset order.
func (m *Map) Overlaps(off, n int64) []Range {
	if m == nil || n <= 0 {
		return nil
	}
	end := off + n
	var out []Range
	for i := m.first(off); i < len(m.r) && m.r[i].Off < end; i++ {
		lo, hi := max(m.r[i].Off, off), min(m.r[i].End(), end)
		out = append(out, Range{lo, hi - lo, m.r[i].State})
	}
	return out
}

// Any reports whether any byte of [off, off+n) lies in a range whose state is
// at least s (Tainted: tainted or lost).
func (m *Map) Any(off, n int64, s State) bool {
	if m == nil || n <= 0 {
		return false
	}
	end := off + n
	for i := m.first(off); i < len(m.r) && m.r[i].Off < end; i++ {
		if m.r[i].State >= s {
			return true
		}
	}
	return false
}

// Count returns how many bytes of [off, off+n) lie in ranges whose state is
// at least s.
func (m *Map) Count(off, n int64, s State) int64 {
	var c int64
	for _, r := range m.Overlaps(off, n) {
		if r.State >= s {
			c += r.Len
		}
	}
	return c
}

// Total returns the number of bytes in ranges whose state is at least s.
func (m *Map) Total(s State) int64 {
	if m == nil {
		return 0
	}
	var c int64
	for _, r := range m.r {
		if r.State >= s {
			c += r.Len
		}
	}
	return c
}

// Slice returns the ranges within [off, off+n) as a new map whose offsets are
// relative to off: the damage of a volume that starts at off in its device.
func (m *Map) Slice(off, n int64) *Map {
	out := &Map{}
	for _, r := range m.Overlaps(off, n) {
		out.r = append(out.r, Range{r.Off - off, r.Len, r.State})
	}
	return out
}

// Shift adds every range of o, moved by delta, to m: the inverse of Slice,
// used to place a piece of one address space into another.
func (m *Map) Shift(o *Map, delta int64) {
	if o == nil {
		return
	}
	for _, r := range o.r {
		m.Add(r.Off+delta, r.Len, r.State)
	}
}

// Filter returns the ranges whose state is at least s, as a new map.
func (m *Map) Filter(s State) *Map {
	out := &Map{}
	if m == nil {
		return out
	}
	for _, r := range m.r {
		if r.State >= s {
			out.r = append(out.r, r)
		}
	}
	return out
}

// MarshalJSON encodes the map as a JSON array of ranges.
func (m *Map) MarshalJSON() ([]byte, error) {
	if m == nil || m.r == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(m.r)
}

// UnmarshalJSON decodes a JSON array of ranges, normalising it (in any
// order, in O(n log n)). A map of more than MaxRanges ranges is coarsened
// to that many (Coarsen).
func (m *Map) UnmarshalJSON(b []byte) error {
	var rs []Range
	if err := json.Unmarshal(b, &rs); err != nil {
		return err
	}
	for _, r := range rs {
		if r.Off < 0 || r.Len < 0 || r.Off > (1<<62)-r.Len {
			return fmt.Errorf("damage: bad range %+v", r)
		}
	}
	m.r = FromRanges(rs).r
	m.Coarsen(MaxRanges)
	return nil
}

// MaxRanges is the most ranges a Map read from a file keeps (Coarsen).
const MaxRanges = 1 << 17

// Coarsen merges neighbouring ranges until at most max remain, and returns
// how many ranges it merged away. It merges ranges less than 512 bytes
// apart, then less than 1 KiB, and so on, doubling: a merged range covers
// its parts and the gaps between them, in the worst of their states. So
// the map only ever grows: no byte it marked is unmarked, and a byte in a
// gap is marked too (damage reported wider than it is, never narrower).
// This bounds the memory and the reports of a map built from input that
// may be crafted (a device listing every other cluster as lost).
func (m *Map) Coarsen(max int) int {
	if m == nil || len(m.r) <= max || max < 1 {
		return 0
	}
	n := len(m.r)
	for gap := int64(512); len(m.r) > max; gap *= 2 {
		w := 0
		for _, r := range m.r {
			if w > 0 && r.Off-m.r[w-1].End() < gap {
				last := &m.r[w-1]
				last.Len = r.End() - last.Off
				last.State = maxState(last.State, r.State)
				continue
			}
			m.r[w] = r
			w++
		}
		m.r = m.r[:w]
	}
	return n - len(m.r)
}

func maxState(a, b State) State {
	if a > b {
		return a
	}
	return b
}

// Problem is one thing found wrong, at an offset in the named layer's
// address space (for example the compressed file for "zstd", the
// decompressed stream for "vma").
type Problem struct {
	Layer   string `json:"layer,omitempty"`
	Offset  int64  `json:"offset"`
	Message string `json:"message"`
	// Kind says what sort of problem it is, for programs: decide on it,
	// never on Message.
	Kind Kind `json:"kind,omitempty"`
}

// Kind is the sort of a Problem.
type Kind string

// Problem kinds.
const (
	// Corrupt: data that fails a check or does not parse.
	Corrupt Kind = "corrupt"
	// Truncated: the input ends before the data it holds is complete.
	Truncated Kind = "truncated"
	// Missing: data the format promises is not there (a disk's clusters).
	Missing Kind = "missing"
	// ChecksumMismatch: a checksum over the whole stream fails.
	ChecksumMismatch Kind = "checksum"
	// ReadError: the input could not be read (an I/O error).
	ReadError Kind = "read-error"
	// Bomb: the decompressed stream goes on far past what the archive can
	// hold (a decompression bomb); reading stopped there.
	Bomb Kind = "bomb"
	// Repaired: damaged data that was repaired where it lies (a rebuilt
	// header, a flipped bit found and flipped back); the message says what
	// was changed. The data is damaged; what it holds is known again.
	Repaired Kind = "repaired"
)

// String formats the problem as "layer at offset: message" (a negative
// offset means none is known).
func (p Problem) String() string {
	switch {
	case p.Offset < 0 && p.Layer == "":
		return p.Message
	case p.Offset < 0:
		return p.Layer + ": " + p.Message
	case p.Layer == "":
		return fmt.Sprintf("at %d: %s", p.Offset, p.Message)
	}
	return fmt.Sprintf("%s at %d: %s", p.Layer, p.Offset, p.Message)
}

// FromRanges builds a map from ranges in any order, overlapping or not
// (where they overlap the worse state wins), in O(n log n): the way to
// collect many ranges that arrive out of order.
func FromRanges(rs []Range) *Map {
	type event struct {
		pos   int64
		state State
		delta int
	}
	ev := make([]event, 0, 2*len(rs))
	for _, r := range rs {
		if r.Len > 0 && r.State != OK {
			ev = append(ev, event{r.Off, r.State, +1}, event{r.End(), r.State, -1})
		}
	}
	sort.Slice(ev, func(i, j int) bool { return ev[i].pos < ev[j].pos })
	m := &Map{}
	var count [Lost + 1]int
	for i := 0; i < len(ev); {
		pos := ev[i].pos
		for ; i < len(ev) && ev[i].pos == pos; i++ {
			count[ev[i].state] += ev[i].delta
		}
		if i == len(ev) {
			break
		}
		st := OK
		for s := Lost; s > OK; s-- {
			if count[s] > 0 {
				st = s
				break
			}
		}
		if st != OK {
			m.Add(pos, ev[i].pos-pos, st)
		}
	}
	return m
}

package ctar

import (
	"io"
	"sort"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// stream is a forward-only window on a decoder's output, with the damage
// the decoder reported in stream offsets.
type stream struct {
	r      codec.Reader
	mem    []byte
	lo, hi int   // mem[lo:hi] holds stream bytes [base, base+hi-lo)
	base   int64 // stream offset of mem[lo]
	eof    bool
	err    error // a read error other than io.EOF

	nspans int
	dmg    damage.Map
	resync []codec.Span // Resync spans, in order, from the scan's header on (forgetResyncs)
}

const windowSize = 1 << 20

func newStream(r codec.Reader) *stream {
	return &stream{r: r, mem: make([]byte, 64<<10)}
}

// end returns the stream offset just past the bytes read so far.
func (s *stream) end() int64 { return s.base + int64(s.hi-s.lo) }

// window returns the stream bytes [off, off+n) (fewer at the end of the
// stream), reading as needed. Bytes before off are dropped: offsets only go
// forward. n must be at most windowSize unless the caller accepts a larger
// buffer.
func (s *stream) window(off int64, n int) []byte {
	if off < s.base {
		return nil
	}
	if d := off - s.base; d > 0 {
		if avail := int64(s.hi - s.lo); d >= avail {
			s.base += avail
			s.lo, s.hi = 0, 0
			s.discard(off - s.base)
		} else {
			s.lo += int(d)
			s.base = off
		}
	}
	if s.hi-s.lo < n && !s.eof {
		if s.lo > 0 && len(s.mem)-s.lo < n {
			copy(s.mem, s.mem[s.lo:s.hi])
			s.hi -= s.lo
			s.lo = 0
		}
		for s.hi-s.lo < n && !s.eof {
			if s.hi == len(s.mem) {
				// grow as the bytes come, not by what was asked: a short
				// stream never costs a large buffer
				m := make([]byte, min(n, max(2*len(s.mem), windowSize)))
				copy(m, s.mem[:s.hi])
				s.mem = m
			}
			k, err := s.r.Read(s.mem[s.hi:])
			s.hi += k
			s.note(err)
		}
		s.sync()
	}
	return s.mem[s.lo:min(s.hi, s.lo+n)]
}

// discard reads and drops n bytes at the current position.
func (s *stream) discard(n int64) {
	for n > 0 && !s.eof {
		k, err := s.r.Read(s.mem[:min(int64(len(s.mem)), n)])
		n -= int64(k)
		s.base += int64(k)
		s.note(err)
	}
	s.sync()
}

func (s *stream) note(err error) {
	if err == nil {
		return
	}
	s.eof = true
	if err != io.EOF {
		s.err = err
	}
}

// sync takes in the spans the decoder has reported since the last call.
func (s *stream) sync() {
	sp := s.r.Spans()
	for ; s.nspans < len(sp); s.nspans++ {
		x := sp[s.nspans]
		st := x.State
		if x.Resync {
			st = damage.Lost
			s.resync = append(s.resync, x)
		}
		if st < damage.Tainted {
			st = damage.Tainted // a span is never trusted
		}
		s.addDamage(x.Off, x.Len, st)
	}
}

// maxStreamRanges bounds the stream's damage map: past four times as many
// ranges (24 bytes each: 6 MiB) it is coarsened back to this many
// (damage.Map.Coarsen: neighbours merge into the worse state, the bytes
// between included), so damage is reported wider than it is, never
// narrower, and the map's memory does not grow with the archive.
const maxStreamRanges = 1 << 16

// addDamage marks [off, off+n) as st in the stream's damage map, keeping
// the map within its bound.
func (s *stream) addDamage(off, n int64, st damage.State) {
	s.dmg.Add(off, n, st)
	if s.dmg.Len() > 4*maxStreamRanges {
		s.dmg.Coarsen(maxStreamRanges)
	}
}

// damaged reports whether any byte of [off, off+n) lies in damage.
func (s *stream) damaged(off, n int64) bool { return s.dmg.Any(off, n, damage.Tainted) }

// lost reports whether any byte of [off, off+n) is lost (a placeholder).
func (s *stream) lost(off, n int64) bool { return s.dmg.Any(off, n, damage.Lost) }

// forgetResyncs drops the Resync spans that start before off, the scan's
// current header: every later question (resyncIn) starts at or after it,
// the scan's header position only going forward. So the list holds the
// spans of what the scan reads past its header, not of the whole stream.
// (Amortised: it copies only when at least half the list goes.)
func (s *stream) forgetResyncs(off int64) {
	i := sort.Search(len(s.resync), func(i int) bool { return s.resync[i].Off >= off })
	if i > 0 && 2*i >= len(s.resync) {
		s.resync = append(s.resync[:0], s.resync[i:]...)
	}
}

// resyncIn returns the first Resync span that starts in [off, end), if any.
func (s *stream) resyncIn(off, end int64) (codec.Span, bool) {
	i := sort.Search(len(s.resync), func(i int) bool { return s.resync[i].Off >= off })
	if i < len(s.resync) && s.resync[i].Off < end {
		return s.resync[i], true
	}
	return codec.Span{}, false
}

package vma

import (
	"fmt"
	"math"
	"sort"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// What the decoder reported damaged, as the reader consults it: the spans
// in stream offsets, their worst state over a range, and the resynchronisation
// points after losses of unknown length.

func (r *Reader) spans() []codec.Span {
	if r.cr == nil {
		return nil
	}
	return r.cr.Spans()
}

// firstSpan returns the index of the first span that ends after off
// (spans are sorted and disjoint, so their ends are sorted too).
func firstSpan(sp []codec.Span, off int64) int {
	return sort.Search(len(sp), func(i int) bool { return sp[i].End() > off })
}

// resyncIn returns the first Resync span that starts within [lo, hi).
func (r *Reader) resyncIn(lo, hi int64) (codec.Span, bool) {
	sp := r.spans()
	for i := firstSpan(sp, lo); i < len(sp) && sp[i].Off < hi; i++ {
		if sp[i].Resync {
			return sp[i], true
		}
	}
	return codec.Span{}, false
}

// worst returns the worst span state within [lo, hi), and whether Cond
// bytes (right if every earlier loss of unknown length was sized right)
// lie there. Cond spans do not count in the state.
func (r *Reader) worst(lo, hi int64) (st damage.State, cond bool) {
	sp := r.spans()
	for i := firstSpan(sp, lo); i < len(sp) && sp[i].Off < hi; i++ {
		if sp[i].Cond && sp[i].State == damage.Tainted {
			cond = true
		} else if sp[i].State > st {
			st = sp[i].State
		}
	}
	return st, cond
}

// condTrusted reports whether Cond bytes at stream offset p can be trusted
// provisionally: every loss of unknown length before p was sized from the
// extent arithmetic (confirmed or resized). The trust becomes final at the
// end, like that of placed tails.
func (r *Reader) condTrusted(p int64) bool {
	ok := r.rsBad >= p // else a loss the reader passed was never confirmed
	for _, off := range r.resyncsBefore(p) {
		if !ok {
			break
		}
		ok = r.confirmed[off]
	}
	if r.ref != nil {
		r.ref.check(r, p, ok)
	}
	return ok
}

// foldCheck makes every Reader check what condTrusted folds against every
// loss it saw (tests set it).
var foldCheck bool

// foldRef is condTrusted's answer the long way: every Resync span seen and
// every loss confirmed, never forgotten.
type foldRef struct{ seen, confirmed map[int64]bool }

func (f *foldRef) note(sp []codec.Span) {
	for _, s := range sp {
		if s.Resync {
			f.seen[s.Off] = true
		}
	}
}

func (f *foldRef) check(r *Reader, p int64, ok bool) {
	f.note(r.spans())
	want := true
	for off := range f.seen {
		if off < p && !f.confirmed[off] {
			want = false
		}
	}
	if ok != want {
		panic(fmt.Sprintf("vma: condTrusted(%d) = %v, every loss seen says %v", p, ok, want))
	}
}

// confirm records that the loss at off has its true length.
func (r *Reader) confirm(off int64) {
	r.confirmed[off] = true
	if r.ref != nil {
		r.ref.confirmed[off] = true
	}
}

// resyncsBefore returns the offsets of the Resync spans that start before p
// and after the offset last passed (see pass). It keeps an index of them, cut back
// when a Resize drops the spans from the loss on.
func (r *Reader) resyncsBefore(p int64) []int64 {
	sp := r.spans()
	i := sort.Search(len(sp), func(i int) bool { return sp[i].Off >= r.rsFrom })
	for ; i < len(sp); i++ {
		if sp[i].Resync {
			r.rsOffs = append(r.rsOffs, sp[i].Off)
		}
		r.rsFrom = sp[i].Off + 1
	}
	i = sort.Search(len(r.rsOffs), func(i int) bool { return r.rsOffs[i] >= p })
	return r.rsOffs[:i]
}

// pass tells the reader that nothing before stream offset t will be
// consulted again (t is where the next extent, or scan, starts). What the
// reader needs of the spans before t is folded into a few numbers: the
// bytes of the spans that end by t, and the first loss of unknown length
// that starts before t and was never confirmed (only a loss at or after
// the position of the extent being read can be, so that is final, even for
// a loss that reaches past t). Options.Spans sees the spans that end by
// t, and the codec may forget them (codec.Trimmer): what a long damaged
// stream keeps does not grow with its length.
func (r *Reader) pass(t int64) {
	if t <= r.passed {
		return
	}
	if r.ref != nil {
		r.ref.note(r.spans())
	}
	r.resyncsBefore(t) // every loss that starts before t is indexed
	k := sort.Search(len(r.rsOffs), func(i int) bool { return r.rsOffs[i] >= t })
	for _, off := range r.rsOffs[:k] {
		if !r.confirmed[off] {
			r.rsBad = min(r.rsBad, off)
		}
	}
	if k > 0 {
		r.rsOffs = append(r.rsOffs[:0], r.rsOffs[k:]...)
	}
	sp := r.spans()
	i := sort.Search(len(sp), func(i int) bool { return !codec.Dead(sp[i], r.passed) })
	for ; i < len(sp) && codec.Dead(sp[i], t); i++ {
		r.damagedPassed += sp[i].Len
		if r.opt.Spans != nil {
			r.opt.Spans(sp[i])
		}
	}
	r.passed = t
	for off := range r.confirmed {
		if off < t {
			delete(r.confirmed, off)
		}
	}
	for off := range r.resizeTried {
		if off < t {
			delete(r.resizeTried, off)
		}
	}
	if tr, ok := r.cr.(codec.Trimmer); ok {
		tr.TrimSpans(t)
	}
}

// passAll passes every span (the end of the read: Options.Spans sees
// them all).
func (r *Reader) passAll() { r.pass(math.MaxInt64) }

// resyncsIn returns, for the Resync spans in [lo, hi): the end of the last,
// the sum of their MaxLen (-1 if any is unbounded) and the sum of their Len.
func (r *Reader) resyncsIn(lo, hi int64) (lastEnd, maxSum, sumLen int64) {
	sp := r.spans()
	lastEnd = lo
	for i := firstSpan(sp, lo); i < len(sp) && sp[i].Off < hi; i++ {
		if !sp[i].Resync || sp[i].End() <= lo {
			continue
		}
		lastEnd = sp[i].End()
		sumLen += sp[i].Len
		if sp[i].MaxLen < 0 || maxSum < 0 {
			maxSum = -1
		} else {
			maxSum += sp[i].MaxLen
		}
	}
	return
}

package vma

import (
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
	for _, off := range r.resyncsBefore(p) {
		if !r.confirmed[off] {
			return false
		}
	}
	return true
}

// resyncsBefore returns the offsets of the Resync spans that start before
// p. It keeps an index of them, rebuilt when a Resize shrinks the spans.
func (r *Reader) resyncsBefore(p int64) []int64 {
	sp := r.spans()
	if len(sp) < r.rsScanned {
		r.rsScanned, r.rsOffs = 0, r.rsOffs[:0]
	}
	for ; r.rsScanned < len(sp); r.rsScanned++ {
		if sp[r.rsScanned].Resync {
			r.rsOffs = append(r.rsOffs, sp[r.rsScanned].Off)
		}
	}
	i := sort.Search(len(r.rsOffs), func(i int) bool { return r.rsOffs[i] >= p })
	return r.rsOffs[:i]
}

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

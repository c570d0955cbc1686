package ctar

import (
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// TestStreamDamageBounded: a stream whose decoder reports a span every few
// hundred bytes keeps at most 4×maxStreamRanges ranges, and every byte of
// every span stays marked at its state or worse.
func TestStreamDamageBounded(t *testing.T) {
	n := 5 * maxStreamRanges
	spans := make([]codec.Span, n)
	for i := range spans {
		st := damage.Tainted
		if i%3 == 0 {
			st = damage.Lost
		}
		spans[i] = codec.Span{Off: int64(i) * 700, Len: 1 + int64(i%100), State: st}
	}
	s := newStream(&spanReader{Reader: strings.NewReader(""), spans: spans})
	s.sync()
	if s.dmg.Len() > 4*maxStreamRanges {
		t.Fatalf("%d ranges kept, more than %d", s.dmg.Len(), 4*maxStreamRanges)
	}
	if s.dmg.Len() == n {
		t.Fatalf("the map was not coarsened")
	}
	for _, x := range spans {
		if got := s.dmg.Count(x.Off, x.Len, x.State); got != x.Len {
			t.Fatalf("span %+v: %d of its bytes still at %v or worse", x, got, x.State)
		}
	}
}

// TestForgetResyncs: the Resync spans before the scan's header are
// forgotten, and every question from there on has the same answer.
func TestForgetResyncs(t *testing.T) {
	var spans []codec.Span
	for i := int64(0); i < 1000; i++ {
		spans = append(spans, codec.Span{Off: i * 1000, Len: 10, State: damage.Lost, Resync: true})
	}
	s := newStream(&spanReader{Reader: strings.NewReader(""), spans: spans})
	s.sync()
	all := append([]codec.Span(nil), s.resync...)
	for low := int64(0); low < 1000*1000; low += 333 * 512 {
		s.forgetResyncs(low)
		if n := len(s.resync); n > 2*(1000-int(low/1000))+1 {
			t.Fatalf("%d spans kept from %d on", n, low)
		}
		ref := stream{resync: all}
		for off := low; off < 1000*1000+5000; off += 777 {
			a, okA := s.resyncIn(off, off+1500)
			b, okB := ref.resyncIn(off, off+1500)
			if a != b || okA != okB {
				t.Fatalf("from %d, resyncIn(%d) = %v %v, want %v %v", low, off, a, okA, b, okB)
			}
		}
	}
}

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

package extract

import (
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// TestMapSpansBounded: a StreamMap keeps at most 2*maxMapSpans spans, and
// coarsening never makes a byte look better: a byte in a span stays in one
// at least as bad, a Donor span covers only bytes of Donor spans, and a
// byte of a non-Donor span never lands in a Donor span.
func TestMapSpansBounded(t *testing.T) {
	g := rand.New(rand.NewPCG(1, 2))
	var m StreamMap
	var all []codec.Span
	off := int64(0)
	for i := 0; i < 3*maxMapSpans; i++ {
		off += int64(g.IntN(2000))
		s := codec.Span{Off: off, Len: int64(1 + g.IntN(300)), State: damage.Tainted}
		switch g.IntN(4) {
		case 0:
			s.Donor = true
		case 1:
			s.State = damage.Lost
		case 2:
			s.Cond = true
		}
		all = append(all, s)
		m.addSpan(s)
		off = s.End()
		if len(m.Spans) > 2*maxMapSpans {
			t.Fatalf("%d spans kept", len(m.Spans))
		}
	}
	if len(m.Spans) >= len(all) {
		t.Fatal("nothing coarsened")
	}
	j := 0
	for _, s := range all {
		for j < len(m.Spans) && m.Spans[j].End() <= s.Off {
			j++
		}
		if j == len(m.Spans) || m.Spans[j].Off > s.Off || m.Spans[j].End() < s.End() {
			t.Fatalf("span %+v not covered", s)
		}
		c := m.Spans[j]
		if c.State < s.State || c.Donor && !s.Donor || c.Cond && !s.Cond {
			t.Fatalf("span %+v kept as %+v", s, c)
		}
	}
	for i, c := range m.Spans {
		if i > 0 && c.Off < m.Spans[i-1].End() {
			t.Fatal("spans overlap")
		}
	}
}

package zstd

import (
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// TestCoarseSpans: after a loss of unknown length, Cond bytes (copied
// from before the loss) and plain tainted bytes alternate a few bytes
// apart. With codec.Options.Coarse the spans stay few, and every byte is
// reported at least as damaged as without it.
func TestCoarseSpans(t *testing.T) {
	orig, c := vmaData(t)[:stPrefix], archiveST(t)
	ref := newRefMap(t, c, orig)
	d := append([]byte(nil), c...)
	var damaged []rng
	g := rand.New(rand.NewPCG(7, 1))
	for _, frac := range []float64{0.2, 0.5, 0.8} {
		x := ref.blocks[pickCompressed(t, c, ref, frac)].In + 20
		for p := x; p < x+4096; p++ {
			d[p] = byte(g.Uint32())
		}
		damaged = append(damaged, rng{x, x + 4096})
	}
	fine := decode(d, codec.Options{}, config{})
	coarse := decode(d, codec.Options{Coarse: true}, config{})
	for _, r := range []decoded{fine, coarse} {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if v := judge(orig, ref, r, damaged); v.wrong != 0 {
			t.Errorf("%d wrong bytes outside spans", v.wrong)
		}
	}
	if string(fine.out) != string(coarse.out) {
		t.Fatal("Coarse changed the output")
	}
	lf, lc := spanLevels(fine.spans, len(fine.out)), spanLevels(coarse.spans, len(coarse.out))
	for i := range lf {
		if lc[i] < lf[i] {
			t.Fatalf("byte %d: level %d with Coarse, %d without", i, lc[i], lf[i])
		}
	}
	t.Logf("spans: %d, %d with Coarse", len(fine.spans), len(coarse.spans))
	if n := len(coarse.spans); n > maxCoarseSpans {
		t.Errorf("%d spans with Coarse, want at most %d", n, maxCoarseSpans)
	}
}

// maxCoarseSpans bounds the spans TestCoarseSpans may get with Coarse
// (measured: 353, and 39 707 without Coarse).
const maxCoarseSpans = 1000

// spanLevels returns, per output byte, how damaged the spans say it is:
// 0 clean, 1 Cond, 2 tainted, 3 lost.
func spanLevels(spans []codec.Span, n int) []byte {
	l := make([]byte, n)
	for _, s := range spans {
		v := byte(2)
		switch {
		case s.State == damage.Lost:
			v = 3
		case s.Cond:
			v = 1
		}
		for i := s.Off; i < s.End() && i < int64(n); i++ {
			l[i] = max(l[i], v)
		}
	}
	return l
}

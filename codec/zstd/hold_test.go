package zstd

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
)

// withRawBlocks is 8 MiB of disk-like data with a 640 KiB incompressible
// stretch in the middle, which zstd stores as raw blocks.
var withRawBlocks = sync.OnceValue(func() []byte {
	d := diskLike()
	r := rand.New(rand.NewPCG(11, 12))
	noise := make([]byte, 640<<10)
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	out := append([]byte(nil), d[:4<<20]...)
	out = append(out, noise...)
	return append(out, d[4<<20:8<<20]...)
})

// TestGarbageBeforeHeader: a 64 KiB garbage run that starts inside block B
// and covers the next block's header H, on real zstd output. B may decode
// without error (always, when it is raw); its wrong output must lie in
// spans all the same (the chain-break rule), and so must everything else
// that differs from the original.
func TestGarbageBeforeHeader(t *testing.T) {
	orig := withRawBlocks()
	for _, args := range [][]string{{"--threads=1"}, {"--single-thread"}} {
		c := zstdCLI(t, orig, args...)
		ref := newRefMap(t, c, orig)
		type trial struct {
			b  int
			at int64
		}
		var trials []trial
		for i, b := range ref.blocks[:len(ref.blocks)-1] {
			if bh := parseBlockHeader(c[b.In:]); bh.typ == blockRaw && bh.clen > 1024 {
				for _, f := range []int64{4, 2} {
					trials = append(trials, trial{i, ref.end[i] - int64(bh.clen)/f})
				}
			}
		}
		if len(trials) == 0 {
			t.Fatalf("%v: no raw block", args)
		}
		r := rand.New(rand.NewPCG(5, 6))
		for k := 0; k < 6; k++ {
			i := pickCompressed(t, c, ref, 0.1+0.8*float64(k)/6)
			clen := int64(parseBlockHeader(c[ref.blocks[i].In:]).clen)
			trials = append(trials, trial{i, ref.end[i] - 1 - r.Int64N(min(clen-2, 60<<10))})
		}
		silent := 0
		for _, tr := range trials {
			end := min(tr.at+64<<10, int64(len(c)))
			if end < ref.end[tr.b]+3 {
				continue
			}
			d := append([]byte(nil), c...)
			g := rand.New(rand.NewPCG(uint64(tr.at), 9))
			for p := tr.at; p < end; p++ {
				d[p] = byte(g.Uint32())
			}
			got := decode(d, codec.Options{}, config{})
			if got.err != nil {
				t.Fatalf("%v: %v", args, got.err)
			}
			if len(got.problemAt) > 0 && got.problemAt[0] >= ref.end[tr.b] {
				silent++ // B decoded without error: the chain broke at H
			}
			v := judge(orig, ref, got, []rng{{tr.at, end}})
			if v.wrong != 0 {
				t.Errorf("%v: garbage [%d,%d) from block %d at %d: %d wrong bytes outside spans", args, tr.at, end, tr.b, ref.blocks[tr.b].In, v.wrong)
			}
		}
		t.Logf("%v: %d trials, B decoded without error in %d", args, len(trials), silent)
		if silent == 0 {
			t.Errorf("%v: the case this test is about did not occur", args)
		}
	}
}

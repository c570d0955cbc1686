package zstd

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// TestMaxProblems: with codec.Options.MaxProblems a Reader keeps the first
// problems and the one that says where the stream ends, counts them all,
// and its output and spans are those of a Reader that keeps them all.
func TestMaxProblems(t *testing.T) {
	c := archiveST(t)
	d := append([]byte(nil), c...)
	g := rand.New(rand.NewPCG(3, 4))
	for p := 30 << 10; p+512 < len(d); p += 30 << 10 {
		for i := p; i < p+512; i++ {
			d[i] = byte(g.Uint32())
		}
	}
	d = d[:len(d)-1000] // and it ends early
	read := func(opt codec.Options) (*Reader, []byte) {
		z := newReader(bytes.NewReader(d), opt, config{})
		out, err := io.ReadAll(z)
		if err != nil {
			t.Fatal(err)
		}
		return z, out
	}
	all, outAll := read(codec.Options{})
	few, outFew := read(codec.Options{MaxProblems: 3})
	n := len(all.Problems())
	if n < 10 || all.ProblemCount() != n {
		t.Fatalf("%d problems (count %d): the test does not make enough", n, all.ProblemCount())
	}
	if few.ProblemCount() != n || !bytes.Equal(outAll, outFew) || len(all.Spans()) != len(few.Spans()) {
		t.Fatalf("count %d of %d; output or spans differ", few.ProblemCount(), n)
	}
	ps := few.Problems()
	if len(ps) != 4 || ps[3].Kind != damage.Truncated {
		t.Fatalf("kept %v, want the first 3 and the truncation", ps)
	}
}

package lzo

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestStress damages an lzop file as vzdump writes it (lzop reading a
// pipe) at random, N times, once per trial (a garbage run of 1 B to
// 96 KiB, a zeroed 4 KiB page, a bit flip), and checks on each that no
// byte outside the spans differs from the original, after a loss at the
// same offset give or take whole blocks. lzop checks every block, so no
// damage may be silent. It runs only when asked:
//
//	VZSALVAGE_STRESS=2000 go test ./codec/lzo -run 'TestStress$' -v -timeout 1h
func TestStress(t *testing.T) {
	first, end := testutil.Stress(t)
	data := diskData(4 << 20)
	lz := lzopStdin(t, data)
	var located, silent, harmless, resyncs int
	var good int64
	for seed := first; seed < end; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x1f))
		d := append([]byte(nil), lz...)
		at := codectest.RandomDamage(d, r)
		rd, out, err := decode(t, d, codec.Options{})
		if err != nil {
			if at < len(magic) {
				continue // the damage took the magic: not an lzop file any more
			}
			t.Errorf("seed %d: %v", seed, err)
			continue
		}
		good += check(t, fmt.Sprintf("seed %d", seed), data, out, rd)
		for _, s := range rd.Spans() {
			if s.Resync {
				resyncs++
			}
		}
		switch {
		case len(rd.Spans()) > 0:
			located++
		case rd.Checksum() == codec.ChecksumMismatch || len(out) != len(data):
			silent++
			t.Errorf("seed %d: damage not located (checksum %s, problems %v)", seed, rd.Checksum(), rd.Problems())
		default:
			harmless++
		}
	}
	n := end - first
	t.Logf("%d trials: %d located (%d resyncs), %d harmless, %d silent; %.2f%% intact",
		n, located, resyncs, harmless, silent, 100*float64(good)/float64(int64(n)*int64(len(data))))
}

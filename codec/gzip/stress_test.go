package gzip

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestStress damages streams as vzdump writes them (gzip --rsyncable,
// pigz --rsyncable) and one without sync points (gzip -6) at random, N
// times each, once per trial (a garbage run of 1 B to 96 KiB, a zeroed
// 4 KiB page, a bit flip), and checks on each that no byte outside the
// spans differs from the original, after a loss at the offset the stream's
// end gives (unless a member's CRC failed with no span: then nothing
// located the damage). It runs only when asked:
//
//	VZSALVAGE_STRESS=2000 go test ./codec/gzip -run 'TestStress$' -v -timeout 1h
func TestStress(t *testing.T) {
	first, end := testutil.Stress(t)
	data := diskData(4 << 20)
	for name, gz := range vzdumpStreams(t, data) {
		var silent, located, wrong int
		var v verdict
		for seed := first; seed < end; seed++ {
			r := rand.New(rand.NewPCG(seed, 0x9e))
			d := append([]byte(nil), gz...)
			at := codectest.RandomDamage(d, r)
			rd, out, err := decode(t, d, codec.Options{})
			if err != nil {
				if at < 10 {
					continue // the damage took the gzip magic: not a gzip stream any more
				}
				t.Errorf("%s seed %d: %v", name, seed, err)
				continue
			}
			c := check(t, fmt.Sprintf("%s seed %d", name, seed), data, out, rd, true)
			v.good += c.good
			v.unchecked += c.unchecked
			switch {
			case c.wrong > 0:
				wrong++
			case len(rd.Spans()) == 0 && rd.Checksum() == codec.ChecksumMismatch:
				silent++
			case len(rd.Spans()) > 0:
				located++
			}
		}
		n := end - first
		t.Logf("%s: %d trials: %d located, %d silent (CRC only), %d with wrong bytes outside the spans; %.2f%% intact, %d bytes between losses",
			name, n, located, silent, wrong, 100*float64(v.good)/float64(int64(n)*int64(len(data))), v.unchecked)
	}
}

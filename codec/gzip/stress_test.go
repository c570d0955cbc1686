package gzip

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestStress damages a `gzip --rsyncable` stream at random, N times, once
// each (a garbage run of 1 B to 96 KiB, a zeroed 4 KiB page, a bit flip),
// and checks on each that no byte outside the spans differs from the
// original (unless a member's CRC failed: then nothing locates the
// damage). It runs only when asked:
//
//	VZSALVAGE_STRESS=2000 go test ./codec/gzip -run 'TestStress$' -v -timeout 1h
func TestStress(t *testing.T) {
	first, end := testutil.Stress(t)
	data := testimg.Corpus(t, 4<<20)
	gz := testimg.Compress(t, data, "gzip", "--rsyncable", "-n")
	for seed := first; seed < end; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x9e))
		d := append([]byte(nil), gz...)
		at := r.IntN(len(d))
		switch r.IntN(3) {
		case 0:
			for p := at; p < min(at+1+r.IntN(96<<10), len(d)); p++ {
				d[p] = byte(r.Uint32())
			}
		case 1:
			at &^= 4095
			clear(d[at:min(at+4096, len(d))])
		default:
			d[at] ^= 1 << r.IntN(8)
		}
		rd, out, err := decode(t, d, codec.Options{})
		if err != nil {
			if at < 10 {
				continue // the damage took the gzip magic: not a gzip stream any more
			}
			t.Errorf("seed %d: %v", seed, err)
			continue
		}
		check(t, fmt.Sprintf("seed %d", seed), data, out, rd)
	}
}

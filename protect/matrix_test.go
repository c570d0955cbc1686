package protect

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/reedsolomon"
)

// TestNewRSIsTheDefaultCode: newRS's parity is reedsolomon's default code's,
// byte for byte (sidecars written with either repair with the other), for
// the default layout and others.
func TestNewRSIsTheDefaultCode(t *testing.T) {
	def, err := ParityFor(DefaultOverhead)
	if err != nil {
		t.Fatal(err)
	}
	g := rand.New(rand.NewPCG(1, 2))
	for _, km := range [][2]int{{def.DataShards, def.ParityShards}, {1, 1}, {10, 4}, {128, 128}, {200, 56}, {255, 1}, {17, 3}} {
		k, m := km[0], km[1]
		ref, err := reedsolomon.New(k, m)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := newRS(k, m)
		if err != nil {
			t.Fatal(err)
		}
		shards := func() [][]byte {
			s := make([][]byte, k+m)
			for i := range s {
				s[i] = make([]byte, 64)
				if i < k {
					for j := range s[i] {
						s[i][j] = byte(g.Uint32())
					}
				}
			}
			return s
		}
		a := shards()
		b := make([][]byte, k+m)
		for i := range a {
			b[i] = bytes.Clone(a[i])
		}
		if err := ref.Encode(a); err != nil {
			t.Fatal(err)
		}
		if err := ours.Encode(b); err != nil {
			t.Fatal(err)
		}
		for i := k; i < k+m; i++ {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("k %d, m %d: parity shard %d differs from reedsolomon's default code", k, m, i-k)
			}
		}
		// and it rebuilds lost data shards
		for i := 0; i < min(m, k); i++ {
			b[i] = nil
		}
		if err := ours.Reconstruct(b); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < k; i++ {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("k %d, m %d: shard %d not rebuilt", k, m, i)
			}
		}
	}
}

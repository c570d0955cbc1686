package vma

import (
	"bytes"
	"math/rand"
	"testing"
)

// TestDataKept: when DataKept says so, the next Next leaves the Data of
// the cluster returned before it unchanged (extract joins the writes of
// such clusters), on clean and on damaged streams.
func TestDataKept(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	disks := [][]byte{testDisk(rng, 8<<20), testDisk(rng, 540672)}
	arc, _ := testArchive(t, rng, disks)
	kept, checked := 0, 0
	for iter := 0; iter < 40; iter++ {
		var ops []dmgOp
		if iter > 0 {
			lo := 13000 + rng.Intn(len(arc)-13000)
			op := dmgOp{kind: "tlr"[rng.Intn(3)], lo: lo, hi: min(lo+1+rng.Intn(200000), len(arc))}
			if op.kind == 'r' {
				op.est, op.max = rng.Intn(200000), -1
			}
			ops = append(ops, op)
		}
		r, err := NewReader(damageStream(arc, ops, rng, nil), Options{Salvage: true})
		if err != nil {
			t.Fatal(err)
		}
		var prev, want []byte
		for {
			c, err := r.Next()
			if prev != nil {
				checked++
				if !bytes.Equal(prev, want) {
					t.Fatalf("iter %d: data kept changed by Next", iter)
				}
			}
			if err != nil {
				break
			}
			prev, want = nil, nil
			if r.DataKept() && len(c.Data) > 0 {
				kept++
				prev, want = c.Data, bytes.Clone(c.Data)
			}
		}
	}
	if kept == 0 || checked == 0 {
		t.Fatalf("DataKept never held (%d, %d)", kept, checked)
	}
}

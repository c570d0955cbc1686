package protect

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// damageFile applies the mix to a file: a 64 KiB garbage run, a
// zeroed 4 KiB page and one bit flip, at places drawn from seed (at least
// 1 MiB from the start, so that the VMA header survives).
func damageFile(t *testing.T, path string, seed uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	pick := func(n int) int { return 1<<20 + rng.IntN(len(b)-1<<20-n) }
	g := pick(64 << 10)
	for i := g; i < g+64<<10; i++ {
		b[i] = byte(rng.Uint32())
	}
	z := pick(4096) &^ 4095
	clear(b[z : z+4096])
	f := pick(1)
	b[f] ^= 1 << rng.IntN(8)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRepairPutsTheOriginalBack(t *testing.T) {
	arc := testArchive(t)
	want := fileSHA(t, arc)
	protectOK(t, arc, Options{})
	for seed := uint64(1); seed <= 3; seed++ {
		damageFile(t, arc, seed)
		if fileSHA(t, arc) == want {
			t.Fatal("damage changed nothing")
		}
		out := filepath.Join(t.TempDir(), "fixed.vma.zst")
		rr, err := Repair(arc, RepairOptions{Output: out})
		if err != nil {
			t.Fatal(err)
		}
		if rr.Intact || !rr.Complete || rr.Output != out || !rr.Unrepairable.Empty() {
			t.Fatalf("seed %d: %+v", seed, rr)
		}
		if got := fileSHA(t, out); got != want {
			t.Fatalf("seed %d: repaired sha256 %s, want %s", seed, got, want)
		}
		t.Logf("seed %d: %d damaged bytes in %d ranges, %d rebuilt", seed, rr.Damage.Total(0), rr.Damage.Len(), rr.Rebuilt)
		// in place, then the archive is intact again
		rr, err = Repair(arc, RepairOptions{InPlace: true})
		if err != nil || !rr.Complete || fileSHA(t, arc) != want {
			t.Fatalf("in place: %v %+v", err, rr)
		}
		if rr, err := Repair(arc, RepairOptions{}); err != nil || !rr.Intact {
			t.Fatalf("after the repair: %v %+v", err, rr)
		}
	}
}

package protect

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
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

// TestInterruptLeavesNothing: protect and repair stopped by their context
// (an interrupt) say so and leave no temporary sidecar or archive behind,
// and the archive as it was.
func TestInterruptLeavesNothing(t *testing.T) {
	arc := testArchive(t)
	dir := filepath.Dir(arc)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Protect(arc, Options{Context: ctx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("protect: %v, want context.Canceled", err)
	}
	onlyThese(t, dir, filepath.Base(arc))

	protectOK(t, arc, Options{})
	damageFile(t, arc, 1)
	damaged := fileSHA(t, arc)
	for _, opt := range []RepairOptions{{Output: filepath.Join(dir, "fixed.vma.zst")}, {InPlace: true}} {
		// interrupted once the check is done, while the output is written
		ctx, cancel := context.WithCancel(context.Background())
		opt.Context = ctx
		opt.Progress = func(done, total int64) {
			if done == total {
				cancel()
			}
		}
		if _, err := Repair(arc, opt); !errors.Is(err, context.Canceled) {
			t.Fatalf("repair %+v: %v, want context.Canceled", opt, err)
		}
		onlyThese(t, dir, filepath.Base(arc), filepath.Base(arc)+".vzsalvage")
		if fileSHA(t, arc) != damaged {
			t.Fatal("the interrupted repair changed the archive")
		}
	}
}

// onlyThese fails unless dir holds exactly the named files.
func onlyThese(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, slices.Sorted(slices.Values(names))) {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
}

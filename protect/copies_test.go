package protect

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// garbage writes n random bytes at frac of the file's length.
func garbage(t *testing.T, path string, frac float64, n int, seed uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := int(float64(len(b)) * frac)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := p; i < p+n && i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRepairWithCopiesAndSidecar: damage beyond the parity in the archive
// and in its copy, at other places: the sidecar's hashes take each damaged
// chunk from the copy, and the original comes back bit for bit.
func TestRepairWithCopiesAndSidecar(t *testing.T) {
	arc := testArchive(t)
	want := fileSHA(t, arc)
	protectOK(t, arc, Options{})
	cp := filepath.Join(t.TempDir(), filepath.Base(arc))
	copyFile(t, arc, cp)
	st, _ := os.Stat(arc)
	run := int(st.Size() / 5) // far beyond the parity
	garbage(t, arc, 0.2, run, 1)
	garbage(t, cp, 0.6, run, 2)
	if rr, err := Repair(arc, RepairOptions{NoLocate: true}); err != nil || rr.Complete {
		t.Fatalf("the damage fits the parity alone: %v %+v", err, rr)
	}
	out := filepath.Join(t.TempDir(), "fixed.vma.zst")
	rr, err := Repair(arc, RepairOptions{Output: out, Copies: []string{cp}})
	if err != nil {
		t.Fatal(err)
	}
	if !rr.Complete || fileSHA(t, out) != want || rr.FromCopies == 0 {
		t.Fatalf("not repaired from the copy: %+v", rr)
	}
	t.Logf("%d damaged bytes, %d from the copy, %d rebuilt from parity", rr.Damage.Total(0), rr.FromCopies, rr.Rebuilt)
}

// TestRepairFromCopies: no sidecar, two copies each hit by a 64 KiB
// garbage run elsewhere: the merged archive is the original; --in-place
// puts it in place of the damaged one.
func TestRepairFromCopies(t *testing.T) {
	arc := testArchive(t)
	want := fileSHA(t, arc)
	cp := filepath.Join(t.TempDir(), filepath.Base(arc))
	copyFile(t, arc, cp)
	garbage(t, arc, 0.3, 65536, 1)
	garbage(t, cp, 0.7, 65536, 2)
	if _, err := Repair(arc, RepairOptions{}); err == nil {
		t.Fatal("a repair without sidecar or copy ran")
	}
	out := filepath.Join(t.TempDir(), "fixed.vma.zst")
	rr, err := Repair(arc, RepairOptions{Output: out, Copies: []string{cp}})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Intact || !rr.Complete || rr.Merge == nil || !rr.Merge.Verified || fileSHA(t, out) != want {
		t.Fatalf("not merged: %+v %+v", rr, rr.Merge)
	}
	rr, err = Repair(arc, RepairOptions{InPlace: true, Copies: []string{cp}})
	if err != nil || !rr.Complete || fileSHA(t, arc) != want {
		t.Fatalf("in place: %v %+v", err, rr)
	}
	rr, err = Repair(arc, RepairOptions{Copies: []string{cp}})
	if err != nil || !rr.Intact {
		t.Fatalf("after the repair: %v %+v", err, rr)
	}
}

package protect

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/rescue"
	"github.com/vzsalvage/vzsalvage/vma"
)

// rawBlocks returns the [start, end) of the content of every raw block of
// the single zstd frame in b (what the zstd CLI writes for vzdump).
func rawBlocks(t *testing.T, b []byte) [][2]int {
	t.Helper()
	if len(b) < 6 || binary.LittleEndian.Uint32(b) != 0xfd2fb528 {
		t.Fatal("not a zstd frame")
	}
	fhd := b[4]
	p := 5
	if fhd&0x20 == 0 {
		p++ // window descriptor
	}
	p += []int{0, 1, 2, 4}[fhd&3]
	fcs := []int{0, 2, 4, 8}[fhd>>6]
	if fcs == 0 && fhd&0x20 != 0 {
		fcs = 1
	}
	p += fcs
	var raws [][2]int
	for p+3 <= len(b) {
		h := int(b[p]) | int(b[p+1])<<8 | int(b[p+2])<<16
		last, typ, size := h&1, (h>>1)&3, h>>3
		p += 3
		switch typ {
		case 0:
			raws = append(raws, [2]int{p, p + size})
			p += size
		case 1:
			p++
		default:
			p += size
		}
		if last == 1 {
			break
		}
	}
	return raws
}

// wrongClusters compares a read's images with the original disks and
// returns, per device, the clusters that differ.
func wrongClusters(t *testing.T, images map[string]string) map[string]map[int64]bool {
	t.Helper()
	out := map[string]map[int64]bool{}
	for _, d := range shared.disks {
		want, err := os.ReadFile(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(images[d.Name])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: image of %d bytes, want %d", d.Name, len(got), len(want))
		}
		m := map[int64]bool{}
		for off := 0; off < len(want); off += vma.ClusterSize {
			end := min(off+vma.ClusterSize, len(want))
			if !bytes.Equal(got[off:end], want[off:end]) {
				m[int64(off/vma.ClusterSize)] = true
			}
		}
		out[d.Name] = m
	}
	return out
}

// flagged returns, per device, the clusters with a byte in the damage.
func flagged(rep *report.Report) map[string]map[int64]bool {
	out := map[string]map[int64]bool{}
	for _, dc := range Clusters(rep) {
		m := map[int64]bool{}
		for _, r := range dc.Ranges {
			for c := r.First; c <= r.Last; c++ {
				m[c] = true
			}
		}
		out[dc.Device] = m
	}
	return out
}

// sameClusters fails unless the flagged clusters are exactly the wrong ones.
func sameClusters(t *testing.T, wrong, flag map[string]map[int64]bool) int {
	t.Helper()
	n := 0
	for _, d := range shared.disks {
		for c := range wrong[d.Name] {
			if !flag[d.Name][c] {
				t.Errorf("%s: cluster %d is wrong but not flagged", d.Name, c)
			}
			n++
		}
		for c := range flag[d.Name] {
			if !wrong[d.Name][c] {
				t.Errorf("%s: cluster %d is flagged but right", d.Name, c)
			}
		}
	}
	return n
}

// TestBeyondParityLocatesEveryCluster: a garbage run longer than the parity
// rebuilds; repair says so and the read with the sidecar flags exactly the
// clusters that are wrong.
func TestBeyondParityLocatesEveryCluster(t *testing.T) {
	arc := testArchive(t)
	res := protectOK(t, arc, Options{})
	b, _ := os.ReadFile(arc)
	run := int(res.Parity.LongestRun(int64(len(b)))) * 2
	at := len(b) * 2 / 5
	for i := at; i < at+run; i++ {
		b[i] = byte(i*7 + 3)
	}
	os.WriteFile(arc, b, 0o644)
	rr, err := Repair(arc, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Complete || rr.Unrepairable.Empty() || rr.Located == nil {
		t.Fatalf("repair: complete %v, unrepairable %v, located %v", rr.Complete, rr.Unrepairable.Ranges(), rr.Located != nil)
	}
	out := t.TempDir()
	with, err := extract.Extract(arc, filepath.Join(out, "with"), extract.Options{Checker: mustChecker(t, arc)})
	if err != nil {
		t.Fatal(err)
	}
	n := sameClusters(t, wrongClusters(t, with.Images), flagged(with.Report))
	if n == 0 {
		t.Fatal("the garbage damaged no cluster")
	}
	if got := flagged(rr.Located); len(got["drive-scsi0"]) != len(flagged(with.Report)["drive-scsi0"]) {
		t.Errorf("repair located %d clusters, the read %d", len(got["drive-scsi0"]), len(flagged(with.Report)["drive-scsi0"]))
	}
	without, err := extract.Extract(arc, filepath.Join(out, "without"), extract.Options{NoSidecar: true})
	if err != nil {
		t.Fatal(err)
	}
	sc := with.Report.Archives[0].Sidecar
	t.Logf("%d bytes of garbage: %d clusters wrong, all flagged with the sidecar (%d confirmed right of the decoder's suspects); without it %d flagged",
		run, n, sc.Confirmed, len(flagged(without.Report)["drive-scsi0"]))
}

func mustChecker(t *testing.T, arc string) *Checker {
	t.Helper()
	sc, err := Find(arc, "")
	if err != nil || sc == nil {
		t.Fatalf("sidecar: %v", err)
	}
	t.Cleanup(func() { sc.Close() })
	return NewChecker(sc)
}

// TestSilentHitNamedByCluster: bytes changed inside a zstd raw block are
// invisible to every check of the archive itself (only the stream checksum
// fails); with the sidecar the read names the cluster, and rescue the file.
func TestSilentHitNamedByCluster(t *testing.T) {
	arc := testArchive(t)
	protectOK(t, arc, Options{})
	b, _ := os.ReadFile(arc)
	raws := rawBlocks(t, b)
	var hit [2]int
	for _, r := range raws {
		if r[1]-r[0] > 32<<10 && r[0] > len(b)/3 {
			hit = r
			break
		}
	}
	if hit[1] == 0 {
		t.Fatalf("no raw block of 32 KiB in the archive (%d raw blocks)", len(raws))
	}
	mid := (hit[0] + hit[1]) / 2
	for i := mid; i < mid+100; i++ {
		b[i] ^= 0x5a
	}
	os.WriteFile(arc, b, 0o644)
	out := t.TempDir()
	without, err := extract.Extract(arc, filepath.Join(out, "without"), extract.Options{NoSidecar: true})
	if err != nil {
		t.Fatal(err)
	}
	if a := without.Report.Archives[0]; a.Checksum != "mismatch" || len(flagged(without.Report)) != 0 {
		t.Fatalf("without the sidecar: checksum %s, flagged %v (the hit should be silent)", a.Checksum, flagged(without.Report))
	}
	with, err := extract.Extract(arc, filepath.Join(out, "with"), extract.Options{Checker: mustChecker(t, arc)})
	if err != nil {
		t.Fatal(err)
	}
	fl := flagged(with.Report)
	if n := sameClusters(t, wrongClusters(t, with.Images), fl); n == 0 || n > 2 {
		t.Fatalf("%d clusters wrong, want 1 or 2", n)
	}
	t.Logf("silent hit at file offset %d: flagged %v", mid, fl)

	// rescue finds the sidecar by itself and names the file
	old := extract.Sidecars
	extract.Sidecars = Lookup("")
	defer func() { extract.Sidecars = old }()
	rep, err := rescue.Run(arc, filepath.Join(out, "rescue"), rescue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.DamagedFiles) == 0 {
		t.Fatalf("rescue named no damaged file; devices %+v", rep.Devices)
	}
	for _, f := range rep.DamagedFiles {
		t.Logf("damaged file: %s %s (%s, %d bad bytes)", f.Volume, f.Path, f.State, f.BadBytes)
	}
	_ = testimg.Config
}

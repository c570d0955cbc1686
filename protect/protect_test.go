package protect

import (
	"os"
	"testing"
)

func TestProtectWritesSidecar(t *testing.T) {
	arc := testArchive(t)
	res := protectOK(t, arc, Options{Tool: "test"})
	if res.Sidecar != arc+".vzsalvage" {
		t.Fatalf("sidecar at %s", res.Sidecar)
	}
	sc, err := OpenSidecar(res.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	h := sc.Header
	if h.Archive.SHA256 != fileSHA(t, arc) || h.Archive.Size != res.ArchiveSize || len(h.VMA.Devices) != 2 {
		t.Fatalf("header %+v", h)
	}
	over := float64(res.SidecarSize) / float64(res.ArchiveSize)
	t.Logf("archive %d bytes, sidecar %d bytes: %.2f %%", res.ArchiveSize, res.SidecarSize, 100*over)
	// 3 % at most, but never less than the parity's floor (MinStripes) for
	// a small archive
	floor := int64(res.Parity.ParityShards * res.Parity.MinStripes * res.Parity.ShardSize)
	if res.SidecarSize > res.ArchiveSize*3/100+floor {
		t.Errorf("sidecar overhead %.2f %% > 3 %% + %d bytes", 100*over, floor)
	}
	if _, err := os.Stat(arc + ".vzsalvage.tmp"); err == nil {
		t.Error("temporary file left")
	}
}

func TestStatus(t *testing.T) {
	arc := testArchive(t)
	st, err := Status(arc, "")
	if err != nil || st.Present {
		t.Fatalf("before protect: %v %+v", err, st)
	}
	dir := t.TempDir()
	protectOK(t, arc, Options{SidecarDir: dir})
	st, err = Status(arc, dir)
	if err != nil || !st.Present || !st.Matches || st.Verify.Status != "intact" || st.Written.IsZero() || st.LastCheck != nil {
		t.Fatalf("after protect: %v %+v", err, st)
	}
	if c := CheckArchive(arc, dir, nil); c.Result != ScrubOK {
		t.Fatalf("check: %+v", c)
	}
	st, _ = Status(arc, dir)
	if st.LastCheck == nil || st.LastCheck.Result != ScrubOK {
		t.Fatalf("after a check: %+v", st)
	}
}

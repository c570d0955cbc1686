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
	if over > 0.03 {
		t.Errorf("sidecar overhead %.2f %% > 3 %%", 100*over)
	}
	ents, _ := os.ReadDir(t.TempDir())
	_ = ents
}

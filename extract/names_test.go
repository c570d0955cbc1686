package extract

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/vma"
)

// TestCollidingNames: a hostile archive gives two devices the same name and
// names its configs like extract's own outputs. Every device and config is
// written, to a distinct file, and nothing of ours is replaced.
func TestCollidingNames(t *testing.T) {
	h := &vma.Header{Ctime: time.Unix(1700000000, 0),
		Configs: []vma.Config{
			{Name: "damage.json", Data: []byte("not our report\n")},
			{Name: "disk-drive-scsi0.raw", Data: []byte("not a disk\n")},
			{Name: "qemu-server.conf", Data: []byte("name: vm\n")},
		},
		Devices: []vma.Device{{ID: 1, Name: "drive-scsi0", Size: 1 << 16}, {ID: 2, Name: "drive-scsi0", Size: 1 << 16}},
	}
	var b bytes.Buffer
	w, err := vma.NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	one, two := bytes.Repeat([]byte{1}, 1<<16), bytes.Repeat([]byte{2}, 1<<16)
	if err := w.WriteCluster(1, 0, one); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteCluster(2, 0, two); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	arc := filepath.Join(t.TempDir(), "vzdump-qemu-100-2025_01_01-00_00_00.vma")
	if err := os.WriteFile(arc, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Extract(arc, dir, Options{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if len(res.Report.Devices) != 2 || res.Report.Devices[0].Image == res.Report.Devices[1].Image {
		t.Fatalf("devices %+v: want two distinct images", res.Report.Devices)
	}
	for _, d := range res.Report.Devices {
		got, err := os.ReadFile(filepath.Join(dir, d.Image))
		want := map[int][]byte{1: one, 2: two}[d.ID]
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("device %d (%s): wrong content (%v)", d.ID, d.Image, err)
		}
	}
	files := res.Report.Archives[0].ConfigFiles
	for _, c := range h.Configs {
		f := files[c.Name]
		got, err := os.ReadFile(filepath.Join(dir, f))
		if f == "" || err != nil || !bytes.Equal(got, c.Data) {
			t.Errorf("config %s written as %q: %v", c.Name, f, err)
		}
		if f == "damage.json" || f == "disk-drive-scsi0.raw" {
			t.Errorf("config %s took our output name %s", c.Name, f)
		}
	}
	if files["qemu-server.conf"] != "qemu-server.conf" {
		t.Errorf("an ordinary config was renamed: %v", files)
	}
	if _, err := os.Stat(filepath.Join(dir, "damage.json")); err != nil {
		t.Error(err)
	}
}

package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/vma"
)

// sample returns the path of the damaged sample archive the project ships.
func sample() string {
	return filepath.Join(testutil.Root(), "sample", "vzdump-qemu-100-2025_12_15-03_00_03.vma.zst")
}

// TestRescueForceKeepsUserFiles: --force replaces an earlier rescue's
// outputs, never a user's own files/ or disks/.
func TestRescueForceKeepsUserFiles(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "files", "my-notes.txt")
	os.MkdirAll(filepath.Dir(mine), 0o755)
	os.WriteFile(mine, []byte("mine"), 0o644)
	code, _, errs := vz("rescue", "-q", "--force", sample(), "-o", dir)
	if code != 2 || !strings.Contains(errs, "not replacing") {
		t.Errorf("rescue --force into a user's directory: exit %d, %q", code, errs)
	}
	if b, err := os.ReadFile(mine); err != nil || string(b) != "mine" {
		t.Fatalf("the user's file is gone: %v", err)
	}

	// An earlier rescue's directory: --force replaces its outputs and keeps
	// anything else the user put there.
	dir = t.TempDir()
	if code, _, errs := vz("rescue", "-q", sample(), "-o", dir); code != 1 {
		t.Fatalf("rescue: exit %d %s", code, errs)
	}
	note := filepath.Join(dir, "NOTES")
	os.WriteFile(note, []byte("mine"), 0o644)
	if code, _, errs := vz("rescue", "-q", sample(), "-o", dir); code != 2 || !strings.Contains(errs, "--force") {
		t.Errorf("rescue into a used directory without --force: exit %d %q", code, errs)
	}
	if code, _, errs := vz("rescue", "-q", "--force", sample(), "-o", dir); code != 1 {
		t.Errorf("rescue --force over an earlier rescue: exit %d %q", code, errs)
	}
	if _, err := os.Stat(note); err != nil {
		t.Errorf("the user's note is gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.md")); err != nil {
		t.Error(err)
	}
}

// writeVMA writes an uncompressed VMA archive with the given devices (one
// cluster of data each) and qemu-server.conf.
func writeVMA(t *testing.T, path string, conf string, devs ...vma.Device) {
	t.Helper()
	h := &vma.Header{Ctime: time.Unix(1734000000, 0), Devices: devs,
		Configs: []vma.Config{{Name: "qemu-server.conf", Data: []byte(conf)}}}
	sum := sha256.Sum256([]byte(path))
	copy(h.UUID[:], sum[:])
	var b bytes.Buffer
	w, err := vma.NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		for c := uint32(0); int64(c)*65536 < d.Size; c++ {
			if err := w.WriteCluster(d.ID, c, bytes.Repeat([]byte{byte(c + 1)}, 65536)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAlsoRefusesAnotherGuest: --also with another VM's backup is refused
// with a clear error before any heavy work; --other-guest allows it.
func TestAlsoRefusesAnotherGuest(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(sample())
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "vzdump-qemu-200-2025_12_14-03_00_02.vma.zst")
	os.WriteFile(other, b, 0o644)
	out := filepath.Join(dir, "out")
	code, _, errs := vz("rescue", "-q", sample(), "--also", other, "-o", out)
	if code != 2 || !strings.Contains(errs, "another guest") || !strings.Contains(errs, "qemu 200") || !strings.Contains(errs, "--other-guest") {
		t.Errorf("another VMID: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("the refused rescue created %s", out)
	}

	// Names that say nothing: the configs' SMBIOS uuids and the disks decide.
	a, c, d := filepath.Join(dir, "a.vma"), filepath.Join(dir, "c.vma"), filepath.Join(dir, "d.vma")
	disk := vma.Device{ID: 1, Name: "drive-scsi0", Size: 4 << 16}
	writeVMA(t, a, "name: a\nsmbios1: uuid=11111111-1111-1111-1111-111111111111\n", disk)
	writeVMA(t, c, "name: c\nsmbios1: uuid=22222222-2222-2222-2222-222222222222\n", disk)
	writeVMA(t, d, "name: a\n", vma.Device{ID: 1, Name: "drive-virtio0", Size: 4 << 16})
	for _, older := range []string{c, d} {
		code, _, errs := vz("rescue", "-q", a, "--also", older, "-o", out)
		if code != 2 || !strings.Contains(errs, "another guest") {
			t.Errorf("%s: exit %d, %q", older, code, errs)
		}
	}
	if code, _, errs := vz("rescue", "-q", "--other-guest", a, "--also", c, "-o", out); code == 2 {
		t.Errorf("--other-guest: exit %d, %q", code, errs)
	}
}

// TestLsCpArchiveLeaveNothing: ls and cp of an archive work without a
// writable home or a cache flag, leave nothing behind, and exit 1 for a
// damaged backup; cp never replaces an existing file and says so (exit 2).
func TestLsCpArchiveLeaveNothing(t *testing.T) {
	home, tmp := t.TempDir(), t.TempDir()
	os.Chmod(home, 0o555)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("TMPDIR", tmp)
	code, out, errs := vz("ls", "-q", sample())
	if code != 1 || !strings.Contains(out, "drive-scsi0-p3") || !strings.Contains(errs, "damaged") {
		t.Errorf("ls of the damaged sample: exit %d\n%s%s", code, out, errs)
	}
	dest := t.TempDir()
	code, out, errs = vz("cp", "-q", sample(), "drive-scsi0-p3:/etc/hostname", dest)
	if code != 0 || !strings.Contains(out, "copied 1 file,") {
		t.Errorf("cp: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = vz("cp", "-q", sample(), "drive-scsi0-p3:/etc/hostname", dest)
	if code != 2 || out != "" || !strings.Contains(errs, "already exists") {
		t.Errorf("cp onto an existing file: exit %d\n%s%s", code, out, errs)
	}
	for _, d := range []string{home, tmp} {
		if ents, _ := os.ReadDir(d); len(ents) > 0 {
			t.Errorf("%s holds %d entries after ls and cp", d, len(ents))
		}
	}
}

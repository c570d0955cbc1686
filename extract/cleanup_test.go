package extract

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/vma"
)

// TestFailedExtractLeavesNothing: an extract that cannot finish (an
// interrupt, an unreadable archive) removes what it wrote: its images, its
// configs, and the directory when it made it. Files that were there before
// stay.
func TestFailedExtractLeavesNothing(t *testing.T) {
	h := &vma.Header{Ctime: time.Unix(1700000000, 0), Configs: []vma.Config{{Name: "qemu-server.conf", Data: []byte("name: vm\n")}},
		Devices: []vma.Device{{ID: 1, Name: "drive-scsi0", Size: 1 << 16}}}
	var b bytes.Buffer
	w, err := vma.NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteCluster(1, 0, bytes.Repeat([]byte{1}, 1<<16)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	arc := filepath.Join(t.TempDir(), "vzdump-qemu-100-2025_01_01-00_00_00.vma")
	if err := os.WriteFile(arc, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(t.TempDir(), "junk.vma")
	os.WriteFile(junk, bytes.Repeat([]byte("junk"), 1000), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	base := t.TempDir()
	fresh := filepath.Join(base, "new", "out")
	if _, err := Extract(arc, fresh, Options{Context: ctx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted: %v", err)
	}
	if _, err := Extract(junk, fresh, Options{}); err == nil {
		t.Fatal("junk extracted")
	}
	if _, err := Extract(filepath.Join(base, "nope.vma"), fresh, Options{}); err == nil {
		t.Fatal("a missing archive extracted")
	}
	if _, err := os.Stat(filepath.Dir(fresh)); !os.IsNotExist(err) {
		t.Errorf("the failed extracts left %s (%v)", filepath.Dir(fresh), err)
	}

	// into a directory of the user's: what was there stays, nothing else
	used := t.TempDir()
	os.WriteFile(filepath.Join(used, "notes"), []byte("mine"), 0o644)
	if _, err := Extract(arc, used, Options{Context: ctx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted: %v", err)
	}
	if ents, _ := os.ReadDir(used); len(ents) != 1 || ents[0].Name() != "notes" {
		t.Errorf("the interrupted extract left %v", ents)
	}
}

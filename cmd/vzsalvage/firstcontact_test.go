package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
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

//go:build linux

package fs

import (
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTreeWriter: directories stay the writer's own (0700) until Finish
// gives them their modes and times; files appear only once complete,
// made with their final mode when the umask allows; replacing renames
// over; a file the writing stopped is removed; the budget stops the
// writing.
func TestTreeWriter(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "out")
	mtime := time.Date(2025, 11, 1, 3, 0, 0, 0, time.UTC)
	root := &Stat{Mode: iofs.ModeDir | 0o755, Mtime: mtime}
	w, err := NewTreeWriter(dest, root, CopyOptions{Budget: &Budget{MaxWrite: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTreeWriter(dest, root, CopyOptions{}); !errors.Is(err, ErrExist) {
		t.Errorf("a second writer into the same place: %v", err)
	}
	d, ok := w.Mkdir(w.Root(), "d", &Stat{Mode: iofs.ModeDir | iofs.ModeSticky | 0o777, Mtime: mtime}, "/d")
	if !ok {
		t.Fatal(w.Stats().Errors)
	}
	f := w.Create(d, "f", &Stat{Mode: 0o644, Size: 3 << 20, Mtime: mtime}, "/d/f", false)
	if err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "d", "f")); err == nil {
		t.Errorf("a file appears before it is complete")
	}
	f.Close(nil)
	g := w.Create(d, "f", &Stat{Mode: 0o600, Size: 5, Mtime: mtime}, "/d/f", true)
	g.WriteAt([]byte("world"), 0)
	g.Close(nil)
	w.Symlink(d, "s", "/etc", &Stat{Mode: iofs.ModeSymlink | 0o777, Mtime: mtime}, "/d/s", false)
	w.Link(w.Root(), "hl", d, "f", "/hl", false)
	for _, p := range []string{dest, filepath.Join(dest, "d")} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s while writing: %v %v", p, st.Mode(), err)
		}
	}
	big := w.Create(w.Root(), "big", &Stat{Mode: 0o644, Size: 2 << 20}, "/big", false)
	err = big.WriteAt(make([]byte, 2<<20), 0) // zeros: holes, no budget
	if err == nil {
		b := make([]byte, 2<<20)
		for i := range b {
			b[i] = 1
		}
		err = big.WriteAt(b, 0)
	}
	if !errors.Is(err, ErrBudget) {
		t.Errorf("past the budget: %v", err)
	}
	big.Close(nil)
	stats, err := w.Finish()
	if !errors.Is(err, ErrBudget) || stats.Files != 2 || stats.HardLinks != 1 || stats.Symlinks != 1 {
		t.Errorf("finish: %v %+v", err, stats)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "hl")); err != nil || string(b) != "world" {
		t.Errorf("hard link: %q %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dest, "d")); err != nil || st.Mode() != iofs.ModeDir|iofs.ModeSticky|0o777 || !st.ModTime().Equal(mtime) {
		t.Errorf("d after Finish: %v %v %v", st.Mode(), st.ModTime(), err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "big")); err == nil {
		t.Errorf("a file the budget stopped was put in place")
	}
}

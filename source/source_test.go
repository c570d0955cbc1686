package source

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestSources opens the same disk as a raw image, a qcow2 image (qemu-img),
// an archive and an extract directory, and reads a file from its ext4 root
// through each.
func TestSources(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc", "hostname"), []byte("vm100\n"), 0o644)
	raw := filepath.Join(dir, "disk.raw")
	testimg.GPTExt4(t, raw, 48<<20, src)
	qcow := filepath.Join(dir, "disk.qcow2")
	testutil.Run(t, "qemu-img", "convert", "-c", "-O", "qcow2", raw, qcow)
	arc := testimg.BuildArchive(t, dir, []testimg.Disk{{Name: "drive-scsi0", Path: raw}}, ".zst", 1)
	exdir := filepath.Join(dir, "extracted")
	if _, err := extract.Extract(arc, exdir, extract.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, vol string }{
		{raw, "disk-p3"},
		{qcow, "disk-p3"},
		{arc, "drive-scsi0-p3"},
		{exdir, "drive-scsi0-p3"},
	} {
		s, err := Open(tc.path, Options{CacheDir: filepath.Join(dir, "cache")})
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		v, err := Find(s.Volumes(), tc.vol)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		f, err := OpenFS(v, FSOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		n, err := fs.Lookup(f, "/etc/hostname")
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		file, err := f.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, file.Size())
		if _, err := file.ReadAt(b, 0); err != nil || string(b) != "vm100\n" {
			t.Errorf("%s: read %q, %v", tc.path, b, err)
		}
		s.Close()
	}
}

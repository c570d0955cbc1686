package protect

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testimg"
)

// shared holds what the tests build once per test binary: the disks of a
// small VM made by the real tools (sgdisk, mke2fs -d from a seeded tree, an
// efidisk) and their archive compressed by the real zstd CLI.
var shared struct {
	once    sync.Once
	dir     string
	disks   []testimg.Disk
	archive string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vzsalvage-protect-test")
	if err != nil {
		panic(err)
	}
	shared.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testArchive returns a fresh copy of the test archive in a new directory.
func testArchive(t *testing.T) string {
	t.Helper()
	shared.once.Do(func() {
		src := filepath.Join(shared.dir, "src")
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		testimg.Tree(t, src, testimg.TreeOptions{Files: 400, Seed: 11, Big: true})
		disks := []testimg.Disk{
			{Name: "drive-efidisk0", Path: filepath.Join(shared.dir, "efi.raw")},
			{Name: "drive-scsi0", Path: filepath.Join(shared.dir, "root.raw")},
		}
		testimg.EFIDisk(t, disks[0].Path)
		testimg.GPTExt4(t, disks[1].Path, 64<<20, src)
		shared.archive = testimg.BuildArchive(t, shared.dir, disks, ".zst", 42)
		shared.disks = disks
	})
	if shared.archive == "" {
		t.Fatal("building the test archive failed")
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(shared.archive))
	copyFile(t, shared.archive, dst)
	return dst
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	h := testimg.FileSHA256(t, path)
	return hex.EncodeToString(h[:])
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// protectOK protects an archive and fails the test unless it is intact.
func protectOK(t *testing.T, arc string, opt Options) *Result {
	t.Helper()
	res, err := Protect(arc, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Intact {
		t.Fatalf("not intact: %+v", res.Report.Archives)
	}
	return res
}

//go:build linux

package btrfs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// imgSize is the size of every test image: mkfs.btrfs refuses less than
// about 110 MiB (with DUP metadata). Images are sparse files.
const imgSize = 128 << 20

// source is a source tree built once per test binary.
var source struct {
	once sync.Once
	dir  string
}

// sourceTree returns a deterministic tree: testimg.Tree (nested
// directories, files of varied sizes, a sparse file, big files, symlinks,
// a hard link) and what btrfs keeps besides: extended attributes, a FIFO,
// tiny files (inline extents), a highly compressible file, owners and
// modes.
func sourceTree(t testing.TB) string {
	source.once.Do(func() {
		d, err := os.MkdirTemp("", "btrfssrc")
		if err != nil {
			t.Fatal(err)
		}
		testimg.Tree(t, d, testimg.TreeOptions{Files: 150, Seed: 17, Big: true})
		put := func(p string, b []byte) {
			os.MkdirAll(filepath.Dir(filepath.Join(d, p)), 0o755)
			if err := os.WriteFile(filepath.Join(d, p), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		put("tiny", []byte("inline\n"))
		put("empty", nil)
		put("text.log", bytes.Repeat([]byte("a compressible line of a log file\n"), 20000))
		put("xattr.txt", []byte("has attributes\n"))
		syscall.Setxattr(filepath.Join(d, "xattr.txt"), "user.comment", []byte("hello"), 0)
		syscall.Setxattr(filepath.Join(d, "xattr.txt"), "user.big", bytes.Repeat([]byte("x"), 900), 0)
		syscall.Mkfifo(filepath.Join(d, "fifo"), 0o640)
		os.Symlink("tiny", filepath.Join(d, "link-tiny"))
		if os.Geteuid() == 0 {
			os.Lchown(filepath.Join(d, "tiny"), 1234, 5678)
		}
		source.dir = d
	})
	if source.dir == "" {
		t.Fatal("source tree not built")
	}
	return source.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if source.dir != "" {
		os.RemoveAll(source.dir)
	}
	os.Exit(code)
}

// mkfs builds a btrfs image of src with mkfs.btrfs --rootdir.
func mkfs(t testing.TB, src, img string, args ...string) {
	t.Helper()
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(imgSize)
	f.Close()
	a := append([]string{"-q", "-f", "-L", "vzs-test", "-U", "3c1b6a4e-2d5f-4e8a-9b7c-1d2e3f4a5b6c"}, args...)
	if src != "" {
		a = append(a, "--rootdir", src)
	}
	testutil.Run(t, "mkfs.btrfs", append(a, img)...)
}

// mountCopy builds an image through the kernel: mkfs, mount -o opts,
// cp -a of src, unmount. It skips the test when this machine cannot mount.
func mountCopy(t testing.TB, src, img, opts string) {
	t.Helper()
	mkfs(t, "", img)
	mnt := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	if out, err := exec.Command("mount", "-t", "btrfs", "-o", "loop,"+opts, img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a loop device here: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v: %s", err, out)
		}
	}()
	if out, err := exec.Command("cp", "-a", "--sparse=always", src+"/.", mnt).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
}

// openImage opens an image file with the reader.
func openImage(t testing.TB, img string, opt Options) *FS {
	t.Helper()
	return fstest.OpenImage(t, img, func(r io.ReaderAt, size int64) (*FS, error) { return Open(r, size, opt) })
}

// lookup returns the node at path p.
func lookup(t testing.TB, f *FS, p string) fs.Node {
	t.Helper()
	n, err := fs.Lookup(f, p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return n
}

// flipBit flips one bit of the image file at off.
func flipBit(t testing.TB, img string, off int64) {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, 1)
	fh.ReadAt(b, off)
	b[0] ^= 0x10
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func hexdump(b []byte) string { return fmt.Sprintf("% x", b) }

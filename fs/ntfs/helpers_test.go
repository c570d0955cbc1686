//go:build linux

package ntfs

import (
	"bytes"
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

// imgSize is the size of the test images (sparse files).
const imgSize = 64 << 20

// bigStream is a named stream too large to be an xattr: the source tree
// holds it as a file "bigads.bin:big", which is how the reader lists it,
// and the test writes it through ntfs-3g's streams_interface=windows.
const bigStream = "bigads.bin:big"

var source struct {
	once sync.Once
	dir  string
}

// sourceTree returns a deterministic tree: testimg.Tree (nested
// directories, files of varied sizes, a sparse file, big files, symlinks,
// a hard link) and alternate data streams: small ones as user.* xattrs
// (ntfs-3g's default view of streams) and one of 200 KiB.
func sourceTree(t testing.TB) string {
	source.once.Do(func() {
		d, err := os.MkdirTemp("", "ntfssrc")
		if err != nil {
			t.Fatal(err)
		}
		testimg.Tree(t, d, testimg.TreeOptions{Files: 150, Seed: 23, Big: true})
		put := func(p string, b []byte) {
			os.MkdirAll(filepath.Dir(filepath.Join(d, p)), 0o755)
			if err := os.WriteFile(filepath.Join(d, p), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		put("tiny", []byte("resident\n"))
		put("empty", nil)
		put("text.log", bytes.Repeat([]byte("a compressible line of a log file\n"), 20000))
		put("ads.txt", []byte("has streams\n"))
		syscall.Setxattr(filepath.Join(d, "ads.txt"), "user.Zone.Identifier", []byte("[ZoneTransfer]\r\nZoneId=3\r\n"), 0)
		syscall.Setxattr(filepath.Join(d, "ads.txt"), "user.big", bytes.Repeat([]byte("s"), 9000), 0)
		put("bigads.bin", []byte("the file\n"))
		put(bigStream, bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16))
		// A stream has its file's times.
		if fi, err := os.Stat(filepath.Join(d, "bigads.bin")); err == nil {
			os.Chtimes(filepath.Join(d, bigStream), fi.ModTime(), fi.ModTime())
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
	for _, d := range extraDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// build makes an NTFS image of src: mkntfs (args added), then ntfs-3g
// mounts of the image file: cp -a of everything but the big stream with
// streams shown as xattrs, then the big stream with streams_interface=
// windows. It skips the test where FUSE mounts are not possible.
func build(t testing.TB, src, img string, args ...string) {
	t.Helper()
	buildSize(t, src, img, imgSize, args...)
}

// buildSize is build for an image of size bytes.
func buildSize(t testing.TB, src, img string, size int64, args ...string) {
	t.Helper()
	fh, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	fh.Truncate(size)
	fh.Close()
	testutil.Run(t, "mkntfs", append(append([]string{"-F", "-Q", "-q", "-L", "vzs-test"}, args...), img)...)
	if os.Geteuid() != 0 {
		t.Skip("ntfs-3g mounts need root here")
	}
	testutil.RequireTool(t, "ntfs-3g")
	mount(t, img, "streams_interface=xattr", func(mnt string) {
		out, err := exec.Command("sh", "-c", `cd "$1" && find . -mindepth 1 -maxdepth 1 ! -name "$2" -exec cp -a --sparse=always -t "$3" {} +`,
			"sh", src, bigStream, mnt).CombinedOutput()
		if err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
	})
	mount(t, img, "streams_interface=windows", func(mnt string) {
		if out, err := exec.Command("cp", filepath.Join(src, bigStream), filepath.Join(mnt, bigStream)).CombinedOutput(); err != nil {
			t.Fatalf("cp stream: %v: %s", err, out)
		}
		if out, err := exec.Command("touch", "-r", filepath.Join(src, "bigads.bin"), filepath.Join(mnt, "bigads.bin")).CombinedOutput(); err != nil {
			t.Fatalf("touch: %v: %s", err, out)
		}
	})
}

// mount mounts img with ntfs-3g, runs fn, and unmounts.
func mount(t testing.TB, img, opts string, fn func(mnt string)) {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command(testutil.RequireTool(t, "ntfs-3g"), "-o", opts, img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount with ntfs-3g here: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v: %s", err, out)
		}
	}()
	fn(mnt)
}

// openImage opens an image file with the reader.
func openImage(t testing.TB, img string, opt Options) *FS {
	t.Helper()
	return fstest.OpenImage(t, img, func(r io.ReaderAt, size int64) (*FS, error) { return Open(r, size, opt) })
}

func lookup(t testing.TB, f fs.FS, p string) fs.Node {
	t.Helper()
	n, err := fs.Lookup(f, p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return n
}

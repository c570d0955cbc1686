//go:build linux

package btrfs

import (
	"bytes"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// testdata/compressed.img.gz is a 32 MiB mixed-block-group image (mkfs.btrfs
// -M) whose directories zstd/, zlib/ and lzo/ the kernel wrote, each
// mounted with compress-force= that algorithm (btrfs-progs 6.2 cannot
// compress with --rootdir), holding pinnedFiles. Pinned so that the
// kernel's compressed bytes are read on every machine, loop mounts or not;
// rebuild (as root) with go test -run TestMakePinned -make-pinned. It also
// holds a subvolume and a snapshot of it (btrfs subvolume create,
// snapshot).

var makePinned = flag.Bool("make-pinned", false, "rebuild testdata/compressed.img.gz through a kernel mount")

// pinnedFiles is the content of each directory of the pinned image: made
// here, from seeds, so that it is the same on every machine.
func pinnedFiles() map[string][]byte {
	return map[string][]byte{
		"text.log": bytes.Repeat([]byte("a compressible line of a log file\n"), 6000),
		"data.bin": testimg.DiskData(16<<10, 11),
		"small":    bytes.Repeat([]byte("inline "), 300), // an inline extent, compressed
	}
}

// The subvolume @home holds doc.txt (snapAfter) and new.txt; its snapshot
// @home-snap, taken before, only doc.txt (snapBefore).
const snapBefore, snapAfter = "written before the snapshot\n", "changed after the snapshot\n"

var pinnedAlgs = map[string]uint8{"zstd": compZstd, "zlib": compZlib, "lzo": compLZO}

func TestMakePinned(t *testing.T) {
	if !*makePinned {
		t.Skip("run with -make-pinned to rebuild testdata/compressed.img.gz")
	}
	img := filepath.Join(t.TempDir(), "img")
	fh, _ := os.Create(img)
	fh.Truncate(32 << 20)
	fh.Close()
	testutil.Run(t, "mkfs.btrfs", "-q", "-f", "-M", "-U", "3c1b6a4e-2d5f-4e8a-9b7c-1d2e3f4a5b6d", img)
	mnt := t.TempDir()
	mount := func(opts ...string) {
		if out, err := exec.Command("mount", append(opts, img, mnt)...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v: %v: %s", opts, err, out)
		}
	}
	for i, alg := range []string{"zstd", "zlib", "lzo"} {
		if i == 0 {
			mount("-t", "btrfs", "-o", "loop,compress-force="+alg)
		} else {
			mount("-o", "remount,compress-force="+alg)
		}
		for name, b := range pinnedFiles() {
			os.MkdirAll(filepath.Join(mnt, alg), 0o755)
			if err := os.WriteFile(filepath.Join(mnt, alg, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		exec.Command("sync").Run()
	}
	// A subvolume, a snapshot of it, then changes the snapshot must not see.
	testutil.Run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(mnt, "@home"))
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(mnt, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("@home/doc.txt", snapBefore)
	testutil.Run(t, "btrfs", "-q", "subvolume", "snapshot", filepath.Join(mnt, "@home"), filepath.Join(mnt, "@home-snap"))
	write("@home/doc.txt", snapAfter)
	write("@home/new.txt", snapAfter)
	exec.Command("sync").Run()
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	testimg.WriteGzip(t, filepath.Join("testdata", "compressed.img.gz"), raw)
}

// TestPinned reads the pinned kernel-compressed image: every file
// identical, each directory's extents compressed with its algorithm and
// listed with their stored size; the subvolume and its snapshot listed as
// directories, each with its own content.
func TestPinned(t *testing.T) {
	img := testimg.Gunzip(t, filepath.Join("testdata", "compressed.img.gz"), 64<<20)
	f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for alg, comp := range pinnedAlgs {
		for name, want := range pinnedFiles() {
			p := "/" + alg + "/" + name
			n := lookup(t, f, p)
			fl, err := f.Open(n)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			got, err := io.ReadAll(io.NewSectionReader(fl, 0, fl.Size()))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, %v: differs from the original", p, len(got), err)
			}
			exts := fl.(*file).m.exts
			if len(exts) == 0 {
				t.Fatalf("%s: no extents", p)
			}
			for _, e := range exts {
				if e.comp != comp {
					t.Errorf("%s: extent at %d compressed with %d, want %d (%s)", p, e.fileOff, e.comp, comp, alg)
				}
			}
		}
		lay, err := f.Layout(lookup(t, f, "/"+alg+"/text.log"))
		if err != nil || len(lay.Data) == 0 || lay.Data[0].Stored == 0 || lay.Data[0].Stored >= lay.Data[0].Length {
			t.Errorf("%s/text.log: layout %+v, %v: want compressed extents with their stored size", alg, lay, err)
		}
	}
	for p, want := range map[string]string{"/@home/doc.txt": snapAfter, "/@home/new.txt": snapAfter, "/@home-snap/doc.txt": snapBefore} {
		fl, err := f.Open(lookup(t, f, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		got, err := io.ReadAll(io.NewSectionReader(fl, 0, fl.Size()))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v: want %q", p, got, err, want)
		}
	}
	if _, err := fs.Lookup(f, "/@home-snap/new.txt"); err == nil {
		t.Errorf("/@home-snap/new.txt: in the snapshot, which was taken before it was written")
	}
}

package qcow2

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// rawDisk makes a raw disk image with data, zeros, text and holes, written
// out of order, and returns its content.
func rawDisk(size int64, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, size)
	for off := int64(0); off < size; off += 4096 {
		switch rng.IntN(6) {
		case 0, 1: // random
			for i := off; i < min(size, off+4096); i++ {
				b[i] = byte(rng.Uint32())
			}
		case 2: // text
			for i := off; i < min(size, off+4096); i++ {
				b[i] = "vzsalvage qcow2 "[i%16]
			}
		}
	}
	return b
}

// writeImage writes disk into a new qcow2 with the Writer, in the order
// given by the write sizes (a mix of whole clusters, 4 KiB blocks and odd
// pieces, shuffled), and returns its path.
func writeImage(t *testing.T, disk []byte, opt WriterOptions, whole bool) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.qcow2")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, int64(len(disk)), opt)
	if err != nil {
		t.Fatal(err)
	}
	n := (int64(len(disk)) + WriterCluster - 1) / WriterCluster
	order := rand.New(rand.NewPCG(3, 4)).Perm(int(n))
	for _, c := range order {
		off := int64(c) * WriterCluster
		end := min(off+WriterCluster, int64(len(disk)))
		if whole {
			if err := w.WriteCluster(int64(c), disk[off:end]); err != nil {
				t.Fatal(err)
			}
			continue
		}
		for pos := off; pos < end; {
			k := min(end-pos, int64(4096+c%3*1000))
			if _, err := w.WriteAt(disk[pos:pos+k], pos); err != nil {
				t.Fatal(err)
			}
			pos += k
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWriterQemuImg: images the Writer makes pass qemu-img check, and
// qemu-img compare finds them equal to the raw disk; our reader reads them
// back too.
func TestWriterQemuImg(t *testing.T) {
	qimg := testutil.RequireTool(t, "qemu-img")
	for _, tc := range []struct {
		name     string
		size     int64
		compress bool
		whole    bool
	}{
		{"blocks", 5<<20 + 12345, false, false},
		{"clusters", 6 << 20, false, true},
		{"compressed", 6<<20 + 512, true, true},
		{"compressed, then partial rewrites", 3 << 20, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := rawDisk(tc.size, 7)
			raw := filepath.Join(t.TempDir(), "disk.raw")
			if err := os.WriteFile(raw, disk, 0o644); err != nil {
				t.Fatal(err)
			}
			img := writeImage(t, disk, WriterOptions{Compress: tc.compress}, tc.whole)
			if tc.name == "compressed, then partial rewrites" {
				// rewrite pieces of compressed clusters in place
				f, _ := os.OpenFile(img, os.O_RDWR, 0)
				w, _ := NewWriter(f, tc.size, WriterOptions{Compress: true})
				for c := int64(0); c*WriterCluster < tc.size; c++ {
					w.WriteCluster(c, disk[c*WriterCluster:min(tc.size, (c+1)*WriterCluster)])
				}
				for off := int64(1000); off < tc.size-5000; off += 300000 {
					copy(disk[off:], bytes.Repeat([]byte{0xAB}, 5000))
					w.WriteAt(disk[off:off+5000], off)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				f.Close()
				os.WriteFile(raw, disk, 0o644)
			}
			if out, err := exec.Command(qimg, "check", img).CombinedOutput(); err != nil {
				t.Errorf("qemu-img check: %v\n%s", err, out)
			}
			if out, err := exec.Command(qimg, "compare", "-f", "qcow2", "-F", "raw", img, raw).CombinedOutput(); err != nil || !strings.Contains(string(out), "identical") {
				t.Errorf("qemu-img compare: %v\n%s", err, out)
			}
			fi, _ := os.Stat(img)
			t.Logf("%d-byte disk: %d-byte image", tc.size, fi.Size())
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			im, err := Open(f, fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, tc.size)
			if _, err := im.ReadAt(got, 0); err != nil || !bytes.Equal(got, disk) {
				t.Errorf("our reader: %v, equal %v", err, bytes.Equal(got, disk))
			}
		})
	}
}

// TestWriterSparseTerabyte: a 1 TiB disk with a few clusters written makes
// a small image that qemu-img accepts.
func TestWriterSparseTerabyte(t *testing.T) {
	qimg := testutil.RequireTool(t, "qemu-img")
	p := filepath.Join(t.TempDir(), "big.qcow2")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, 1<<40, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("data"), WriterCluster/4)
	for _, off := range []int64{0, 300 << 30, 1<<40 - WriterCluster} {
		if _, err := w.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if fi.Size() > 2<<20 {
		t.Errorf("a 1 TiB disk with 3 clusters: a %d-byte image", fi.Size())
	}
	if out, err := exec.Command(qimg, "check", p).CombinedOutput(); err != nil {
		t.Errorf("qemu-img check: %v\n%s", err, out)
	}
	im, err := Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, WriterCluster)
	if _, err := im.ReadAt(got, 300<<30); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read back: %v", err)
	}
}

// TestWriterSpillsL2: with fewer L2 tables held than the disk has, writes
// that jump between tables (plain, compressed, rewritten, zeroed) make an
// image qemu-img checks and finds equal to the raw disk.
func TestWriterSpillsL2(t *testing.T) {
	qimg := testutil.RequireTool(t, "qemu-img")
	defer func(n int) { maxWriterL2 = n }(maxWriterL2)
	maxWriterL2 = 2
	const size = 4<<30 + 3*WriterCluster // 9 L2 tables
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			dir := t.TempDir()
			raw, err := os.Create(filepath.Join(dir, "disk.raw"))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if err := raw.Truncate(size); err != nil {
				t.Fatal(err)
			}
			img, err := os.Create(filepath.Join(dir, "disk.qcow2"))
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			w, err := NewWriter(img, size, WriterOptions{Compress: compress})
			if err != nil {
				t.Fatal(err)
			}
			write := func(p []byte, off int64) {
				t.Helper()
				if _, err := w.WriteAt(p, off); err != nil {
					t.Fatal(err)
				}
				if _, err := raw.WriteAt(p, off); err != nil {
					t.Fatal(err)
				}
			}
			const region = l2Entries * WriterCluster // what one table maps
			cl := rawDisk(WriterCluster, 3)
			for round := int64(0); round < 3; round++ {
				for r := int64(0); r*region < size; r++ {
					off := min(r*region+round*5*WriterCluster, size-WriterCluster)
					cl[0], cl[1] = byte(r), byte(round)
					if compress && round == 0 {
						if err := w.WriteCluster(off/WriterCluster, cl); err != nil {
							t.Fatal(err)
						}
						raw.WriteAt(cl, off)
					} else {
						write(cl, off)
					}
				}
			}
			// rewrite part of the first cluster of every table, zero the
			// last one written in the first table
			for r := int64(0); r*region < size; r++ {
				write([]byte("rewritten"), r*region+100)
			}
			write(make([]byte, WriterCluster), 10*WriterCluster)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(qimg, "check", img.Name()).CombinedOutput(); err != nil {
				t.Errorf("qemu-img check: %v\n%s", err, out)
			}
			if out, err := exec.Command(qimg, "compare", "-f", "qcow2", "-F", "raw", img.Name(), raw.Name()).CombinedOutput(); err != nil || !strings.Contains(string(out), "identical") {
				t.Errorf("qemu-img compare: %v\n%s", err, out)
			}
		})
	}
}

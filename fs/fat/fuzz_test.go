//go:build linux

package fat

import (
	"bytes"
	"compress/gzip"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
)

// The fuzz targets patch small real images (testdata/*.img.gz: FAT12 and
// FAT32 by mkfs.vfat and mcopy, exFAT by mkfs.exfat and exfat-fuse;
// rebuild with go test -run 'TestMake' -make-fixtures) and read everything.

// TestMakeFATFixtures rebuilds testdata/base-fat12.img.gz and
// base-fat32.img.gz.
func TestMakeFATFixtures(t *testing.T) {
	if !*makeFixtures {
		t.Skip("run with -make-fixtures to rebuild the fuzz base images")
	}
	src := t.TempDir()
	buildTree(t, src, 40, 0)
	for name, args := range map[string][]string{
		"base-fat12": {"-F", "12"},
		"base-fat32": {"-F", "32", "-s", "1"},
	} {
		img := filepath.Join(t.TempDir(), name)
		kib := 2048
		if name == "base-fat32" {
			kib = 34 << 10
		}
		mkvfat(t, src, img, kib, args...)
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(raw)
		zw.Close()
		if err := os.WriteFile(filepath.Join("testdata", name+".img.gz"), gz.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzBase is a base image and the places the targets patch.
type fuzzBase struct {
	img  []byte
	fat  int64   // offset of the first FAT
	dirs []int64 // offsets of directory clusters
}

var (
	basesOnce sync.Once
	bases     []*fuzzBase
)

func loadBases(t testing.TB) []*fuzzBase {
	basesOnce.Do(func() {
		for _, name := range []string{"base-fat12", "base-fat32", "exfat"} {
			fh, err := os.Open(filepath.Join("testdata", name+".img.gz"))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(fh)
			if err != nil {
				t.Fatal(err)
			}
			img, err := io.ReadAll(io.LimitReader(zr, 64<<20))
			fh.Close()
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			b := &fuzzBase{img: img, fat: f.g.fatOff}
			for _, p := range []string{"/", "/many", "/deep", "/sizes"} {
				if n, err := fs.Lookup(f, p); err == nil {
					if lay, err := f.Layout(n); err == nil && len(lay.Data) > 0 {
						b.dirs = append(b.dirs, lay.Data[0].Physical)
					}
				}
			}
			bases = append(bases, b)
		}
	})
	return bases
}

// readAll opens img and reads everything in it, checking invariants.
func readAll(t *testing.T, img []byte) {
	f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
	if err != nil {
		return
	}
	_ = f.Info()
	buf := make([]byte, 64<<10)
	count := 0
	fs.Walk(f, f.Root(), func(p string, e *fs.DirEntry, st *fs.Stat, err error) error {
		if count++; count > 3000 {
			return iofs.SkipAll
		}
		if e != nil && (e.Name == "" || strings.ContainsAny(e.Name, "/\x00")) {
			t.Fatalf("%s: bad name %q", p, e.Name)
		}
		if st == nil {
			return nil
		}
		if lay, err := f.Layout(st.Node); err == nil {
			for _, x := range append(lay.Data, lay.Meta...) {
				if x.Length <= 0 || x.Logical < 0 {
					t.Fatalf("%s: bad extent %+v", p, x)
				}
			}
		}
		if st.Mode.IsRegular() {
			if fl, err := f.Open(st.Node); err == nil {
				fl.ReadAt(buf, 0)
				fl.ReadAt(buf, fl.Size()/2)
			}
		}
		return nil
	})
}

func patch(base []byte, off int64, p []byte) []byte {
	img := bytes.Clone(base)
	if off >= 0 && off < int64(len(img)) {
		copy(img[off:], p)
	}
	return img
}

// FuzzBoot patches the boot sector (and exFAT's boot region).
func FuzzBoot(f *testing.F) {
	bs := loadBases(f)
	f.Add(uint8(0), uint16(13), []byte{3})
	f.Add(uint8(1), uint16(44), []byte{0xff, 0xff, 0, 0})
	f.Add(uint8(2), uint16(96), []byte{9, 0, 0, 0})
	f.Fuzz(func(t *testing.T, which uint8, off uint16, p []byte) {
		if len(p) > 1024 {
			p = p[:1024]
		}
		readAll(t, patch(bs[int(which)%len(bs)].img, int64(off%8192), p))
	})
}

// FuzzFAT patches the first FAT.
func FuzzFAT(f *testing.F) {
	bs := loadBases(f)
	f.Add(uint8(0), uint16(3), []byte{0xff, 0x0f})
	f.Add(uint8(1), uint16(12), []byte{3, 0, 0, 0})
	f.Add(uint8(2), uint16(20), []byte{0xf7, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, which uint8, off uint16, p []byte) {
		b := bs[int(which)%len(bs)]
		readAll(t, patch(b.img, b.fat+int64(off), p))
	})
}

// FuzzDirectory patches a directory cluster.
func FuzzDirectory(f *testing.F) {
	bs := loadBases(f)
	f.Add(uint8(0), uint8(0), uint16(11), []byte{0x0f})
	f.Add(uint8(1), uint8(1), uint16(13), []byte{0x42})
	f.Add(uint8(2), uint8(1), uint16(1), []byte{18})
	f.Fuzz(func(t *testing.T, which, dir uint8, off uint16, p []byte) {
		b := bs[int(which)%len(bs)]
		if len(b.dirs) == 0 {
			t.Skip()
		}
		readAll(t, patch(b.img, b.dirs[int(dir)%len(b.dirs)]+int64(off%4096), p))
	})
}

//go:build linux

package xfs

import (
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
)

// The fuzz targets patch small real images made by mkfs.xfs -p
// (testdata/base-*.img.gz; regenerate with go test -run TestMakeFuzzBases
// -make-fuzz-bases) and read everything in them.

var makeFuzzBases = flag.Bool("make-fuzz-bases", false, "rebuild testdata/base-*.img.gz with mkfs.xfs")

// TestMakeFuzzBases builds the base images: v5 and v4, 1 KiB blocks, with
// every directory form, a bmbt file, inline and remote symlinks, devices.
func TestMakeFuzzBases(t *testing.T) {
	if !*makeFuzzBases {
		t.Skip("run with -make-fuzz-bases to rebuild the fuzz base images")
	}
	src := t.TempDir()
	buildTree(t, src, treeOpt{small: 40, many: 300, frag: 100, special: true, proto: true})
	if err := os.Symlink(strings.Repeat("s/", 200), filepath.Join(src, "remote")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"base-v5", []string{"-b", "size=1024"}},
		{"base-v4", []string{"-b", "size=1024", "-m", "crc=0"}},
	} {
		img := filepath.Join(t.TempDir(), c.name)
		mkfsProto(t, src, img, 20<<20, c.args...)
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(raw)
		zw.Close()
		if err := os.WriteFile(filepath.Join("testdata", c.name+".img.gz"), gz.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzBase is a base image and the places the targets patch.
type fuzzBase struct {
	img    []byte
	inodes int64   // volume offset of the root's inode cluster
	blocks []int64 // volume offsets of directory, bmbt and symlink blocks
	bs     int64
}

var (
	basesOnce sync.Once
	bases     map[string]*fuzzBase
)

func gunzip(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(zr, limit))
}

func loadBases(t testing.TB) map[string]*fuzzBase {
	basesOnce.Do(func() {
		bases = map[string]*fuzzBase{}
		for _, name := range []string{"base-v5", "base-v4"} {
			img, err := gunzip(filepath.Join("testdata", name+".img.gz"), 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			root, _ := f.inodePos(f.sb.rootIno)
			b := &fuzzBase{img: img, bs: f.bs, inodes: root}
			for _, p := range []string{"/many", "/frag.bin", "/small", "/remote", "/block"} {
				n, err := fs.Lookup(f, p)
				if err != nil {
					continue
				}
				if lay, err := f.Layout(n); err == nil {
					for i, m := range lay.Meta[1:] {
						if i < 4 {
							b.blocks = append(b.blocks, m.Physical)
						}
					}
				}
			}
			bases[name] = b
		}
	})
	return bases
}

// readAll opens img and reads everything in it, checking invariants a
// caller relies on.
func readAll(t *testing.T, img []byte) {
	f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
	if err != nil {
		return
	}
	_ = f.Info()
	buf := make([]byte, 64<<10)
	seen := map[fs.Node]bool{}
	fuzzVisit(t, f, f.Root(), seen, buf)
	orphans, _ := f.Orphans()
	for _, n := range orphans {
		fuzzVisit(t, f, n, seen, buf)
	}
}

func fuzzVisit(t *testing.T, f *FS, n fs.Node, seen map[fs.Node]bool, buf []byte) {
	if seen[n] || len(seen) > 5000 {
		return
	}
	seen[n] = true
	st, err := f.Stat(n)
	if err != nil {
		return
	}
	if lay, err := f.Layout(n); err == nil {
		for _, e := range append(lay.Data, lay.Meta...) {
			if e.Length <= 0 || e.Logical < 0 {
				t.Fatalf("node %d: bad extent %+v", n, e)
			}
		}
	}
	switch {
	case st.Mode.IsDir():
		ents, _ := f.ReadDir(n)
		for _, e := range ents {
			if e.Name == "" || strings.ContainsAny(e.Name, "/\x00") {
				t.Fatalf("node %d: bad name %q", n, e.Name)
			}
			fuzzVisit(t, f, e.Node, seen, buf)
		}
	case st.Mode.IsRegular():
		fl, err := f.Open(n)
		if err != nil {
			return
		}
		for _, off := range []int64{0, fl.Size() / 2, fl.Size() - int64(len(buf))} {
			if off >= 0 {
				fl.ReadAt(buf, off)
			}
		}
	case st.Mode&iofs.ModeSymlink != 0:
		f.ReadLink(n)
	}
}

func patch(base []byte, off int64, p []byte) []byte {
	img := bytes.Clone(base)
	if off >= 0 && off < int64(len(img)) {
		copy(img[off:], p)
	}
	return img
}

func pick(bs map[string]*fuzzBase, v4 bool) *fuzzBase {
	if v4 {
		return bs["base-v4"]
	}
	return bs["base-v5"]
}

// FuzzSuperblock patches the primary superblock and the AG 0 headers.
func FuzzSuperblock(f *testing.F) {
	bs := loadBases(f)
	f.Add(false, uint16(0), []byte{})
	f.Add(true, uint16(84), []byte{0xff, 0xff, 0xff, 0x7f})
	f.Add(false, uint16(1024+20), []byte{0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, v4 bool, off uint16, p []byte) {
		if len(p) > 4096 {
			p = p[:4096]
		}
		readAll(t, patch(pick(bs, v4).img, int64(off%4096), p))
	})
}

// FuzzInodes patches the root's inode cluster (the root, and most inodes).
func FuzzInodes(f *testing.F) {
	bs := loadBases(f)
	f.Add(false, uint16(5), []byte{3})
	f.Add(true, uint16(100+4), []byte{0, 0, 0, 9})
	f.Add(false, uint16(512+82), []byte{0xff, 1})
	f.Fuzz(func(t *testing.T, v4 bool, off uint16, p []byte) {
		b := pick(bs, v4)
		readAll(t, patch(b.img, b.inodes+int64(off), p))
	})
}

// FuzzMetadataBlock patches a directory, bmbt or symlink block.
func FuzzMetadataBlock(f *testing.F) {
	bs := loadBases(f)
	f.Add(false, uint8(0), uint16(64), []byte{0xff, 0xff})
	f.Add(true, uint8(1), uint16(16), []byte{0, 0, 0, 0, 0, 0, 0, 9})
	f.Add(false, uint8(4), uint16(0), []byte("XDD3"))
	f.Fuzz(func(t *testing.T, v4 bool, which uint8, off uint16, p []byte) {
		b := pick(bs, v4)
		if len(b.blocks) == 0 {
			t.Skip()
		}
		at := b.blocks[int(which)%len(b.blocks)] + int64(off)%b.bs
		readAll(t, patch(b.img, at, p))
	})
}

// FuzzDirBlock parses one directory data block, v4 and v5.
func FuzzDirBlock(f *testing.F) {
	bs := loadBases(f)
	for _, name := range []string{"base-v5", "base-v4"} {
		b := bases[name]
		for _, pos := range b.blocks {
			f.Add(name == "base-v4", b.img[pos:pos+b.bs])
		}
	}
	f.Fuzz(func(t *testing.T, v4 bool, blk []byte) {
		b := pick(bs, v4)
		x, err := Open(bytes.NewReader(b.img), int64(len(b.img)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(blk) < int(x.dirBlk) {
			blk = append(blk, make([]byte, int(x.dirBlk)-len(blk))...)
		}
		blk = blk[:x.dirBlk]
		in := &inode{num: uint64(x.Root())}
		ents, _, _ := x.parseDataBlock(in, blk, []piece{{0, x.dirBlk}}, true)
		for _, e := range ents {
			if e.name == "" || strings.ContainsAny(e.name, "/\x00") || e.where.Physical < 0 || e.where.Physical+e.where.Length > x.dirBlk {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}

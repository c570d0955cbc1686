//go:build linux

package ext4

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// The fuzz targets patch small real images made by mke2fs and debugfs
// (testdata/base-*.img.gz; regenerate with go test -run
// TestMakeFuzzBases -make-fuzz-bases) and read everything in them.

var makeFuzzBases = flag.Bool("make-fuzz-bases", false, "rebuild testdata/base-*.img.gz with mke2fs and debugfs")

// TestMakeFuzzBases builds the base images of the fuzz targets:
// base-ext4: 1 KiB blocks, metadata_csum, an htree directory, a file with
// a depth-1 extent tree, symlinks, xattrs, and a journal holding committed
// transactions (one logs a block starting with the jbd2 magic, one revokes);
// base-ext3: indirect block maps, no checksums.
func TestMakeFuzzBases(t *testing.T) {
	if !*makeFuzzBases {
		t.Skip("run with -make-fuzz-bases to rebuild the fuzz base images")
	}
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	put := func(p string, n int) {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		os.WriteFile(filepath.Join(src, p), b, 0o644)
	}
	put("a", 100)
	put("b", 3000)
	// A compressible file big enough for double indirect blocks (1 KiB blocks).
	var big bytes.Buffer
	for i := 0; big.Len() < 300<<10; i++ {
		fmt.Fprintf(&big, "line %d of the big file\n", i)
	}
	os.WriteFile(filepath.Join(src, "big"), big.Bytes(), 0o644)
	for i := range 120 {
		put(fmt.Sprintf("many/%040d", i), 10)
	}
	// A sparse file with 12 separate data blocks: a depth-1 extent tree.
	fh, _ := os.Create(filepath.Join(src, "frag"))
	for i := range 12 {
		fh.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 1024), int64(i)*8192)
	}
	fh.Close()
	// Attributes in the inode and (for 128-byte inodes) in a block, and an ACL.
	syscall.Setxattr(filepath.Join(src, "a"), "user.small", []byte("v"), 0)
	syscall.Setxattr(filepath.Join(src, "b"), "user.big", bytes.Repeat([]byte("x"), 300), 0)
	acl := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 6, 0, 7, 0, 0, 0,
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	syscall.Setxattr(filepath.Join(src, "b"), "system.posix_acl_access", acl, 0)
	os.Symlink("a", filepath.Join(src, "fast"))
	os.Symlink(strings.Repeat("s/", 50), filepath.Join(src, "slow"))
	os.Link(filepath.Join(src, "a"), filepath.Join(src, "hardlink"))
	os.Setenv("LC_ALL", "C")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"base-ext4", []string{"-t", "ext4", "-b", "1024", "-N", "256", "-I", "256"}},
		{"base-ext3", []string{"-t", "ext3", "-b", "1024", "-N", "256", "-I", "128"}},
	} {
		img := filepath.Join(t.TempDir(), c.name)
		mkfs(t, src, img, "2M", c.args...)
		htreeify(t, img)
		if c.name == "base-ext4" {
			f := openImage(t, img, Options{})
			b := layoutOf(t, f, "/b").Data[0].Physical / f.bs
			a := layoutOf(t, f, "/a").Meta[0].Physical / f.bs // an inode table block
			blk := make([]byte, 2048)
			copy(blk, "\xc0\x3b\x39\x98")
			p := filepath.Join(t.TempDir(), "blk")
			os.WriteFile(p, blk, 0o644)
			cmds := fmt.Sprintf("jo -c\njw -b %d,%d %s\njw -r %d\njc\n", b, b+1, p, a)
			os.WriteFile(p+".cmds", []byte(cmds), 0o644)
			testutil.Run(t, "debugfs", "-w", "-f", p+".cmds", img)
		}
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
	img     []byte
	journal []int64 // volume offsets of the first journal blocks
	blocks  []int64 // volume offsets of interesting metadata blocks
	itable  int64   // volume offset of group 0's inode table
	bs      int64
}

var (
	basesOnce sync.Once
	bases     map[string]*fuzzBase
)

// loadBases reads the base images and locates their metadata with the
// reader itself (on the pristine images).
func loadBases(t testing.TB) map[string]*fuzzBase {
	basesOnce.Do(func() {
		bases = make(map[string]*fuzzBase)
		for _, name := range []string{"base-ext4", "base-ext3"} {
			img, err := gunzip(filepath.Join("testdata", name+".img.gz"), 16<<20)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(bytes.NewReader(img), int64(len(img)), Options{Journal: OnDisk})
			if err != nil {
				t.Fatal(err)
			}
			b := &fuzzBase{img: img, bs: f.bs, itable: int64(f.gd[0].inodeTable) * f.bs}
			got, _ := walk(f, false, 1<<20)
			for _, p := range []string{"/frag", "/big", "/many", "/slow", "/", "/b"} {
				if w := got[p]; w != nil && w.lay != nil {
					for _, m := range w.lay.Meta[1:] {
						b.blocks = append(b.blocks, m.Physical)
					}
				}
			}
			if j, _ := f.loadJournal(); j != nil {
				for i := range uint32(12) {
					if p := j.pos(i); p >= 0 {
						b.journal = append(b.journal, p)
					}
				}
			}
			bases[name] = b
		}
	})
	return bases
}

// readAll opens img and reads everything in it, in every journal mode,
// checking invariants a caller relies on.
func readAll(t *testing.T, img []byte) {
	buf := make([]byte, 64<<10)
	for _, mode := range []JournalMode{Auto, Replay, OnDisk} {
		f, err := Open(bytes.NewReader(img), int64(len(img)), Options{Journal: mode})
		if err != nil {
			continue
		}
		_ = f.Info()
		seen := make(map[fs.Node]bool)
		fuzzVisit(t, f, f.Root(), seen, buf)
		orphans, _ := f.Orphans()
		for _, n := range orphans {
			fuzzVisit(t, f, n, seen, buf)
			if on, ok := f.OrphanName(n); ok && (on.Name == "" || on.Parent == 0) {
				t.Fatalf("orphan %d named %+v", n, on)
			}
		}
		if mode == Auto && f.Info().View == ViewOnDisk {
			break // Replay and OnDisk may still differ; Auto already was OnDisk
		}
	}
}

// fuzzVisit reads node n and everything under it once, cheaply.
func fuzzVisit(t *testing.T, f *FS, n fs.Node, seen map[fs.Node]bool, buf []byte) {
	if seen[n] {
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
			if e.Name == "" || strings.Contains(e.Name, "/") {
				t.Fatalf("node %d: bad name %q", n, e.Name)
			}
			fuzzVisit(t, f, e.Node, seen, buf)
		}
	case st.Mode.IsRegular():
		fl, err := f.Open(n)
		if err != nil {
			return
		}
		// The first and last 64 KiB, and one block in the middle.
		for _, off := range []int64{0, fl.Size() / 2, fl.Size() - int64(len(buf))} {
			if off >= 0 {
				fl.ReadAt(buf, off)
			}
		}
	case st.Mode&iofs.ModeSymlink != 0:
		f.ReadLink(n)
	}
}

// patch returns a copy of base with p written at off (clipped).
func patch(base []byte, off int64, p []byte) []byte {
	img := bytes.Clone(base)
	if off >= 0 && off < int64(len(img)) {
		copy(img[off:], p)
	}
	return img
}

// FuzzSuperblock patches the superblock and the group descriptors.
func FuzzSuperblock(f *testing.F) {
	bs := loadBases(f)
	f.Add(false, []byte{})
	f.Add(true, []byte{0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, ext3 bool, p []byte) {
		b := bs["base-ext4"]
		if ext3 {
			b = bs["base-ext3"]
		}
		if len(p) > 4096 {
			p = p[:4096]
		}
		readAll(t, patch(b.img, sbOffset, p))
	})
}

// FuzzInodeTable patches the first inode table (the root, the journal
// inode and every file's inode).
func FuzzInodeTable(f *testing.F) {
	bs := loadBases(f)
	f.Add(false, uint16(256+0x28), []byte{0x0a, 0xf3, 0x01, 0x00, 0x04, 0x00, 0x05, 0x00})
	f.Add(true, uint16(11*128), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, ext3 bool, off uint16, p []byte) {
		b := bs["base-ext4"]
		if ext3 {
			b = bs["base-ext3"]
		}
		readAll(t, patch(b.img, b.itable+int64(off), p))
	})
}

// FuzzMetadataBlock patches an extent tree block, an indirect block, an
// htree index block, a directory block or a symlink block.
func FuzzMetadataBlock(f *testing.F) {
	bs := loadBases(f)
	f.Add(false, uint8(0), uint16(0), []byte{0, 0})
	f.Add(true, uint8(1), uint16(12), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(false, uint8(3), uint16(0x1c), []byte{3})
	f.Fuzz(func(t *testing.T, ext3 bool, which uint8, off uint16, p []byte) {
		b := bs["base-ext4"]
		if ext3 {
			b = bs["base-ext3"]
		}
		if len(b.blocks) == 0 {
			t.Skip()
		}
		at := b.blocks[int(which)%len(b.blocks)] + int64(off)%b.bs
		readAll(t, patch(b.img, at, p))
	})
}

// FuzzJournal patches the first blocks of the journal (its superblock,
// descriptor, data, revoke and commit blocks).
func FuzzJournal(f *testing.F) {
	bs := loadBases(f)
	f.Add(uint8(1), uint16(12), []byte{0, 0, 0, 9})
	f.Add(uint8(0), uint16(0x1c), []byte{0, 0, 0, 3})
	f.Add(uint8(5), uint16(16), []byte{0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, blk uint8, off uint16, p []byte) {
		b := bs["base-ext4"]
		if len(b.journal) == 0 {
			t.Skip()
		}
		at := b.journal[int(blk)%len(b.journal)] + int64(off)%b.bs
		readAll(t, patch(b.img, at, p))
	})
}

// FuzzDirBlock parses one directory block, linear or htree, with and
// without checksums and file types.
func FuzzDirBlock(f *testing.F) {
	for _, seed := range dirBlockSeeds() {
		f.Add(seed, true, true, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, first, csum, filetype bool) {
		if len(b) < 1024 {
			b = append(b, make([]byte, 1024-len(b))...)
		}
		b = b[:1024]
		p := &dirParser{bs: 1024, filetype: filetype, inodesCount: 1000, csum: csum}
		ents, _ := p.parseBlock(b, first, nil)
		for _, e := range ents {
			if e.off < 0 || e.off+e.len > len(b) || e.len < 8 || e.ino == 0 || e.ino > 1000 ||
				e.name == "" || strings.ContainsAny(e.name, "/\x00") {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}

// dirBlockSeeds returns the directory blocks of the ext4 base image.
func dirBlockSeeds() [][]byte {
	img, err := gunzip(filepath.Join("testdata", "base-ext4.img.gz"), 16<<20)
	if err != nil {
		return nil
	}
	f, err := Open(bytes.NewReader(img), int64(len(img)), Options{Journal: OnDisk})
	if err != nil {
		return nil
	}
	var out [][]byte
	for _, n := range []fs.Node{rootIno} {
		lay, err := f.Layout(n)
		if err != nil {
			continue
		}
		for _, e := range lay.Data {
			out = append(out, img[e.Physical:e.Physical+f.bs])
		}
	}
	ents, _ := f.ReadDir(rootIno)
	for _, e := range ents {
		if e.Name == "many" {
			lay, _ := f.Layout(e.Node)
			for i, d := range lay.Data {
				if i < 3 {
					out = append(out, img[d.Physical:d.Physical+f.bs])
				}
			}
		}
	}
	return out
}

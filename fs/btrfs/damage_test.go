//go:build linux

package btrfs

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
)

// TestCompressed reads images written by the kernel with each compression
// (mount -o compress-force=...; cp -a): every file identical, compressed
// extents listed with their stored size, and a bit flipped in a compressed
// extent names its file.
func TestCompressed(t *testing.T) {
	src := sourceTree(t)
	for _, alg := range []string{"zstd", "zlib", "lzo"} {
		t.Run(alg, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			mountCopy(t, src, img, "compress-force="+alg)
			f := openImage(t, img, Options{})
			fstest.Check(t, f, src, fstest.Options{SkipTestFS: true})

			n := lookup(t, f, "/text.log")
			lay, err := f.Layout(n)
			if err != nil || len(lay.Data) == 0 || lay.Data[0].Stored == 0 || lay.Data[0].Stored >= lay.Data[0].Length {
				t.Fatalf("/text.log: layout %+v, %v: want compressed extents", lay, err)
			}
			flipBit(t, img, lay.Data[0].Physical+lay.Data[0].Stored/2)
			named(t, openImage(t, img, Options{}), src, "/text.log")
		})
	}
}

// TestBitFlip: one bit flipped in a data block, silent to everything but
// the checksums, makes its file (and only it) damaged, in its read and
// then in its Layout; one flipped in a tree block is read from the DUP
// copy.
func TestBitFlip(t *testing.T) {
	src := sourceTree(t)
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, src, img)
	f := openImage(t, img, Options{})
	lay, err := f.Layout(lookup(t, f, "/big1.bin"))
	if err != nil || len(lay.Data) == 0 {
		t.Fatalf("layout %+v, %v", lay, err)
	}
	flipBit(t, img, lay.Data[0].Physical+5000)
	// A leaf of the fs tree: the one holding the root directory's inode.
	rootLay, _ := f.Layout(f.Root())
	flipBit(t, img, rootLay.Meta[0].Physical)
	f = openImage(t, img, Options{})
	named(t, f, src, "/big1.bin")
	got := fstest.Read(f)
	a := fs.Assess(got["/big1.bin"].Stat, got["/big1.bin"].Layout, nil, nil)
	if a.State != fs.StatePartial || a.BadBytes != 4096 {
		t.Errorf("/big1.bin assessed %+v, want one bad sector", a)
	}
}

// named checks that on image f, with no damage map at all, exactly the
// file p is found damaged, by its read and its layout, and every other
// file is identical to the source.
func named(t *testing.T, f *FS, src, p string) {
	t.Helper()
	c := fstest.CheckDamaged(t, f, nil, src)
	if c.Damaged != 1 || c.Missing != 0 {
		t.Errorf("counts %+v: want exactly one damaged file", c)
	}
	g := fstest.Read(f)[p]
	if g == nil || g.Err == nil {
		t.Fatalf("%s: read without an error", p)
	}
	lay, err := f.Layout(g.Stat.Node)
	if err != nil || len(lay.Lost) == 0 {
		t.Errorf("%s: layout %+v, %v: want the bad range in Lost", p, lay, err)
	}
	if a := fs.Assess(g.Stat, lay, nil, nil); a.State == fs.StateIntact {
		t.Errorf("%s: assessed intact after its checksum failed", p)
	}
}

// TestGarbage: garbage over both copies of the fs tree leaf holding a
// file's inode (DUP copies lie far apart), and over another file's data:
// every file outside the damage identical, the rest reported.
func TestGarbage(t *testing.T) {
	src := sourceTree(t)
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, src, img)
	f := openImage(t, img, Options{})
	lay, _ := f.Layout(lookup(t, f, "/dir000/dir001/file00047"))
	leaf := lay.Meta[0].Physical &^ (f.ns - 1)
	copies, _ := f.chunks.physical(logicalOf(t, f, leaf), f.ns)
	if len(copies) != 2 {
		t.Fatalf("metadata in %d copies, want 2 (DUP)", len(copies))
	}
	dmg := &damage.Map{}
	for i, c := range copies {
		dmg.Merge(fstest.Garbage(t, img, c+1000, 2000, uint64(i)))
	}
	lay, _ = f.Layout(lookup(t, f, "/big2.bin"))
	dmg.Merge(fstest.Garbage(t, img, lay.Data[0].Physical+8192, 1000, 9))
	start := time.Now()
	c := fstest.CheckDamaged(t, openImage(t, img, Options{Damage: dmg}), dmg, src)
	t.Logf("%+v in %v", c, time.Since(start))
	if c.Intact+c.Damaged+c.Missing != c.Files || c.Intact < c.Files/2 || c.Damaged+c.Missing < 2 {
		t.Errorf("counts %+v", c)
	}
}

// logicalOf returns the logical address of device offset p.
func logicalOf(t testing.TB, f *FS, p int64) uint64 {
	for _, c := range f.chunks.chunks {
		for _, cp := range c.copies {
			if p >= cp && p < cp+int64(c.length) {
				return c.logical + uint64(p-cp)
			}
		}
	}
	t.Fatalf("device offset %d in no chunk", p)
	return 0
}

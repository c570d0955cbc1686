//go:build linux

package xfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestConformance holds the XFS reader to the contract every filesystem
// reader passes (fs/fstest), on a clean image (testing/fstest included)
// and on one hit by garbage.
func TestConformance(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, treeOpt{small: 40, many: 100, frag: 30, special: true, proto: true})
	img := filepath.Join(t.TempDir(), "img")
	mkfsProto(t, src, img, 32<<20)
	opt := protoOpts
	opt.SkipTestFS = false
	fstest.Check(t, openImage(t, img, Options{}), src, opt)

	// 64 KiB of garbage from the start of a large directory's blocks.
	c0 := openImage(t, img, Options{})
	dmg := fstest.Garbage(t, img, layoutOf(t, c0, "/many").Meta[1].Physical, 64<<10, 7)
	c := fstest.CheckDamaged(t, openImage(t, img, Options{Damage: dmg}), dmg, src)
	t.Logf("%+v", c)
	if c.Intact+c.Damaged+c.Missing != c.Files {
		t.Errorf("counts %+v do not add up", c)
	}
}

// damageCase damages an image (whose clean reader is c) and returns what
// it destroyed.
type damageCase struct {
	name string
	do   func(t *testing.T, img *os.File, c *FS) *damage.Map
}

// ruin writes n bytes of garbage (or zeros) at off of the image file.
func ruin(t *testing.T, img *os.File, dm *damage.Map, off, n int64, zero bool) {
	b := make([]byte, n)
	if !zero {
		for i := range b {
			b[i] = byte(i*131 + int(off) + 7)
		}
	}
	if _, err := img.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	dm.Add(off, n, damage.Lost)
}

// layoutOf returns the layout of the node at path p.
func layoutOf(t *testing.T, f *FS, p string) *fs.Layout {
	t.Helper()
	lay, err := f.Layout(lookup(t, f, p))
	if err != nil {
		t.Fatal(err)
	}
	return lay
}

var damageCases = []damageCase{
	{"primary-superblock", func(t *testing.T, img *os.File, c *FS) *damage.Map {
		dm := &damage.Map{}
		ruin(t, img, dm, 0, 4096, false)
		return dm
	}},
	{"inode-chunks", func(t *testing.T, img *os.File, c *FS) *damage.Map {
		dm := &damage.Map{}
		// Four inode clusters away from the root's (whose loss leaves
		// everything to lost+found, see root-inode).
		root, _ := c.inodePos(c.sb.rootIno)
		for _, p := range []string{"/small/f010", "/many/entry-00000000000000000000000000000000100", "/big.bin", "/small/f140"} {
			if pos := layoutOf(t, c, p).Meta[0].Physical &^ 4095; pos != root&^4095 {
				ruin(t, img, dm, pos, 4096, false)
			}
		}
		return dm
	}},
	{"directory-blocks", func(t *testing.T, img *os.File, c *FS) *damage.Map {
		dm := &damage.Map{}
		lay := layoutOf(t, c, "/many")
		for i, e := range lay.Meta[1:] {
			if i%3 == 0 {
				ruin(t, img, dm, e.Physical, min(e.Length, c.bs), true)
			}
		}
		return dm
	}},
	{"bmbt-and-data", func(t *testing.T, img *os.File, c *FS) *damage.Map {
		dm := &damage.Map{}
		lay := layoutOf(t, c, "/frag.bin")
		for _, m := range lay.Meta[1:] {
			ruin(t, img, dm, m.Physical, c.bs, false)
		}
		d := layoutOf(t, c, "/big.bin").Data[0]
		ruin(t, img, dm, d.Physical+d.Length/2, 8192, true)
		return dm
	}},
	{"garbage-run-1M", func(t *testing.T, img *os.File, c *FS) *damage.Map {
		dm := &damage.Map{}
		ruin(t, img, dm, 3<<20, 1<<20, false)
		return dm
	}},
}

// TestDamage damages v5 and v4 images in several ways and holds the reader
// to the golden rule (every file it calls intact is identical), counting
// what it recovers against xfs_repair on a copy of the same image.
func TestDamage(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, treeOpt{small: 150, many: 700, big: 1 << 20, frag: 300, special: true, proto: true})
	for _, cfg := range []struct {
		name string
		args []string
	}{{"v5", nil}, {"v4", []string{"-m", "crc=0"}}} {
		base := filepath.Join(t.TempDir(), "base")
		mkfsProto(t, src, base, 40<<20, cfg.args...)
		clean := openImage(t, base, Options{})
		pristine, err := os.ReadFile(base)
		if err != nil {
			t.Fatal(err)
		}
		for _, dc := range damageCases {
			t.Run(cfg.name+"/"+dc.name, func(t *testing.T) {
				img := filepath.Join(t.TempDir(), "img")
				if err := os.WriteFile(img, pristine, 0o644); err != nil {
					t.Fatal(err)
				}
				fh, err := os.OpenFile(img, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				dm := dc.do(t, fh, clean)
				fh.Close()
				f := openImage(t, img, Options{Damage: dm})
				c := fstest.CheckDamaged(t, f, dm, src)
				if c.Intact+c.Damaged+c.Missing != c.Files {
					t.Errorf("counts %+v do not add up", c)
				}
				if dc.name == "directory-blocks" {
					// the entries lost with the blocks: their files are orphans
					if o, _ := f.Orphans(); len(o) < c.Missing {
						t.Errorf("%d orphans for %d files lost from their directory", len(o), c.Missing)
					}
				}
				repaired := repairCount(t, img, src)
				t.Logf("%d files: ours %d identical (%d called intact, %d damaged, %d missing); after xfs_repair %d identical",
					c.Files, c.Identical, c.Intact, c.Damaged, c.Missing, repaired)
				if c.Identical < repaired {
					t.Errorf("we recover %d files, xfs_repair %d", c.Identical, repaired)
				}
			})
		}
	}
}

// repairCount runs xfs_repair on a copy of img (-L: the log is zeroed if
// need be) and counts the source's regular files found identical at their
// path in the repaired copy (read with this reader: the repaired image is
// consistent). It returns -1 when xfs_repair gives up.
func repairCount(t *testing.T, img, src string) int {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "repaired")
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.RequireTool(t, "xfs_repair"), "-L", cp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Logf("xfs_repair: %v (%d bytes of output)", err, out.Len())
	}
	fh, err := os.Open(cp)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := Open(fh, int64(len(b)), Options{})
	if err != nil {
		return -1
	}
	got := fstest.Read(f)
	n := 0
	for p, w := range fstest.ReadTree(t, src) {
		if g := got[p]; w.Mode.IsRegular() && g != nil && g.Stat != nil && g.Stat.Mode.IsRegular() && g.Sum == w.Sum && g.Stat.Size == w.Size {
			n++
		}
	}
	return n
}

//go:build linux

package fat

import (
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestDamage damages FAT16 and FAT32 images in several ways and holds the
// reader to the golden rule; with VZSALVAGE_COMPARE=1 it also counts what
// it recovers against fsck.vfat -a on a copy followed by mcopy -s of
// everything (slow: the tools can take minutes on a damaged FAT32, and get
// 3 s each here).
func TestDamage(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, 300, 1<<20)
	cases := []struct {
		name string
		do   func(t *testing.T, img string, c *FS) *damage.Map
	}{
		{"first-FAT", func(t *testing.T, img string, c *FS) *damage.Map {
			return fstest.Garbage(t, img, c.g.fatOff+512, 8192, 1)
		}},
		{"both-FATs", func(t *testing.T, img string, c *FS) *damage.Map {
			dm := fstest.Garbage(t, img, c.g.fatOff+512, 2048, 2)
			dm.Merge(fstest.Garbage(t, img, c.g.fatOff+c.g.fatLen+2048, 2048, 3))
			return dm
		}},
		{"directory", func(t *testing.T, img string, c *FS) *damage.Map {
			n, err := fs.Lookup(c, "/many")
			if err != nil {
				t.Fatal(err)
			}
			lay, _ := c.Layout(n)
			return fstest.Garbage(t, img, lay.Data[0].Physical+1024, 2048, 4)
		}},
		{"data", func(t *testing.T, img string, c *FS) *damage.Map {
			return fstest.Garbage(t, img, c.g.heap+c.g.cs*200, 64<<10, 5)
		}},
	}
	for _, cfg := range []struct {
		name string
		kib  int
		args []string
	}{{"fat16", 16 << 10, []string{"-F", "16"}}, {"fat32", 40 << 10, []string{"-F", "32", "-s", "1"}}} {
		base := filepath.Join(t.TempDir(), "base")
		mkvfat(t, src, base, cfg.kib, cfg.args...)
		pristine, err := os.ReadFile(base)
		if err != nil {
			t.Fatal(err)
		}
		clean := openImage(t, base, Options{})
		for _, dc := range cases {
			t.Run(cfg.name+"/"+dc.name, func(t *testing.T) {
				img := filepath.Join(t.TempDir(), "img")
				if err := os.WriteFile(img, pristine, 0o644); err != nil {
					t.Fatal(err)
				}
				dm := dc.do(t, img, clean)
				c := fstest.CheckDamaged(t, openImage(t, img, Options{Damage: dm}), dm, src)
				if c.Intact+c.Damaged+c.Missing != c.Files {
					t.Errorf("counts %+v do not add up", c)
				}
				if os.Getenv("VZSALVAGE_COMPARE") == "" {
					t.Logf("%+v (VZSALVAGE_COMPARE=1 to count fsck.vfat's recovery too)", c)
					return
				}
				fsck := fsckCount(t, img, src)
				t.Logf("%d files: ours %d identical (%d called intact, %d damaged, %d missing); fsck.vfat -a + mcopy %d identical",
					c.Files, c.Identical, c.Intact, c.Damaged, c.Missing, fsck)
				if c.Identical < fsck {
					t.Errorf("we recover %d files, fsck.vfat and mcopy %d", c.Identical, fsck)
				}
			})
		}
	}
}

// fsckCount repairs a copy of img with fsck.vfat -a, copies everything out
// with mcopy -s and counts the source's files found identical at their
// path.
func fsckCount(t *testing.T, img, src string) int {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "repaired")
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Each tool gets 3 s: on a damaged FAT32 mcopy can spend minutes
	// following cross-linked chains.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	exec.CommandContext(ctx, testutil.RequireTool(t, "fsck.vfat"), "-a", cp).Run() // exits non-zero when it repaired
	fsckTime := time.Since(start)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	out := t.TempDir()
	cmd := exec.CommandContext(ctx2, testutil.RequireTool(t, "mcopy"), "-s", "-n", "-Q", "-i", cp, "::/", out)
	cmd.Env = append(os.Environ(), "TZ=UTC", "MTOOLS_SKIP_CHECK=1")
	cmd.Run() // copies what it can
	if d := time.Since(start); d > 2*time.Second {
		t.Logf("fsck.vfat took %v, mcopy %v", fsckTime, d-fsckTime)
	}
	n := 0
	for p, w := range fstest.ReadTree(t, src) {
		if !w.Mode.IsRegular() {
			continue
		}
		got, err := os.ReadFile(filepath.Join(out, p))
		if err == nil && sha256.Sum256(got) == w.Sum {
			n++
		}
	}
	return n
}

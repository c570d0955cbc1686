//go:build linux

package ntfs

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
)

// images are built once per test binary and copied for each damage.
var images struct {
	once            sync.Once
	plain, compress string
}

func builtImages(t *testing.T) (plain, compressed string) {
	images.once.Do(func() {
		d, err := os.MkdirTemp("", "ntfsimg")
		if err != nil {
			t.Fatal(err)
		}
		src := sourceTree(t)
		images.plain, images.compress = filepath.Join(d, "plain"), filepath.Join(d, "compressed")
		build(t, src, images.plain)
		build(t, src, images.compress, "-C")
		extraDirs = append(extraDirs, d)
	})
	if images.compress == "" {
		t.Skip("no images")
	}
	return images.plain, images.compress
}

var extraDirs []string

// copyImage copies an image to a new temporary file.
func copyImage(t *testing.T, img string) string {
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFeatures checks that the images hold what the conformance test is
// meant to cover: LZNT1 units, a sparse file's hole, a large stream.
func TestFeatures(t *testing.T) {
	plain, compressed := builtImages(t)
	f := openImage(t, compressed, Options{})
	lay, err := f.Layout(lookup(t, f, "/text.log"))
	if err != nil || len(lay.Data) == 0 || lay.Data[0].Stored == 0 || lay.Data[0].Stored >= lay.Data[0].Length {
		t.Errorf("compressed /text.log: layout %+v, %v: want LZNT1 units", lay, err)
	}
	f = openImage(t, plain, Options{})
	lay, _ = f.Layout(lookup(t, f, "/sparse.img"))
	var mapped int64
	for _, x := range lay.Data {
		if x.Physical >= 0 {
			mapped += x.Length
		}
	}
	if mapped >= 5<<20 {
		t.Errorf("/sparse.img: %d bytes mapped: not sparse", mapped)
	}
	st, err := f.Stat(lookup(t, f, "/"+bigStream))
	if err != nil || st.Size != 200<<10 {
		t.Errorf("%s: %+v, %v", bigStream, st, err)
	}
	// With Options.Streams every stream is a file, and none an xattr.
	f = openImage(t, plain, Options{Streams: true})
	if _, err := fs.Lookup(f, "/ads.txt:Zone.Identifier"); err != nil {
		t.Errorf("Streams: %v", err)
	}
	if st, _ := f.Stat(lookup(t, f, "/ads.txt")); len(st.Xattrs) != 0 {
		t.Errorf("Streams: xattrs %v", st.Xattrs)
	}
}

// TestBackups: the primary boot sector and the $MFT record destroyed, the
// backup boot sector and $MFTMirr take over: every file intact.
func TestBackups(t *testing.T) {
	plain, _ := builtImages(t)
	img := copyImage(t, plain)
	f := openImage(t, img, Options{})
	mft := f.bt.mftLCN * f.cs
	dmg := fstest.Garbage(t, img, 0, 512, 1)
	dmg.Merge(fstest.Garbage(t, img, mft, f.bt.recSize, 2))
	f = openImage(t, img, Options{Damage: dmg})
	if len(f.Info().Problems) < 2 {
		t.Errorf("problems %q: want the boot sector and $MFT noted", f.Info().Problems)
	}
	c := fstest.CheckDamaged(t, f, dmg, sourceTree(t))
	if c.Intact != c.Files {
		t.Errorf("counts %+v: want every file intact", c)
	}
}

// TestGarbage: garbage over index blocks of the root directory and over
// a run of MFT records. Names lost from the index come back from the MFT;
// every file outside the damage identical.
func TestGarbage(t *testing.T) {
	for _, which := range []string{"index", "records", "compressed"} {
		t.Run(which, func(t *testing.T) {
			plain, compressed := builtImages(t)
			img := copyImage(t, plain)
			if which == "compressed" {
				img = copyImage(t, compressed)
			}
			f := openImage(t, img, Options{})
			dmg := &damage.Map{}
			switch which {
			case "index":
				lay, _ := f.Layout(f.Root())
				if len(lay.Meta) < 2 {
					t.Fatalf("root layout %+v: no index blocks", lay)
				}
				ents, err := f.ReadDir(f.Root())
				t.Logf("root: %d entries, %v, index at %+v", len(ents), err, lay.Meta[1:])
				for i, m := range lay.Meta[1:] { // the index blocks, the bitmap
					dmg.Merge(fstest.Garbage(t, img, m.Physical+100, min(m.Length-100, 3000), uint64(i)))
				}
			case "records":
				pos, _ := f.recordPos(150) // files (the directories come first)
				dmg.Merge(fstest.Garbage(t, img, pos[0].Physical, 20*f.bt.recSize, 3))
			case "compressed":
				lay, _ := f.Layout(lookup(t, f, "/text.log"))
				dmg.Merge(fstest.Garbage(t, img, lay.Data[1].Physical+10, 100, 4))
				pos, _ := f.recordPos(90)
				dmg.Merge(fstest.Garbage(t, img, pos[0].Physical+300, 200, 5))
			}
			f = openImage(t, img, Options{Damage: dmg})
			c := fstest.CheckDamaged(t, f, dmg, sourceTree(t))
			t.Logf("%+v", c)
			if c.Intact+c.Damaged+c.Missing != c.Files || c.Intact < c.Files*2/3 || c.Damaged+c.Missing == 0 && which != "index" {
				t.Errorf("counts %+v", c)
			}
			if which == "index" && c.Missing > 0 {
				t.Errorf("%d files missing: the MFT should give back what the index lost", c.Missing)
			}
		})
	}
}

//go:build linux

package ctar

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// openTar indexes a tar file whose bytes dmg reports lost, as a decoder
// would, and returns its tree.
func openTar(t *testing.T, path string, dmg *damage.Map) *FS {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := bytes.NewReader(b)
	var spans []codec.Span
	for _, r := range dmg.Ranges() {
		spans = append(spans, codec.Span{Off: r.Off, Len: r.Len, MaxLen: -1, State: r.State})
	}
	x, err := Scan(&spanReader{Reader: f, spans: spans}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return NewFS(x, f)
}

// tree writes a container tree (testimg.ContainerTree) under a new
// directory and returns both.
func tree(t *testing.T, opt testimg.ContainerOptions) (dir, src string) {
	t.Helper()
	testutil.RequireTool(t, "setfacl")
	testutil.RequireTool(t, "setfattr")
	dir = t.TempDir()
	src = filepath.Join(dir, "root")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	testimg.ContainerTree(t, src, opt)
	return dir, src
}

// TestConformance holds the tar reader to the contract every filesystem
// reader passes (fs/fstest), on a GNU tar archive made with vzdump's flags,
// clean and hit by 64 KiB of garbage.
func TestConformance(t *testing.T) {
	dir, src := tree(t, testimg.ContainerOptions{Files: 300, Seed: 21})
	arc := testimg.ContainerArchive(t, src, dir, "", "2025_12_15-03_00_03")
	fstest.Check(t, openTar(t, arc, nil), src, fstest.Options{})

	st, err := os.Stat(arc)
	if err != nil {
		t.Fatal(err)
	}
	dmg := fstest.Garbage(t, arc, st.Size()/2, 64<<10, 7)
	c := fstest.CheckDamaged(t, openTar(t, arc, dmg), dmg, src)
	t.Logf("%+v", c)
	if c.Intact+c.Damaged+c.Missing != c.Files || c.Intact < c.Files*9/10 {
		t.Errorf("counts %+v", c)
	}
}

//go:build linux

package ext4

import (
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
)

// TestNamesFromJournal: the blocks of two directories are destroyed. The
// journal's log holds older copies of one's blocks: its files come back
// under their own paths (the entries say the names came from the journal),
// the other's go to lost+found as orphans whose names are unknown; every
// file's content is intact either way.
func TestNamesFromJournal(t *testing.T) {
	t.Setenv("E2FSPROGS_FAKE_TIME", "1765767603")
	src := t.TempDir()
	want := map[string][32]byte{}
	put := func(rel, s string) {
		p := filepath.Join(src, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(s), 0o644)
		want["/"+rel] = sha256.Sum256([]byte(s))
	}
	for i := 0; i < 200; i++ {
		put(fmt.Sprintf("logged/a-file-with-a-rather-long-name-%03d.txt", i), fmt.Sprintf("logged %d\n", i))
		put(fmt.Sprintf("plain/p%03d", i), fmt.Sprintf("plain %d\n", i))
	}
	put("logged/sub/deeper.txt", "deeper\n")
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, src, img, "32M", "-b", "4096", "-t", "ext4")
	logged, plain := testimg.FSBlocks(t, img, 0, "/logged"), testimg.FSBlocks(t, img, 0, "/plain")
	if len(logged) < 2 {
		t.Fatalf("/logged has %d blocks", len(logged))
	}
	testimg.JournalBlocks(t, img, 0, logged)

	// garbage over both directories' blocks; the damage map says where
	b, _ := os.ReadFile(img)
	rng := rand.New(rand.NewSource(1))
	dmg := &damage.Map{}
	for _, blk := range append(append([]int64(nil), logged...), plain...) {
		rng.Read(b[blk*4096 : (blk+1)*4096])
		dmg.Add(blk*4096, 4096, damage.Tainted)
	}
	os.WriteFile(img, b, 0o644)
	f := openImage(t, img, Options{Damage: dmg})

	got := map[string][32]byte{}
	named, orphans := 0, 0
	err := fs.Walk(f, f.Root(), func(p string, e *fs.DirEntry, st *fs.Stat, err error) error {
		if st == nil || !st.Mode.IsRegular() {
			if e != nil && e.Orphan {
				orphans++
			}
			return nil
		}
		if e.Named != "" {
			named++
		}
		if e.Orphan {
			orphans++
		}
		fl, err := f.Open(st.Node)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		data := make([]byte, fl.Size())
		fl.ReadAt(data, 0)
		got[p] = sha256.Sum256(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	back, lost := 0, 0
	for p, h := range want {
		switch {
		case got[p] == h:
			back++
		case strings.HasPrefix(p, "/logged/"):
			t.Errorf("%s: not back under its path", p)
		default:
			lost++
		}
	}
	t.Logf("%d of %d files under their paths (%d named from the journal), %d plain files in lost+found, %d orphans", back, len(want), named, lost, orphans)
	if named < 200 || lost != 200 || orphans != 200 {
		t.Errorf("named %d, lost %d, orphans %d", named, lost, orphans)
	}
	// every orphan's content is one of the plain files'
	plainSums := map[[32]byte]bool{}
	for p, h := range want {
		if strings.HasPrefix(p, "/plain/") {
			plainSums[h] = true
		}
	}
	for p, h := range got {
		if strings.HasPrefix(p, "/lost+found/") && !plainSums[h] {
			t.Errorf("%s: not a plain file's content", p)
		}
	}
}

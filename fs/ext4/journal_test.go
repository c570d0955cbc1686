//go:build linux

package ext4

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// journalImage makes an ext4 image (1 KiB blocks) whose journal holds three
// committed, not checkpointed transactions written by debugfs: T1 logs a
// new block A, T2 revokes A, T3 logs blocks B and C (B starting with the
// jbd2 magic, so that it is escaped in the log). jo is the debugfs
// journal_open command line. It returns the image path, the clean image's
// blocks A, B, C and the new contents of B and C.
func journalImage(t *testing.T, jo string) (img string, blocks [3]uint64, newB, newC []byte) {
	src, _ := liteSource.get(t)
	dir := t.TempDir()
	img = filepath.Join(dir, "img")
	mkfs(t, src, img, "32M", "-t", "ext4", "-b", "1024")
	f := openImage(t, img, Options{})
	for i, p := range []string{"/sizes/s1024", "/sizes/s1025", "/small/f002"} {
		lay := layoutOf(t, f, p)
		blocks[i] = uint64(lay.Data[0].Physical / f.bs)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	a := make([]byte, 1024)
	bc := make([]byte, 2048)
	for i := range a {
		a[i] = byte(rng.Uint32())
	}
	for i := range bc {
		bc[i] = byte(rng.Uint32())
	}
	be.PutUint32(bc, jbdMagic)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// T4 renames /README to /READIT in a copy of the root directory's
	// first block (checksum tail recomputed).
	rootBlk := layoutOf(t, f, "/").Data[0].Physical
	raw, _ := os.ReadFile(img)
	d := bytes.Clone(raw[rootBlk : rootBlk+f.bs])
	i := bytes.Index(d, []byte("README"))
	copy(d[i:], "READIT")
	root, _ := f.readInode(rootIno)
	tail := len(d) - dirTailSize
	le.PutUint32(d[tail+8:], crc32c(f.inodeSeed(rootIno, root.generation()), d[:tail]))
	cmds := fmt.Sprintf("%s\njw -b %d %s\njw -r %d\njw -b %d,%d %s\njw -b %d %s\njc\n",
		jo, blocks[0], write("a.bin", a), blocks[0], blocks[1], blocks[2], write("bc.bin", bc),
		rootBlk/f.bs, write("d.bin", d))
	testutil.Run(t, "debugfs", "-w", "-f", write("cmds", []byte(cmds)), img)
	return img, blocks, bc[:1024], bc[1024:]
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

// lookup resolves a path with ReadDir.
func lookup(t *testing.T, f *FS, p string) fs.Node {
	t.Helper()
	n := f.Root()
	if p == "/" {
		return n
	}
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		ents, err := f.ReadDir(n)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		found := false
		for _, e := range ents {
			if e.Name == name {
				n, found = e.Node, true
				break
			}
		}
		if !found {
			t.Fatalf("%s: %s not found", p, name)
		}
	}
	return n
}

// readPath returns the content of the file at p.
func readPath(t *testing.T, f *FS, p string) []byte {
	t.Helper()
	fl, err := f.Open(lookup(t, f, p))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, fl.Size())
	if _, err := fl.ReadAt(b, 0); err != nil && len(b) > 0 {
		t.Fatalf("%s: %v", p, err)
	}
	return b
}

func TestJournalReplay(t *testing.T) {
	_, tree := liteSource.get(t)
	for _, c := range []struct{ name, jo string }{
		{"no-csum", "jo"},
		{"csum-v2", "jo -c -v 2"},
		{"csum-v3", "jo -c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, _, newB, newC := journalImage(t, c.jo)

			// On disk: the old contents, and a note that recovery is needed.
			od := openImage(t, img, Options{Journal: OnDisk})
			if v := od.Info().View; v != ViewOnDisk || len(od.Info().Problems) == 0 {
				t.Errorf("OnDisk: view %q, problems %q", v, od.Info().Problems)
			}
			for _, p := range []string{"/sizes/s1024", "/sizes/s1025", "/small/f002"} {
				if !bytes.Equal(readPath(t, od, p), tree[p].data) {
					t.Errorf("OnDisk %s differs from the source", p)
				}
			}

			// Replayed: A revoked (old content), B (escaped) and C new.
			rp := openImage(t, img, Options{Journal: Auto})
			if v := rp.Info().View; v != ViewReplayed {
				t.Fatalf("Auto: view %q, problems %q", v, rp.Info().Problems)
			}
			if !bytes.Equal(readPath(t, rp, "/sizes/s1024"), tree["/sizes/s1024"].data) {
				t.Error("revoked block A was replayed")
			}
			if got := readPath(t, rp, "/sizes/s1025"); !bytes.Equal(got[:1024], newB) || !bytes.Equal(got[1024:], tree["/sizes/s1025"].data[1024:]) {
				t.Error("block B not replayed (or not unescaped)")
			}
			if got := readPath(t, rp, "/small/f002"); !bytes.Equal(got[:1024], newC) {
				t.Error("block C not replayed")
			}
			if !bytes.Equal(readPath(t, rp, "/READIT"), tree["/README"].data) {
				t.Error("directory block not replayed")
			}

			// e2fsck replays the journal into a copy: every file must match
			// our replayed view.
			fixed := img + ".fsck"
			b, _ := os.ReadFile(img)
			os.WriteFile(fixed, b, 0o644)
			runCode(t, []int{0, 1}, "e2fsck", "-fy", fixed)
			ref := openImage(t, fixed, Options{})
			want, _ := walk(ref, false, 1<<30)
			got, errs := walk(rp, false, 1<<30)
			for _, e := range errs {
				t.Error(e)
			}
			for p, w := range want {
				if g := got[p]; g == nil || g.sum != w.sum || g.st.Size != w.st.Size {
					t.Errorf("%s: replayed view differs from e2fsck's replay", p)
				}
			}
			if len(got) != len(want) {
				t.Errorf("replayed view has %d paths, e2fsck's %d", len(got), len(want))
			}
		})
	}
}

// TestJournalCorrupt damages the logged copy of block C: Auto falls back
// to the on-disk view and says why; Replay replays the rest.
func TestJournalCorrupt(t *testing.T) {
	_, tree := liteSource.get(t)
	img, _, newB, _ := journalImage(t, "jo -c")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	f := openImage(t, img, Options{})
	j, _ := f.loadJournal()
	// Log layout: 1 T1 descriptor, 2 A, 3 commit, 4 T2 revoke, 5 commit,
	// 6 T3 descriptor, 7 B, 8 C, 9 commit.
	b[j.pos(8)+100] ^= 0x40
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, b, 0o644)

	auto := openImage(t, bad, Options{Journal: Auto})
	if v := auto.Info().View; v != ViewOnDisk {
		t.Errorf("Auto on a corrupt journal: view %q", v)
	}
	if !strings.Contains(strings.Join(auto.Info().Problems, "\n"), "checksum mismatch") {
		t.Errorf("Auto: problems %q do not say why", auto.Info().Problems)
	}
	if !bytes.Equal(readPath(t, auto, "/small/f002"), tree["/small/f002"].data) {
		t.Error("Auto: /small/f002 is not the on-disk content")
	}
	rp := openImage(t, bad, Options{Journal: Replay})
	if v := rp.Info().View; v != ViewReplayed {
		t.Errorf("Replay: view %q", v)
	}
	if got := readPath(t, rp, "/sizes/s1025"); !bytes.Equal(got[:1024], newB) {
		t.Error("Replay: block B not replayed")
	}
	if !bytes.Equal(readPath(t, rp, "/small/f002"), tree["/small/f002"].data) {
		t.Error("Replay: the corrupt copy of C was replayed")
	}
}

// TestJournalE2fsprogs replays the journals of e2fsprogs' test images
// (written by the kernel, some deliberately corrupted) and compares every
// file with what e2fsck -E journal_only replays into a copy.
func TestJournalE2fsprogs(t *testing.T) {
	for _, c := range []struct {
		image string
		auto  string // the view Auto chooses
		extra string // a path e2fsck removes beyond replaying
	}{
		{"f_jnl_32bit", ViewReplayed, ""},
		{"f_jnl_64bit", ViewReplayed, ""},
		{"f_clear_orphan_file", ViewReplayed, ""},
		{"f_journal", ViewReplayed, "/journal"}, // e2fsck hides an old visible journal
		{"j_corrupt_commit_csum", ViewOnDisk, ""},
		{"j_corrupt_commit_tid", ViewOnDisk, ""},
		{"j_corrupt_descr_csum", ViewOnDisk, ""},
		{"j_corrupt_descr_tid", ViewOnDisk, ""},
		{"j_corrupt_journal_block", ViewOnDisk, ""},
		{"j_corrupt_revoke_block", ViewOnDisk, ""},
		{"j_corrupt_revoke_csum", ViewOnDisk, ""},
		{"j_corrupt_revoke_rcount", ViewOnDisk, ""},
	} {
		t.Run(c.image, func(t *testing.T) {
			img, err := gunzip(testutil.Fixture(t, filepath.Join("e2fsprogs-tests", c.image+".img.gz")), 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			ref := filepath.Join(t.TempDir(), "ref")
			if err := os.WriteFile(ref, img, 0o644); err != nil {
				t.Fatal(err)
			}
			runCode(t, []int{0, 1, 8, 12}, "e2fsck", "-E", "journal_only", "-y", ref)
			want, _ := walk(openImage(t, ref, Options{Journal: OnDisk}), false, 16<<20)

			auto, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if v := auto.Info().View; v != c.auto {
				t.Errorf("Auto chose the %s view (%q), want %s", v, auto.Info().Problems, c.auto)
			}
			rp, err := Open(bytes.NewReader(img), int64(len(img)), Options{Journal: Replay})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := walk(rp, false, 16<<20)
			for p, w := range want {
				if g := got[p]; g == nil || g.sum != w.sum || g.st.Mode != w.st.Mode {
					t.Errorf("%s: replayed view differs from e2fsck's replay", p)
				}
			}
			for p := range got {
				if want[p] == nil && p != c.extra {
					t.Errorf("%s: in our replayed view only", p)
				}
			}
		})
	}
}

// TestJournalBackupSuperblock zeroes the primary superblock of an image
// whose journal needs recovery: the backup superblock has no
// needs_recovery flag, and the journal is replayed all the same.
func TestJournalBackupSuperblock(t *testing.T) {
	img, _, newB, _ := journalImage(t, "jo -c")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[sbOffset : sbOffset+sbSize])
	f, err := Open(bytes.NewReader(b), int64(len(b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := f.Info().View; v != ViewReplayed {
		t.Fatalf("view %q, problems %q", v, f.Info().Problems)
	}
	if got := readPath(t, f, "/sizes/s1025"); !bytes.Equal(got[:1024], newB) {
		t.Error("block B not replayed")
	}
}

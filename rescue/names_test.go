package rescue

import (
	"crypto/sha256"
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/source"
	"github.com/vzsalvage/vzsalvage/vma"
)

// hitDevice writes a 64 KiB garbage run into the archive where the damage
// it makes covers one of the device bytes targets (tried in order), and
// returns that byte's offset, or -1. The place is searched by bisection,
// the clusters' order in the stream telling whether a trial hit landed
// before or after the target; a hit that no check notices (inside
// incompressible data) is moved a little.
func hitDevice(t *testing.T, arc, dev string, targets []int64, seed int64) int64 {
	t.Helper()
	orig, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	order := map[[2]int64]int{} // (device id, cluster) → place in the stream
	var devID uint8
	_, err = extract.Verify(arc, extract.Options{NoSidecar: true, Observe: func(h *vma.Header, c *vma.Cluster) {
		order[[2]int64{int64(c.Dev), int64(c.Num)}] = len(order)
		for _, d := range h.Devices {
			if d.Name == dev {
				devID = d.ID
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	// try hits at f and returns the first damaged cluster's place (-1:
	// nothing located) and the target it damaged (-1: none)
	try := func(f float64) (int, int64) {
		b := append([]byte(nil), orig...)
		p := min(max(int(float64(len(b)-65536)*f), 0), len(b)-65536)
		rand.New(rand.NewSource(seed)).Read(b[p : p+65536])
		if err := os.WriteFile(arc, b, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := extract.Verify(arc, extract.Options{NoSidecar: true})
		if err != nil {
			t.Fatal(err)
		}
		first := -1
		for _, d := range res.Report.Devices {
			for _, tg := range targets {
				if d.Name == dev && d.Damage.Any(tg, 4096, damage.Tainted) {
					return 0, tg
				}
			}
			for _, r := range d.Damage.Ranges() {
				for c := r.Off / vma.ClusterSize; c*vma.ClusterSize < r.End(); c++ {
					if k, ok := order[[2]int64{int64(d.ID), c}]; ok && (first < 0 || k < first) {
						first = k
					}
				}
			}
		}
		return first, -1
	}
	step := 65536 / float64(len(orig))
	for _, tg := range targets[:min(len(targets), 3)] {
		target, ok := order[[2]int64{int64(devID), tg / vma.ClusterSize}]
		if !ok {
			continue
		}
		lo, hi := 0.0, 1.0
		for i := 0; i < 12; i++ {
			f := (lo + hi) / 2
			first, got := try(f)
			for k := 1; first < 0 && got < 0 && k <= 3; k++ {
				first, got = try(f + float64(k)*step)
			}
			if got >= 0 {
				return got
			}
			if first > target {
				hi = f
			} else {
				lo = f
			}
		}
	}
	os.WriteFile(arc, orig, 0o644)
	return -1
}

// dirsByFiles returns the directories of the tree at src (relative, with
// a leading slash) by the regular files they hold directly, most first.
func dirsByFiles(src string) []string {
	count := map[string]int{}
	filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(src, filepath.Dir(p))
			count["/"+filepath.ToSlash(rel)]++
		}
		return nil
	})
	var dirs []string
	for d := range count {
		if d != "/." {
			dirs = append(dirs, d)
		}
	}
	sort.Slice(dirs, func(i, j int) bool {
		return count[dirs[i]] > count[dirs[j]] || count[dirs[i]] == count[dirs[j]] && dirs[i] < dirs[j]
	})
	return dirs
}

// journalDirs logs the blocks of every directory of the root filesystem in
// its journal as one transaction (debugfs journal_write), then recovers it
// (journal_run): the journal is clean, and its log keeps the copies, as
// after the kernel checkpointed the directories' last changes.
func journalDirs(t *testing.T, img string, off int64, src string) {
	t.Helper()
	var blocks []int64
	filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			rel, _ := filepath.Rel(src, p)
			blocks = append(blocks, testimg.FSBlocks(t, img, off, "/"+filepath.ToSlash(rel))...)
		}
		return nil
	})
	testimg.JournalBlocks(t, img, off, blocks)
}

// nameCounts compares a rescue's root files with want: back under their
// own path, named back (listed "metadata" with where the name came from),
// and orphans listed "name-unknown" whose content is one of want's.
func nameCounts(t *testing.T, rep *Report, out string, want map[string][32]byte) (same, named, unknown int) {
	t.Helper()
	same = rootFiles(t, rep, out, want)
	contents := map[[32]byte]bool{}
	for _, h := range want {
		contents[h] = true
	}
	got := sums(t, filepath.Join(out, "files", "drive-scsi0-p3"))
	for _, f := range rep.DamagedFiles {
		switch {
		case f.State == fs.StateNameUnknown:
			unknown++
			st, err := os.Stat(filepath.Join(out, "files", "drive-scsi0-p3", f.Path))
			if !strings.HasPrefix(f.Path, "/lost+found/#") || err != nil || !st.IsDir() && !contents[got[f.Path]] {
				t.Errorf("%s: name-unknown, but not an orphan with a file's content", f.Path)
			}
		case f.State == fs.StateMetadata && len(f.Problems) > 0 && strings.Contains(strings.Join(f.Problems, " "), "the name is the one in"):
			named++
			if got[f.Path] != want[f.Path] {
				t.Errorf("%s: named back, but not the original's content", f.Path)
			}
		}
	}
	return same, named, unknown
}

// TestNames: a 64 KiB garbage run destroys the block of the root
// filesystem's busiest directory in the newest night. Alone, its files are
// orphans: listed "name-unknown" (content intact), not lost. With the
// older night, their names come back from it. With the directory's block
// in the ext4 journal's log, the night alone gives them back their names.
func TestNames(t *testing.T) {
	ns := buildNights(t, 2, 300)
	v := ns.v
	// the blocks of the directories with the most files, the targets
	dirOf := map[int64]string{}
	var targets []int64
	for _, d := range dirsByFiles(v.src)[:4] {
		blk := testimg.FSBlocks(t, ns.raws[1], v.root.Offset, d)[0]
		dirOf[v.root.Offset+blk*4096] = d
		targets = append(targets, v.root.Offset+blk*4096)
	}
	newest := ns.arcs[1]
	devOff := hitDevice(t, newest, "drive-scsi0", targets, 7)
	if devOff < 0 {
		t.Skip("no place found that damages a directory")
	}
	dir := dirOf[devOff]

	alone := filepath.Join(v.dir, "alone")
	rep, err := Run(newest, alone, Options{})
	if err != nil {
		t.Fatal(err)
	}
	same, named, unknown := nameCounts(t, rep, alone, ns.wants[1])
	t.Logf("alone (%s damaged): %d of %d identical, %d named back, %d name-unknown; %s", dir, same, len(ns.wants[1]), named, unknown, rep.Summary())
	if unknown == 0 || named != 0 {
		t.Errorf("alone: %d name-unknown, %d named back", unknown, named)
	}

	both := filepath.Join(v.dir, "both")
	rep, err = Run(newest, both, Options{Also: []string{ns.arcs[0]}})
	if err != nil {
		t.Fatal(err)
	}
	same2, named2, unknown2 := nameCounts(t, rep, both, ns.wants[1])
	t.Logf("with the older night: %d identical, %d named back, %d name-unknown", same2, named2, unknown2)
	// The older night's cluster may fill the directory block itself (the
	// directory did not change): its files are then back whole, without
	// names being needed.
	if unknown2 >= unknown || same2+named2 <= same {
		t.Errorf("with the older night: %d named back, %d identical, %d name-unknown (alone %d identical, %d name-unknown)", named2, same2, unknown2, same, unknown)
	}
	// the older night's names by themselves, without its fill
	if n := namedByOlder(t, newest, alone, ns.raws[0], ns.arcs[0], ns.wants[1]); n == 0 {
		t.Errorf("the older night named no orphan")
	}

	// the newest night's disk with its directories' blocks in the journal
	raw := filepath.Join(v.dir, "logged.raw")
	b, _ := os.ReadFile(ns.raws[1])
	os.WriteFile(raw, b, 0o644)
	journalDirs(t, raw, v.root.Offset, v.src)
	ldir := filepath.Join(v.dir, "logged")
	os.Mkdir(ldir, 0o755)
	logged := testimg.BuildArchiveAt(t, ldir, []testimg.Disk{{Name: "drive-scsi0", Path: raw}}, ".zst", 101, time.Date(2025, 12, 14, 3, 0, 3, 0, time.UTC))
	if hitDevice(t, logged, "drive-scsi0", []int64{devOff}, 7) < 0 {
		t.Skip("no place found that damages the directory")
	}
	jout := filepath.Join(v.dir, "journal")
	rep, err = Run(logged, jout, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := ns.wants[1]
	same3, named3, unknown3 := nameCounts(t, rep, jout, want)
	t.Logf("with the journal's copies: %d identical, %d named back, %d name-unknown", same3, named3, unknown3)
	if named3 == 0 {
		t.Errorf("no name came back from the journal")
	}
	listed := map[string]bool{}
	for _, f := range rep.DamagedFiles {
		listed[f.Path] = true
	}
	for p := range want {
		if strings.HasPrefix(p, dir+"/") && !strings.Contains(strings.TrimPrefix(p, dir+"/"), "/") {
			if h := sha256File(filepath.Join(jout, "files", "drive-scsi0-p3", p)); h != want[p] && !listed[p] {
				t.Errorf("%s: not back under its path", p)
			}
		}
	}
}

// namedByOlder names the orphans of the damaged archive newest (rescued
// alone in dir) from the older night's root disk image raw, compares each
// named file's content with want's at that path, and returns how many
// were named.
func namedByOlder(t *testing.T, newest, dir, raw, arc string, want map[string][32]byte) int {
	t.Helper()
	root := func(path, uuid string) (fs.FS, string) {
		src, err := source.Open(path, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		for _, v := range src.Volumes() {
			if v.FS == "ext4" && strings.HasSuffix(v.ID, "p3") && (uuid == "" || v.UUID == uuid) {
				f, err := source.OpenFS(v, source.FSOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return f, v.UUID
			}
		}
		t.Fatalf("%s: no ext4 root (p3)", path)
		return nil, ""
	}
	cur, uuid := root(newest, "")
	old, _ := root(raw, uuid)
	dirs := map[fs.Node]string{}
	fs.Walk(cur, cur.Root(), func(p string, e *fs.DirEntry, st *fs.Stat, err error) error {
		if st != nil && st.Mode.IsDir() {
			dirs[st.Node] = p
		}
		return nil
	})
	got := sums(t, filepath.Join(dir, "files", "drive-scsi0-p3"))
	contents := map[[32]byte]bool{}
	for _, h := range want {
		contents[h] = true
	}
	nm := &nightNamer{cur: cur, old: old, archive: arc}
	orphans, _ := cur.Orphans()
	named := 0
	for _, o := range orphans {
		on, ok := nm.OrphanName(o)
		if !ok {
			continue
		}
		named++
		p := path.Join(dirs[on.Parent], on.Name)
		// an orphan whose content is clean must be the file of that name
		if h := got["/lost+found/#"+strconv.FormatUint(uint64(o), 10)]; contents[h] && h != want[p] {
			t.Errorf("orphan #%d named %s by the older night, whose content is another's", o, p)
		}
	}
	t.Logf("the older night names %d of %d orphans", named, len(orphans))
	return named
}

func sha256File(p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		return [32]byte{}
	}
	return sha256.Sum256(b)
}

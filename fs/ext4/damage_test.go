//go:build linux

package ext4

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

var damageSource = &sourceTree{opt: treeOpt{small: 150, many: 600, big: 1 << 20, sparse: true, special: true}}

var damageConfigs = []imageConfig{
	// Two block groups, so that backups of the superblock and descriptors exist.
	{"ext4-4k", "136M", []string{"-t", "ext4", "-b", "4096", "-N", "2048"}, true},
	{"ext4-1k", "24M", []string{"-t", "ext4", "-b", "1024", "-N", "2048"}, true},
	{"ext3-1k", "24M", []string{"-t", "ext3", "-b", "1024", "-N", "2048"}, true},
}

// damager destroys part of img (a clean image, whose reader is clean and
// walk is cleanWalk) and records what it destroyed in dm. It returns the
// image to use (possibly shorter).
type damager func(t *testing.T, img []byte, clean *FS, cleanWalk map[string]*walked, dm *damage.Map) []byte

const page = 4096

func zeroRange(img []byte, dm *damage.Map, off, n int64) {
	clear(img[off : off+n])
	dm.Add(off, n, damage.Lost)
}

// zeroPage zeroes the 4 KiB page holding volume offset off.
func zeroPage(img []byte, dm *damage.Map, off int64) {
	off &^= page - 1
	zeroRange(img, dm, off, page)
}

// usedPages lists the 4 KiB pages of img that are not all zero.
func usedPages(img []byte) []int64 {
	var out []int64
	for off := int64(0); off+page <= int64(len(img)); off += page {
		if !isZero(img[off : off+page]) {
			out = append(out, off)
		}
	}
	return out
}

var damageCases = []struct {
	name string
	do   damager
}{
	{"primary-superblock", func(t *testing.T, img []byte, _ *FS, _ map[string]*walked, dm *damage.Map) []byte {
		zeroPage(img, dm, 0)
		return img
	}},
	{"group-descriptors", func(t *testing.T, img []byte, c *FS, _ map[string]*walked, dm *damage.Map) []byte {
		perBlock := uint64(c.bs) / uint64(c.sb.descBytes())
		for i := uint64(0); i < c.gdtBlocks; i++ {
			blk := c.gdtBlockCopies(i, perBlock)[0]
			zeroRange(img, dm, int64(blk)*c.bs, c.bs)
		}
		return img
	}},
	{"inode-table", func(t *testing.T, img []byte, c *FS, w map[string]*walked, dm *damage.Map) []byte {
		for _, p := range []string{"/small/f010", "/small/f100", "/many/entry-00000000000000000000000000000000100",
			"/big.bin", "/sizes", "/hl/a", "/links/slow"} {
			zeroPage(img, dm, w[p].lay.Meta[0].Physical)
		}
		return img
	}},
	{"dir-blocks", func(t *testing.T, img []byte, c *FS, w map[string]*walked, dm *damage.Map) []byte {
		for _, e := range w["/small"].lay.Data {
			zeroRange(img, dm, e.Physical, e.Length)
		}
		many := w["/many"].lay.Data
		for _, lb := range []int64{c.bs, int64(len(many)/2) * c.bs, 5 * c.bs} {
			for _, e := range many {
				if e.Logical <= lb && lb < e.Logical+e.Length {
					zeroRange(img, dm, e.Physical+lb-e.Logical, c.bs)
				}
			}
		}
		zeroRange(img, dm, w["/dirs/a/b"].lay.Data[0].Physical, c.bs)
		return img
	}},
	{"garbage-1", garbage(1)},
	{"garbage-2", garbage(2)},
	{"bitflips", func(t *testing.T, img []byte, _ *FS, _ map[string]*walked, dm *damage.Map) []byte {
		rng := rand.New(rand.NewPCG(7, 7))
		used := usedPages(img)
		for range 200 {
			off := used[rng.IntN(len(used))] + rng.Int64N(page)
			img[off] ^= 1 << rng.IntN(8)
			dm.Add(off, 1, damage.Tainted)
		}
		return img
	}},
	{"truncated", func(t *testing.T, img []byte, _ *FS, _ map[string]*walked, dm *damage.Map) []byte {
		used := usedPages(img)
		cut := used[len(used)*7/10]
		dm.Add(cut, int64(len(img))-cut, damage.Lost)
		return img[:cut]
	}},
}

// garbage overwrites 24 random used pages with random bytes.
func garbage(seed uint64) damager {
	return func(t *testing.T, img []byte, _ *FS, _ map[string]*walked, dm *damage.Map) []byte {
		rng := rand.New(rand.NewPCG(seed, 99))
		used := usedPages(img)
		for range 24 {
			off := used[rng.IntN(len(used))]
			for i := off; i < off+page; i++ {
				img[i] = byte(rng.Uint32())
			}
			dm.Add(off, page, damage.Tainted)
		}
		return img
	}
}

// assessAll returns, for every walked path, whether fs.Assess calls it
// intact and the path leading to it is trustworthy: every directory above
// it (up to the root, or to the top of an orphan's subtree) has an intact
// entry, inode and block map. (A directory's other blocks may be damaged:
// that does not move its intact entries.)
func assessAll(got map[string]*walked, dm *damage.Map) map[string]bool {
	out := make(map[string]bool, len(got))
	for p, w := range got {
		ok := fs.Assess(w.st, w.lay, w.entry, dm).State == fs.StateIntact && w.readErr == nil
		for q := p; ok && q != "/" && path.Dir(q) != "/#lost"; {
			q = path.Dir(q)
			if a := got[q]; a != nil {
				ok = pathIntact(a, dm)
			}
		}
		out[p] = ok
	}
	return out
}

// pathIntact reports whether a directory's entry, inode and block map (its
// metadata other than its directory blocks) are outside dm.
func pathIntact(w *walked, dm *damage.Map) bool {
	if w.entry != nil && dm.Any(w.entry.Where.Physical, w.entry.Where.Length, damage.Tainted) {
		return false
	}
	if w.lay == nil {
		return false
	}
	data := make(map[fs.Extent]bool)
	for _, e := range w.lay.Data {
		data[fs.Extent{Physical: e.Physical, Length: e.Length}] = true
	}
	for _, e := range w.lay.Meta {
		if !data[fs.Extent{Physical: e.Physical, Length: e.Length}] && dm.Any(e.Physical, e.Length, damage.Tainted) {
			return false
		}
	}
	return true
}

func TestDamagedImages(t *testing.T) {
	src, tree := damageSource.get(t)
	// Damage every case of every configuration first and start the other
	// tools on all of them at once: they are slow (tsk_recover loops on
	// garbage sizes until its timeout), and mostly wait on I/O.
	type job struct {
		name  string
		path  string
		dm    *damage.Map
		tools func() (int, int, string)
	}
	var jobs []job
	start := time.Now()
	for _, c := range damageConfigs {
		dir := t.TempDir()
		cleanImg := filepath.Join(dir, "clean")
		mkfs(t, src, cleanImg, c.size, c.args...)
		if c.htree {
			htreeify(t, cleanImg)
		}
		pristine, err := os.ReadFile(cleanImg)
		if err != nil {
			t.Fatal(err)
		}
		clean, err := Open(bytes.NewReader(pristine), int64(len(pristine)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		cleanWalk, _ := walk(clean, false, 1<<30)
		for _, dc := range damageCases {
			img := bytes.Clone(pristine)
			dm := &damage.Map{}
			img = dc.do(t, img, clean, cleanWalk, dm)
			p := filepath.Join(dir, dc.name)
			writeSparse(t, p, img)
			jobs = append(jobs, job{c.name + "/" + dc.name, p, dm, startTools(t, p, tree)})
		}
	}
	t.Logf("images made and tools started in %v", time.Since(start))
	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			checkDamaged(t, j.path, j.dm, tree, j.tools)
		})
	}
}

// checkDamaged reads a damaged image and checks that what Assess calls
// intact is right, and that we recover at least as many files as debugfs
// and tsk_recover (whose counts tools returns).
func checkDamaged(t *testing.T, img string, dm *damage.Map, tree map[string]*srcEntry, tools func() (int, int, string)) {
	f := openImage(t, img, Options{Damage: dm})
	got, _ := walk(f, true, 64<<20)
	intact := assessAll(got, dm)
	contents := make(map[string]bool)
	for _, e := range tree {
		if e.fi.Mode().IsRegular() {
			contents[e.sum] = true
		}
	}
	var ours []string
	nIntact := 0
	for _, p := range sortedPaths(got) {
		w := got[p]
		if w.st.Mode.IsRegular() {
			ours = append(ours, w.sum)
		}
		if !intact[p] {
			continue
		}
		nIntact++
		s := tree[p]
		switch {
		case w.orphan && w.st.Mode.IsRegular():
			if !contents[w.sum] {
				t.Errorf("intact orphan %s (%d bytes) matches no source file", p, w.st.Size)
			}
		case w.orphan, p == "/lost+found":
		case s == nil:
			t.Errorf("intact %s is not in the source tree", p)
		case w.st.Mode.IsRegular():
			if w.sum != s.sum {
				t.Errorf("intact %s differs from the source", p)
			}
		case w.link != s.link:
			t.Errorf("intact symlink %s -> %q, want %q", p, w.link, s.link)
		}
	}
	n := contentCount(tree, ours)
	dfs, tsk, note := tools()
	t.Logf("%s view: %d paths read, %d intact; correct files: ours %d, debugfs %d, tsk_recover %d (of %d)%s",
		f.Info().View, len(got), nIntact, n, dfs, tsk, len(ours), note)
	if n < dfs || n < tsk {
		t.Errorf("recovered %d correct files, debugfs %d, tsk_recover %d", n, dfs, tsk)
	}
}

// writeSparse writes img to path, skipping zero pages.
func writeSparse(t *testing.T, path string, img []byte) {
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := fh.Truncate(int64(len(img))); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(img); off += page {
		end := min(off+page, len(img))
		if !isZero(img[off:end]) {
			if _, err := fh.WriteAt(img[off:end], int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// startTools starts debugfs -c rdump and tsk_recover -e on the image at
// path; the returned function waits for both and returns how many source
// files each reproduced.
func startTools(t *testing.T, path string, tree map[string]*srcEntry) func() (int, int, string) {
	type res struct {
		n       int
		timeout bool
	}
	dc, tc := make(chan res, 1), make(chan res, 1)
	debugfs := testutil.RequireTool(t, "debugfs")
	tsk := testutil.RequireTool(t, "tsk_recover")
	go func() {
		n, to := countTool(path+".debugfs", tree, debugfs, "-c", "-R", "rdump / "+path+".debugfs", path)
		dc <- res{n, to}
	}()
	go func() {
		n, to := countTool(path+".tsk", tree, tsk, "-e", path, path+".tsk")
		tc <- res{n, to}
	}()
	return func() (int, int, string) {
		d, k := <-dc, <-tc
		note := ""
		if d.timeout {
			note += "; debugfs timed out"
		}
		if k.timeout {
			note += "; tsk_recover timed out"
		}
		return d.n, k.n, note
	}
}

// toolTimeout bounds each external tool run; tsk_recover can loop for
// minutes writing files whose size is garbage.
const toolTimeout = 10 * time.Second

// countTool runs a recovery tool that writes into out and counts the
// source files it reproduced. Files are limited to 64 MiB (SIGXFSZ
// ignored, so the tool just gets EFBIG) and the run to toolTimeout.
func countTool(out string, tree map[string]*srcEntry, tool string, args ...string) (int, bool) {
	if err := os.Mkdir(out, 0o755); err != nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	sh := `trap "" XFSZ; ulimit -f 131072; exec "$@"`
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", sh, "sh", tool}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Run() // damaged images make these tools fail part-way; count what they wrote
	return contentCount(tree, filesUnder(nil, out)), ctx.Err() != nil
}

//go:build linux

// Package fstest is the conformance check every guest filesystem reader of
// vzsalvage passes (fs/ext4, fs/xfs, fs/fat, ...), as codec/codectest is for
// the codecs. A reader's test builds an image with the real tool (mke2fs -d,
// mkfs.xfs -p, mcopy, ...) from a host directory, opens it with the reader,
// and calls Check: the reader must honour the fs.FS contract (the standard
// library's testing/fstest over fs.IOFS, consistent Stat/ReadDir/Open/
// Layout) and give back every file of the source byte for byte, with the
// metadata the filesystem keeps. After damaging the image, CheckDamaged
// holds the reader to the golden rule: every file the assessment calls
// intact is identical to the source.
package fstest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	stdfstest "testing/fstest"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
)

// Options say what a filesystem keeps, so that Check compares only that.
type Options struct {
	// MtimeGranularity is the resolution of modification times the image
	// keeps (0: exact to the nanosecond; time.Second for mke2fs -d; 2 s for
	// FAT). Times are truncated to it before comparing.
	MtimeGranularity time.Duration
	// NoMtime skips modification times altogether.
	NoMtime bool
	// NoOwners, NoModes, NoSymlinks, NoHardLinks, NoXattrs: the filesystem
	// (or the tool that built the image) does not keep them.
	NoOwners, NoModes, NoSymlinks, NoHardLinks, NoXattrs bool
	// Extra lists paths the image holds that the source does not
	// ("/lost+found"); they are not reported as unexpected.
	Extra []string
	// SkipTestFS skips testing/fstest.TestFS (which reads every file
	// several times) for very large trees.
	SkipTestFS bool
}

// Entry is what Check expects of one source path.
type Entry struct {
	Mode   iofs.FileMode
	Size   int64
	Sum    [32]byte // sha256 of a regular file's content
	Link   string   // symlink target
	UID    uint32
	GID    uint32
	Nlink  uint32
	Ino    uint64 // host inode, to recognise hard links
	Mtime  time.Time
	Xattrs map[string][]byte
}

// ReadTree reads a host directory into the entries Check expects, keyed by
// guest path ("/", "/etc/passwd").
func ReadTree(t testing.TB, root string) map[string]*Entry {
	t.Helper()
	out := map[string]*Entry{}
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		gp := path.Clean("/" + filepath.ToSlash(rel))
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := &Entry{Mode: fi.Mode(), Size: fi.Size(), Mtime: fi.ModTime()}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.UID, e.GID, e.Nlink, e.Ino = sys.Uid, sys.Gid, uint32(sys.Nlink), sys.Ino
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Sum = sha256.Sum256(b)
		case fi.Mode()&iofs.ModeSymlink != 0:
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		if fi.Mode()&iofs.ModeSymlink == 0 {
			e.Xattrs = hostXattrs(p)
		}
		out[gp] = e
		return nil
	})
	if err != nil {
		t.Fatalf("reading the source tree: %v", err)
	}
	return out
}

// hostXattrs returns a host file's extended attributes.
func hostXattrs(p string) map[string][]byte {
	buf := make([]byte, 64<<10)
	n, err := syscall.Listxattr(p, buf)
	if err != nil || n <= 0 {
		return nil
	}
	out := map[string][]byte{}
	for _, name := range bytes.Split(bytes.TrimRight(buf[:n], "\x00"), []byte{0}) {
		v := make([]byte, 64<<10)
		if m, err := syscall.Getxattr(p, string(name), v); err == nil {
			out[string(name)] = v[:m]
		}
	}
	return out
}

// Got is what a reader gave for one path.
type Got struct {
	Entry  *fs.DirEntry // nil for the root
	Stat   *fs.Stat     // nil when Stat failed
	Layout *fs.Layout
	Sum    [32]byte
	Link   string
	Err    error // the walk's or a read's error for this path
	Orphan bool  // reached only through lost+found
}

// Read walks a reader's whole tree (orphans under /lost+found) and reads
// every regular file and symlink, never failing on damage: problems are
// recorded per path. Files larger than maxRead are hashed, not kept.
func Read(f fs.FS) map[string]*Got {
	out := map[string]*Got{}
	fs.Walk(f, f.Root(), func(p string, e *fs.DirEntry, st *fs.Stat, err error) error {
		g := out[p]
		if g == nil {
			g = &Got{Entry: e, Stat: st}
			out[p] = g
			g.Orphan = strings.HasPrefix(p, "/lost+found/#")
		}
		if err != nil {
			g.Err = errors.Join(g.Err, err)
		}
		if st == nil {
			return nil
		}
		if g.Layout == nil {
			g.Layout, _ = f.Layout(st.Node)
		}
		switch {
		case st.Mode.IsRegular():
			if g.Err != nil && g.Sum != ([32]byte{}) {
				return nil
			}
			h := sha256.New()
			file, oerr := f.Open(st.Node)
			if oerr != nil {
				g.Err = errors.Join(g.Err, oerr)
				return nil
			}
			n, rerr := io.Copy(h, io.NewSectionReader(file, 0, file.Size()))
			if rerr != nil {
				g.Err = errors.Join(g.Err, rerr)
			}
			if n != st.Size {
				g.Err = errors.Join(g.Err, fmt.Errorf("read %d bytes of %d", n, st.Size))
			}
			copy(g.Sum[:], h.Sum(nil))
		case st.Mode&iofs.ModeSymlink != 0:
			l, lerr := f.ReadLink(st.Node)
			if lerr != nil {
				g.Err = errors.Join(g.Err, lerr)
			}
			g.Link = l
		}
		return nil
	})
	return out
}

// Check runs the conformance test of a reader f on an undamaged image built
// from the host directory src: f's Info has no problems, testing/fstest
// accepts fs.IOFS(f), and every source path is there with the same type,
// content, link target and the metadata opt says the filesystem keeps;
// nothing is there that the source lacks (but opt.Extra), no node has
// problems, nothing is an orphan, and each regular file's Layout covers its
// size inside the volume.
func Check(t *testing.T, f fs.FS, src string, opt Options) {
	t.Helper()
	want := ReadTree(t, src)
	if p := f.Info().Problems; len(p) > 0 {
		t.Errorf("problems on a clean image: %q", p)
	}
	if !opt.SkipTestFS {
		var expected []string
		for p, e := range want {
			if p != "/" && e.Mode.IsRegular() && len(expected) < 50 {
				expected = append(expected, strings.TrimPrefix(p, "/"))
			}
		}
		sort.Strings(expected)
		if err := stdfstest.TestFS(fs.IOFS(f), expected...); err != nil {
			if msg := withoutDangling(err.Error(), src, want); msg != "" {
				t.Errorf("testing/fstest: %s", msg)
			}
		}
	}
	got := Read(f)
	r := reporter{t: t}
	defer r.done()
	extra := map[string]bool{}
	for _, p := range opt.Extra {
		extra[p] = true
	}
	size := f.Info().Size
	links := map[uint64]fs.Node{}
	for _, p := range sortedKeys(want) {
		w, g := want[p], got[p]
		if g == nil {
			r.fail("%s: missing", p)
			continue
		}
		if g.Stat == nil {
			r.fail("%s: %v", p, g.Err)
			continue
		}
		if g.Err != nil {
			r.fail("%s: %v", p, g.Err)
		}
		if len(g.Stat.Problems) > 0 {
			r.fail("%s: problems %q", p, g.Stat.Problems)
		}
		if g.Orphan {
			r.fail("%s: orphan on a clean image", p)
		}
		compareEntry(&r, p, w, g, opt)
		if w.Mode.IsRegular() {
			if prev, ok := links[w.Ino]; ok && !opt.NoHardLinks && prev != g.Stat.Node {
				r.fail("%s: a hard link to another node than its other names", p)
			}
			links[w.Ino] = g.Stat.Node
			checkLayout(&r, p, g, size)
		}
	}
	for p, g := range got {
		if want[p] == nil && !extra[p] && !underExtra(p, extra) && !g.Orphan {
			r.fail("%s: not in the source", p)
		}
	}
}

// withoutDangling drops testing/fstest's complaints about symlinks whose
// target the source lacks too (TestFS opens every symlink, following it).
func withoutDangling(msg, src string, want map[string]*Entry) string {
	var keep []string
	for _, line := range strings.Split(msg, "\n") {
		p, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		if w := want["/"+p]; w != nil && w.Mode&iofs.ModeSymlink != 0 {
			if _, err := os.Stat(filepath.Join(src, p)); err != nil {
				continue
			}
		}
		if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "TestFS found errors") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func underExtra(p string, extra map[string]bool) bool {
	for e := range extra {
		if strings.HasPrefix(p, e+"/") {
			return true
		}
	}
	return false
}

// compareEntry compares what a reader gave for p with the source.
func compareEntry(r *reporter, p string, w *Entry, g *Got, opt Options) {
	st := g.Stat
	if w.Mode.Type() != st.Mode.Type() {
		if !(opt.NoSymlinks && w.Mode&iofs.ModeSymlink != 0) {
			r.fail("%s: type %v, want %v", p, st.Mode.Type(), w.Mode.Type())
		}
		return
	}
	perm := iofs.ModePerm | iofs.ModeSetuid | iofs.ModeSetgid | iofs.ModeSticky
	if !opt.NoModes && p != "/" && w.Mode&perm != st.Mode&perm {
		r.fail("%s: mode %v, want %v", p, st.Mode, w.Mode)
	}
	if !opt.NoOwners && p != "/" && (w.UID != st.UID || w.GID != st.GID) {
		r.fail("%s: owner %d:%d, want %d:%d", p, st.UID, st.GID, w.UID, w.GID)
	}
	if !opt.NoMtime && p != "/" && w.Mode&iofs.ModeSymlink == 0 && !w.Mode.IsDir() {
		want := w.Mtime
		if opt.MtimeGranularity > 0 {
			want = want.Truncate(opt.MtimeGranularity)
		}
		if !st.Mtime.Equal(want) {
			r.fail("%s: mtime %v, want %v", p, st.Mtime, want)
		}
	}
	switch {
	case w.Mode.IsRegular():
		if st.Size != w.Size || g.Sum != w.Sum {
			r.fail("%s: content differs (size %d, want %d)", p, st.Size, w.Size)
		}
		if !opt.NoHardLinks && st.Nlink != w.Nlink {
			r.fail("%s: nlink %d, want %d", p, st.Nlink, w.Nlink)
		}
	case w.Mode&iofs.ModeSymlink != 0:
		if g.Link != w.Link {
			r.fail("%s: link %q, want %q", p, g.Link, w.Link)
		}
	}
	if !opt.NoXattrs && w.Mode&iofs.ModeSymlink == 0 {
		for name, v := range w.Xattrs {
			if !bytes.Equal(st.Xattrs[name], v) {
				r.fail("%s: xattr %s = %q, want %q", p, name, st.Xattrs[name], v)
			}
		}
		for name := range st.Xattrs {
			if _, ok := w.Xattrs[name]; !ok {
				r.fail("%s: extra xattr %s", p, name)
			}
		}
	}
}

// checkLayout checks that a regular file's layout covers its content
// within the volume, extents in logical order without overlap.
func checkLayout(r *reporter, p string, g *Got, volSize int64) {
	lay := g.Layout
	if lay == nil {
		r.fail("%s: no layout", p)
		return
	}
	if lay.Inline {
		return
	}
	var end int64
	for _, x := range lay.Data {
		if x.Logical < end || x.Length <= 0 {
			r.fail("%s: layout extent %+v out of order or empty", p, x)
			return
		}
		if x.Physical >= 0 && volSize > 0 && x.Physical+x.Span() > volSize {
			r.fail("%s: layout extent %+v beyond the volume (%d bytes)", p, x, volSize)
		}
		end = x.Logical + x.Length
	}
	if len(lay.Lost) > 0 {
		r.fail("%s: lost mappings on a clean image: %+v", p, lay.Lost)
	}
}

// Counts is the outcome of CheckDamaged.
type Counts struct {
	Files     int // regular files in the source
	Intact    int // read back, assessed intact and identical
	Damaged   int // assessed damaged (listed in damaged_files by a rescue)
	Missing   int // not reached at all (their directory was lost)
	Identical int // read back identical, whatever the assessment
}

// CheckDamaged holds a reader to the golden rule on a damaged image: f was
// opened on the damaged volume, dmg (volume offsets) lists every byte that
// differs from the clean image. Every regular file or symlink that fs.Assess
// calls intact, reached under its source path, must be identical to the
// source: a failure here is the worst bug a reader can have. It returns the
// counts for the test to bound (at least so many files recovered).
func CheckDamaged(t *testing.T, f fs.FS, dmg *damage.Map, src string) Counts {
	t.Helper()
	want := ReadTree(t, src)
	got := Read(f)
	r := reporter{t: t}
	defer r.done()
	var c Counts
	for _, p := range sortedKeys(want) {
		w := want[p]
		if !w.Mode.IsRegular() && w.Mode&iofs.ModeSymlink == 0 {
			continue
		}
		if w.Mode.IsRegular() {
			c.Files++
		}
		g := got[p]
		if g == nil || g.Stat == nil {
			if w.Mode.IsRegular() {
				c.Missing++
			}
			continue
		}
		same := g.Stat.Mode.Type() == w.Mode.Type() && g.Link == w.Link &&
			(!w.Mode.IsRegular() || g.Stat.Size == w.Size && g.Sum == w.Sum)
		if same && w.Mode.IsRegular() {
			c.Identical++
		}
		a := fs.Assess(g.Stat, g.Layout, g.Entry, dmg)
		if a.State != fs.StateIntact || g.Err != nil {
			if w.Mode.IsRegular() {
				c.Damaged++
			}
			continue
		}
		if !same {
			r.fail("%s: assessed intact but differs from the source (size %d, want %d)", p, g.Stat.Size, w.Size)
			continue
		}
		if w.Mode.IsRegular() {
			c.Intact++
		}
	}
	return c
}

// reporter caps the number of reported differences.
type reporter struct {
	t testing.TB
	n int
}

func (r *reporter) fail(format string, args ...any) {
	r.t.Helper()
	if r.n++; r.n <= 25 {
		r.t.Errorf(format, args...)
	}
}

func (r *reporter) done() {
	if r.n > 25 {
		r.t.Errorf("... %d differences in all", r.n)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Garbage overwrites n bytes of the image file at off with seeded random
// bytes, as a failing disk or a bad copy does, and returns the damage map a
// rescue would hand the reader: those bytes, lost.
func Garbage(t testing.TB, img string, off, n int64, seed uint64) *damage.Map {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	dmg := &damage.Map{}
	dmg.Add(off, n, damage.Lost)
	return dmg
}

// OpenImage opens an image file read-only with a reader's open function;
// the file is closed when the test ends.
func OpenImage[T any](t testing.TB, img string, open func(r io.ReaderAt, size int64) (T, error)) T {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	f, err := open(fh, st.Size())
	if err != nil {
		t.Fatalf("Open(%s): %v", img, err)
	}
	return f
}

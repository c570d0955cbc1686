//go:build linux

package ctar

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	sys "golang.org/x/sys/unix"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// describeTree lists everything under dir: per path its type, mode,
// owner, size, times, content hash or target, xattrs, and which earlier
// path it is a hard link of.
func describeTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	first := map[uint64]string{}
	stats := map[string]*sys.Stat_t{}
	var paths []string
	// every stat before any read: reading a file changes the atime its
	// other names show
	filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		st := &sys.Stat_t{}
		if err := sys.Lstat(p, st); err != nil {
			t.Fatal(err)
		}
		stats[p] = st
		paths = append(paths, p)
		return nil
	})
	for _, p := range paths {
		st := stats[p]
		rel, _ := filepath.Rel(dir, p)
		s := fmt.Sprintf("%s mode %o uid %d gid %d", rel, st.Mode, st.Uid, st.Gid)
		if st.Mode&sys.S_IFMT != sys.S_IFDIR {
			s += fmt.Sprintf(" size %d mtime %d atime %d", st.Size, st.Mtim.Nano(), st.Atim.Nano())
		}
		switch st.Mode & sys.S_IFMT {
		case sys.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			s += fmt.Sprintf(" sha %x", sha256.Sum256(b))
		case sys.S_IFLNK:
			target, _ := os.Readlink(p)
			s += " -> " + target
		}
		if st.Nlink > 1 && st.Mode&sys.S_IFMT != sys.S_IFDIR {
			if f, ok := first[st.Ino]; ok {
				s += " link of " + f
			} else {
				first[st.Ino] = rel
			}
		}
		if st.Mode&sys.S_IFMT != sys.S_IFLNK {
			buf := make([]byte, 64<<10)
			n, _ := sys.Llistxattr(p, buf)
			names := strings.Split(string(buf[:max(n, 0)]), "\x00")
			slices.Sort(names)
			for _, k := range names {
				if k != "" {
					v := make([]byte, 64<<10)
					m, _ := sys.Lgetxattr(p, k, v)
					s += fmt.Sprintf(" %s=%x", k, v[:max(m, 0)])
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// restoreBoth writes the tree of a tar stream (b, with the damage dmg) out
// twice: while scanning it (Restorer) and with fs.Copy over its index, and
// fails the test where the two trees differ. It returns the Restorer's
// tree and stats.
func restoreBoth(t *testing.T, b []byte, dmg *damage.Map, opt fs.CopyOptions) (*FS, *fs.CopyStats) {
	t.Helper()
	var spans []codec.Span
	for _, r := range dmg.Ranges() {
		spans = append(spans, codec.Span{Off: r.Off, Len: r.Len, MaxLen: -1, State: r.State})
	}
	dir := t.TempDir()
	once, copied := filepath.Join(dir, "once"), filepath.Join(dir, "copied")
	rs, err := NewRestorer(once, opt)
	if err != nil {
		t.Fatal(err)
	}
	var sopt Options
	rs.Hook(&sopt)
	x, err := Scan(&spanReader{Reader: bytes.NewReader(b), spans: spans}, sopt)
	if err != nil {
		t.Fatal(err)
	}
	tree, stats, err := rs.Finish(x)
	if err != nil {
		t.Fatal(err)
	}
	checkFragmentFiles(t, once, x, b)
	if !slices.Equal(rs.Fragments(), x.Fragments) {
		t.Errorf("fragments written %+v, found %+v", rs.Fragments(), x.Fragments)
	}
	x2, err := Scan(&spanReader{Reader: bytes.NewReader(b), spans: spans}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := NewFS(x2, bytes.NewReader(b))
	opt.Recursive = true
	cstats, err := fs.Copy(f, f.Root(), "/", copied, opt)
	if err != nil {
		t.Fatal(err)
	}
	got, want := describeTree(t, once), describeTree(t, copied)
	if !slices.Equal(got, want) {
		for i := 0; i < max(len(got), len(want)); i++ {
			g, w := "", ""
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("first difference at entry %d:\n restored %s\n copied   %s", i, g, w)
				break
			}
		}
	}
	errPaths := func(st *fs.CopyStats) []string {
		var out []string
		for _, e := range st.Errors {
			out = append(out, e.Error())
		}
		slices.Sort(out)
		return out
	}
	if g, w := errPaths(stats), errPaths(cstats); !slices.Equal(g, w) {
		t.Errorf("copy errors differ:\n restored %v\n copied   %v", g, w)
	}
	return tree, stats
}

// TestRestoreMatchesCopy: writing a container's files while its stream is
// read gives the same tree as fs.Copy over its index, clean and after 64
// KiB of garbage, on an archive made by GNU tar with vzdump's flags.
func TestRestoreMatchesCopy(t *testing.T) {
	dir, src := tree(t, testimg.ContainerOptions{Files: 300, Seed: 23})
	arc := testimg.ContainerArchive(t, src, dir, "", "2025_12_15-03_00_03")
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	_, stats := restoreBoth(t, b, &damage.Map{}, fs.CopyOptions{Owners: true})
	if stats.Files < 300 || len(stats.Errors) > 0 {
		t.Errorf("clean: %+v", stats)
	}
	dmg := fstest.Garbage(t, arc, int64(len(b))/2, 64<<10, 7)
	b, err = os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	restoreBoth(t, b, dmg, fs.CopyOptions{Owners: true})
}

// TestRestoreReplaces: members named again replace what was written
// before them as tar -x does, and as the index's tree says: a file by a
// directory, an empty directory by a file, a file by a file, a directory
// by a directory (whose entries stay), a file that a hard link names by
// another; a full directory is not replaced, and nothing is written under
// a symlink. The archive is GNU tar's, appended to (tar -r).
func TestRestoreReplaces(t *testing.T) {
	tarBin := testutil.RequireTool(t, "tar")
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(tarBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("tar %v: %v\n%s", args, err, out)
		}
	}
	write := func(p, s string) {
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(s), 0o644))
	}
	s1, s2 := filepath.Join(dir, "s1"), filepath.Join(dir, "s2")
	write(filepath.Join(s1, "x"), "x, a file first\n")
	must(t, os.MkdirAll(filepath.Join(s1, "y"), 0o755))
	write(filepath.Join(s1, "z"), "z first\n")
	write(filepath.Join(s1, "full", "in"), "in a full directory\n")
	write(filepath.Join(s1, "d", "keep"), "kept\n")
	write(filepath.Join(s1, "t"), "the first t\n")
	must(t, os.Link(filepath.Join(s1, "t"), filepath.Join(s1, "t2")))
	must(t, os.Symlink("/tmp", filepath.Join(s1, "sl")))
	for i := 0; i < 80; i++ { // more directories than the handles held
		write(filepath.Join(s1, "many", fmt.Sprintf("d%02d", i), "f"), fmt.Sprintf("file %d\n", i))
	}
	write(filepath.Join(s2, "x", "inside"), "x is a directory now\n")
	write(filepath.Join(s2, "y"), "y, an empty directory before\n")
	write(filepath.Join(s2, "z"), "z second\n")
	write(filepath.Join(s2, "full"), "not placed\n")
	must(t, os.MkdirAll(filepath.Join(s2, "d"), 0o750))
	write(filepath.Join(s2, "t"), "the second t\n")
	write(filepath.Join(s2, "sl", "through"), "not placed\n")
	for i := 0; i < 80; i += 7 {
		write(filepath.Join(s2, "many", fmt.Sprintf("d%02d", i), "g"), fmt.Sprintf("again %d\n", i))
	}
	arc := filepath.Join(dir, "r.tar")
	run("-cf", arc, "--format=posix", "-C", s1, ".")
	run("-rf", arc, "--format=posix", "-C", s2, "./x", "./y", "./z", "./full", "./d", "./t", "./sl/through", "./many")
	b, err := os.ReadFile(arc)
	must(t, err)
	tree, stats := restoreBoth(t, b, &damage.Map{}, fs.CopyOptions{})
	if stats.HardLinks != 1 {
		t.Errorf("%d hard links, want 1", stats.HardLinks)
	}
	if len(tree.Info().Problems) == 0 {
		t.Errorf("no placement problems noted")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkFragmentFiles checks that the fragments of x were written into the
// tree at dir (lost+found/@OFFSET, mode 0600) with the bytes of the stream
// b at their offsets, and then removes them with lost+found (which the
// trees compared here do not have) for the comparison with fs.Copy, which
// does not write them.
func checkFragmentFiles(t *testing.T, dir string, x *Index, b []byte) {
	t.Helper()
	if len(x.Fragments) == 0 {
		if _, err := os.Lstat(filepath.Join(dir, lostFound)); err == nil {
			t.Errorf("lost+found made without fragments")
		}
		return
	}
	for _, fr := range x.Fragments {
		p := filepath.Join(dir, filepath.FromSlash(fr.Path()))
		got, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("fragment %+v: %v", fr, err)
			continue
		}
		if st, _ := os.Lstat(p); st.Mode() != 0o600 {
			t.Errorf("fragment %s: mode %v", fr.Path(), st.Mode())
		}
		if fr.Off+fr.Size+fr.Trimmed > int64(len(b)) || !bytes.Equal(got, b[fr.Off:fr.Off+fr.Size]) ||
			trailingZeros(b[fr.Off+fr.Size:fr.Off+fr.Size+fr.Trimmed]) != int(fr.Trimmed) {
			t.Errorf("fragment %+v: not the stream's bytes", fr)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, lostFound))
	if len(ents) != len(x.Fragments) {
		t.Errorf("%d entries in lost+found, %d fragments", len(ents), len(x.Fragments))
	}
	t.Logf("%d fragments checked", len(x.Fragments))
	must(t, os.RemoveAll(filepath.Join(dir, lostFound)))
}

// TestFragmentsHostileLostFound: a guest that plants /lost+found as a
// symlink to a host directory gets nothing written there when content is
// found without its headers: the fragments are not written at all, and
// the writer says so once.
func TestFragmentsHostileLostFound(t *testing.T) {
	tarBin := testutil.RequireTool(t, "tar")
	dir := t.TempDir()
	src, outside := filepath.Join(dir, "src"), filepath.Join(dir, "outside")
	must(t, os.MkdirAll(src, 0o755))
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.Symlink(outside, filepath.Join(src, lostFound)))
	must(t, os.WriteFile(filepath.Join(src, "a.txt"), bytes.Repeat([]byte("some text of a file\n"), 100), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "d.txt"), bytes.Repeat([]byte("another file's text\n"), 200), 0o644))
	arc := filepath.Join(dir, "x.tar")
	testutil.Run(t, tarBin, "cf", arc, "--format=gnu", "-C", src, lostFound, "a.txt", "d.txt")
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	x, err := Scan(codec.Plain(bytes.NewReader(b)), Options{})
	if err != nil || len(x.Members) != 3 {
		t.Fatalf("%v %d members", err, len(x.Members))
	}
	// a.txt's header lost, d.txt's damaged; their contents decode right
	var dm damage.Map
	a, d := x.Members[1], x.Members[2]
	dm.Add(a.HeaderOff, a.HeaderEnd-a.HeaderOff, damage.Lost)
	dm.Add(a.HeaderEnd+a.Size, int64(len(b))-(a.HeaderEnd+a.Size), damage.Tainted)
	dm.Clear(d.HeaderEnd, d.Size)
	copy(b[d.HeaderOff:], bytes.Repeat([]byte{'X'}, 100))
	var spans []codec.Span
	for _, r := range dm.Ranges() {
		spans = append(spans, codec.Span{Off: r.Off, Len: r.Len, MaxLen: -1, State: r.State})
	}
	rs, err := NewRestorer(filepath.Join(dir, "out"), fs.CopyOptions{Owners: true})
	if err != nil {
		t.Fatal(err)
	}
	var sopt Options
	rs.Hook(&sopt)
	y, err := Scan(&spanReader{Reader: bytes.NewReader(b), spans: spans}, sopt)
	if err != nil {
		t.Fatal(err)
	}
	_, stats, err := rs.Finish(y)
	if err != nil {
		t.Fatal(err)
	}
	if len(y.Fragments) != 2 || len(rs.Fragments()) != 0 {
		t.Errorf("%d fragments found, %d written", len(y.Fragments), len(rs.Fragments()))
	}
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Errorf("written through the planted symlink: %v", ents)
	}
	var lf int
	for _, e := range stats.Errors {
		if e.Path == "/"+lostFound {
			lf++
		}
	}
	if lf != 1 {
		t.Errorf("errors %v: want one for /%s", stats.Errors, lostFound)
	}
	if st, err := os.Lstat(filepath.Join(dir, "out", lostFound)); err != nil || st.Mode()&iofs.ModeSymlink == 0 {
		t.Errorf("the guest's symlink: %v %v", st, err)
	}
}

// lateReader reports one more span once the stream has been read to its
// end.
type lateReader struct {
	spanReader
	late codec.Span
	done bool
}

func (l *lateReader) Read(p []byte) (int, error) {
	n, err := l.spanReader.Read(p)
	if err == io.EOF {
		l.done = true
	}
	return n, err
}

func (l *lateReader) Spans() []codec.Span {
	if l.done {
		return append(slices.Clone(l.spans), l.late)
	}
	return l.spans
}

// TestFragmentsLateDamage: a fragment that damage reported after its
// bytes were read touches is dropped from the index and from the tree
// written: the final account decides.
func TestFragmentsLateDamage(t *testing.T) {
	tarBin := testutil.RequireTool(t, "tar")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	must(t, os.MkdirAll(src, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "a.txt"), bytes.Repeat([]byte("some text of a file\n"), 100), 0o644))
	// (d.txt is larger than the scan's window: a.txt's bytes are read
	// and passed on before the stream's end)
	must(t, os.WriteFile(filepath.Join(src, "d.txt"), bytes.Repeat([]byte("another file's text\n"), 3<<16), 0o644))
	arc := filepath.Join(dir, "x.tar")
	testutil.Run(t, tarBin, "cf", arc, "--format=gnu", "-C", src, "./a.txt", "./d.txt")
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	x, err := Scan(codec.Plain(bytes.NewReader(b)), Options{})
	if err != nil || len(x.Members) != 2 {
		t.Fatalf("%v %d members", err, len(x.Members))
	}
	var dm damage.Map
	a, d := x.Members[0], x.Members[1]
	dm.Add(a.HeaderOff, a.HeaderEnd-a.HeaderOff, damage.Lost)
	dm.Add(a.HeaderEnd+a.Size, int64(len(b))-(a.HeaderEnd+a.Size), damage.Tainted)
	dm.Clear(d.HeaderEnd, d.Size)
	copy(b[d.HeaderOff+100:], bytes.Repeat([]byte{'X'}, 100))
	var spans []codec.Span
	for _, r := range dm.Ranges() {
		spans = append(spans, codec.Span{Off: r.Off, Len: r.Len, MaxLen: -1, State: r.State})
	}
	out := filepath.Join(dir, "out")
	rs, err := NewRestorer(out, fs.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sopt Options
	rs.Hook(&sopt)
	lr := &lateReader{spanReader: spanReader{Reader: bytes.NewReader(b), spans: spans},
		late: codec.Span{Off: a.HeaderEnd + 10, Len: 1, MaxLen: -1, State: damage.Tainted}}
	y, err := Scan(lr, sopt)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := rs.Finish(y); err != nil {
		t.Fatal(err)
	}
	want := []Fragment{{Off: d.HeaderEnd, Size: d.Size}}
	if !slices.Equal(y.Fragments, want) || !slices.Equal(rs.Fragments(), want) {
		t.Errorf("fragments %+v, written %+v, want %+v", y.Fragments, rs.Fragments(), want)
	}
	ents, _ := os.ReadDir(filepath.Join(out, lostFound))
	if len(ents) != 1 || ents[0].Name() != want[0].Name() {
		t.Errorf("lost+found holds %v", ents)
	}
}

package fs

import (
	"errors"
	iofs "io/fs"
	"slices"
	"strings"
	"testing"
)

type visit struct {
	path string
	err  error
}

func walkAll(t *testing.T, f FS, skip map[string]error) []visit {
	t.Helper()
	var got []visit
	err := Walk(f, f.Root(), func(p string, e *DirEntry, st *Stat, err error) error {
		if (e == nil) != (p == "/") || (err == nil && st == nil) {
			t.Errorf("%s: entry %v stat %v err %v", p, e, st, err)
		}
		got = append(got, visit{p, err})
		return skip[p]
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func paths(vs []visit) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.path)
	}
	return out
}

func TestWalk(t *testing.T) {
	m, n := testTree()
	got := walkAll(t, m, nil)
	want := []string{"/", "/etc", "/etc/passwd", "/etc/hosts", "/usr", "/usr/lib", "/usr/lib/libc", "/usr/bin",
		"/bin", "/abs", "/loop1", "/loop2", "/self", "/dotdot", "/deep", "/dangling", "/a%2Fb", "/lost+found",
		"/lost+found/#" + itoa(n["orphan file"]), "/lost+found/#" + itoa(n["orphan dir"]),
		"/lost+found/#" + itoa(n["orphan dir"]) + "/child"}
	if !slices.Equal(paths(got), want) {
		t.Errorf("walk:\n got %v\nwant %v", paths(got), want)
	}
	for _, v := range got {
		if (v.path == "/a%2Fb") != errors.Is(v.err, ErrBadName) {
			t.Errorf("%s: %v", v.path, v.err)
		}
	}
}

func TestWalkDamage(t *testing.T) {
	m := newMem()
	a := m.dir(2, "a")
	m.file(a, "one", "1")
	m.link(a, "up", 2)    // a cycle back to the root
	m.link(a, "again", a) // and to itself
	b := m.dir(2, "b")
	m.file(b, "readable", "r")
	m.nodes[b].dirErr = errors.New("block 7 unreadable")
	bad := m.file(2, "badstat", "")
	m.nodes[bad].statErr = errors.New("inode checksum")
	m.file(2, "after", "siblings go on")
	got := walkAll(t, m, nil)
	want := []visit{{"/", nil}, {"/a", nil}, {"/a/one", nil}, {"/a/up", ErrCycle}, {"/a/again", ErrCycle},
		{"/b", nil}, {"/b", m.nodes[b].dirErr}, {"/b/readable", nil}, {"/badstat", m.nodes[bad].statErr}, {"/after", nil}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].path != want[i].path || !errors.Is(got[i].err, want[i].err) {
			t.Errorf("visit %d: %v, want %v", i, got[i], want[i])
		}
	}

	// SkipDir on a directory skips its content; on a file, the rest of
	// its directory. SkipAll ends the walk quietly.
	got = walkAll(t, m, map[string]error{"/a": iofs.SkipDir, "/b/readable": iofs.SkipDir, "/badstat": iofs.SkipAll})
	if s := strings.Join(paths(got), " "); s != "/ /a /b /b /b/readable /badstat" {
		t.Errorf("skips: %s", s)
	}
	stop := errors.New("stop")
	if err := Walk(m, 2, func(p string, _ *DirEntry, _ *Stat, _ error) error {
		if p == "/b" {
			return stop
		}
		return nil
	}); err != stop {
		t.Errorf("Walk returned %v", err)
	}
}

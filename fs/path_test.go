package fs

import (
	"errors"
	iofs "io/fs"
	"testing"
)

// testTree builds a tree with symlinks of every kind, a bad name and
// orphans.
func testTree() (m *memFS, n map[string]Node) {
	m = newMem()
	n = map[string]Node{"/": m.Root()}
	n["/etc"] = m.dir(2, "etc")
	n["/etc/passwd"] = m.file(n["/etc"], "passwd", "root:x:0:0::/root:/bin/sh\n")
	n["/etc/hosts"] = m.file(n["/etc"], "hosts", "127.0.0.1 localhost\n")
	n["/usr"] = m.dir(2, "usr")
	n["/usr/lib"] = m.dir(n["/usr"], "lib")
	n["/usr/lib/libc"] = m.file(n["/usr/lib"], "libc", "\x7fELF")
	n["/usr/bin"] = m.symlink(n["/usr"], "bin", "lib")
	n["/bin"] = m.symlink(2, "bin", "usr/bin")
	n["/abs"] = m.symlink(2, "abs", "/etc")
	n["/loop1"] = m.symlink(2, "loop1", "loop2")
	n["/loop2"] = m.symlink(2, "loop2", "/loop1")
	n["/self"] = m.symlink(2, "self", "self")
	n["/dotdot"] = m.symlink(2, "dotdot", "..")
	n["/deep"] = m.symlink(2, "deep", "etc/../usr/./lib")
	n["/dangling"] = m.symlink(2, "dangling", "nowhere")
	n["/a/b"] = m.file(2, "a/b", "bad name")
	n["orphan file"] = m.add(0, "", &memNode{st: Stat{Mode: 0o600, Size: 3}, data: []byte("abc")})
	n["orphan dir"] = m.add(0, "", &memNode{st: Stat{Mode: iofs.ModeDir | 0o700, Nlink: 2}})
	n["orphan child"] = m.file(n["orphan dir"], "child", "in an orphan")
	m.orphans = []Node{n["orphan file"], n["orphan dir"]}
	return m, n
}

func TestLookup(t *testing.T) {
	m, n := testTree()
	of, od := "/lost+found/#"+itoa(n["orphan file"]), "/lost+found/#"+itoa(n["orphan dir"])
	tests := []struct {
		path   string
		follow bool
		want   string // key in n
		err    error
	}{
		{path: "/", want: "/"},
		{path: "", want: "/"},
		{path: "etc/passwd", want: "/etc/passwd"},
		{path: "/etc/./passwd", want: "/etc/passwd"},
		{path: "/../../etc/passwd", want: "/etc/passwd"},
		{path: "/bin", want: "/bin"},
		{path: "/bin", follow: true, want: "/usr/lib"},
		{path: "/bin/libc", want: "/usr/lib/libc"},
		{path: "/usr/bin/../lib/libc", want: "/usr/lib/libc"},
		{path: "/abs/passwd", want: "/etc/passwd"},
		{path: "/dotdot/etc/passwd", want: "/etc/passwd"},
		{path: "/deep/libc", want: "/usr/lib/libc"},
		{path: "/self", want: "/self"},
		{path: "/self", follow: true, err: ErrLoop},
		{path: "/loop1/x", err: ErrLoop},
		{path: "/dangling", want: "/dangling"},
		{path: "/dangling/x", err: iofs.ErrNotExist},
		{path: "/dangling", follow: true, err: iofs.ErrNotExist},
		{path: "/etc/passwd/x", err: ErrNotDir},
		{path: "/nothing", err: iofs.ErrNotExist},
		{path: "/a%2Fb", want: "/a/b"},
		{path: "/etc\x00/passwd", err: iofs.ErrInvalid},
		{path: of, want: "orphan file"},
		{path: od + "/child", want: "orphan child"},
		{path: "/lost+found/#999", err: iofs.ErrNotExist},
	}
	for _, tt := range tests {
		lookup := Lookup
		if tt.follow {
			lookup = LookupFollow
		}
		got, err := lookup(m, tt.path)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%q follow=%v: %v, want %v", tt.path, tt.follow, err, tt.err)
			}
			continue
		}
		if err != nil || got != n[tt.want] {
			t.Errorf("%q follow=%v: node %d, %v; want %d (%s)", tt.path, tt.follow, got, err, n[tt.want], tt.want)
		}
	}
}

// TestLostFound: a real lost+found holds the orphans, and its own entries
// win over them.
func TestLostFound(t *testing.T) {
	m, n := testTree()
	lf := m.dir(2, "lost+found")
	name := "#" + itoa(n["orphan file"])
	real := m.file(lf, name, "e2fsck put me here")
	if got, err := Lookup(m, "/lost+found/"+name); err != nil || got != real {
		t.Errorf("real entry: %d, %v; want %d", got, err, real)
	}
	if got, err := Lookup(m, "/lost+found/#"+itoa(n["orphan dir"])+"/child"); err != nil || got != n["orphan child"] {
		t.Errorf("orphan in real lost+found: %d, %v", got, err)
	}
	ents, _ := WithOrphans(m).ReadDir(2)
	count := 0
	for _, e := range ents {
		if e.Name == "lost+found" {
			count++
		}
	}
	if count != 1 {
		t.Errorf("root lists lost+found %d times", count)
	}
}

func itoa(n Node) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}

// FuzzLookup resolves arbitrary paths in a tree full of symlink traps: no
// panic, and what resolves exists.
func FuzzLookup(f *testing.F) {
	for _, p := range []string{"/", "/bin/libc", "/loop1", "/abs/../dotdot/deep/../lib", "/lost+found/#17/child", "a%2Fb", "/self/self"} {
		f.Add(p)
	}
	m, _ := testTree()
	f.Fuzz(func(t *testing.T, p string) {
		for _, follow := range []bool{false, true} {
			var n Node
			var err error
			if follow {
				n, err = LookupFollow(m, p)
			} else {
				n, err = Lookup(m, p)
			}
			if err != nil {
				continue
			}
			if _, err := WithOrphans(m).Stat(n); err != nil {
				t.Fatalf("%q resolved to %d, which does not stat: %v", p, n, err)
			}
		}
	})
}

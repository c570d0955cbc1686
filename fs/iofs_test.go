package fs

import (
	"errors"
	iofs "io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestIOFS(t *testing.T) {
	m, n := testTree()
	// A duplicate name (damage): hidden behind the first.
	m.file(n["/etc"], "passwd", "second passwd")
	fsys := IOFS(m)
	// fstest opens every symlink: hide the ones that cannot open.
	clean := &memFS{nodes: map[Node]*memNode{}, orphans: m.orphans}
	for k, v := range m.nodes {
		c := *v
		if k == 2 {
			c.ents = slices.DeleteFunc(slices.Clone(c.ents), func(e DirEntry) bool {
				return e.Name == "self" || e.Name == "dangling" || strings.HasPrefix(e.Name, "loop")
			})
		}
		clean.nodes[k] = &c
	}
	if err := fstest.TestFS(IOFS(clean), "etc/passwd", "usr/lib/libc", "a%2Fb", "bin", "abs",
		"lost+found/#"+itoa(n["orphan dir"])+"/child"); err != nil {
		t.Fatal(err)
	}
	b, err := iofs.ReadFile(fsys, "bin/libc")
	if err != nil || string(b) != "\x7fELF" {
		t.Errorf("through symlinks: %q %v", b, err)
	}
	if b, err := iofs.ReadFile(fsys, "etc/passwd"); err != nil || string(b) != "root:x:0:0::/root:/bin/sh\n" {
		t.Errorf("duplicate name: %q %v", b, err)
	}
	rl := fsys.(iofs.ReadLinkFS)
	if tg, err := rl.ReadLink("abs"); err != nil || tg != "/etc" {
		t.Errorf("ReadLink: %q %v", tg, err)
	}
	if fi, err := rl.Lstat("abs"); err != nil || fi.Mode()&iofs.ModeSymlink == 0 {
		t.Errorf("Lstat: %v %v", fi, err)
	}
	if fi, err := iofs.Stat(fsys, "abs"); err != nil || !fi.IsDir() || fi.Sys().(*Stat).Node != n["/etc"] {
		t.Errorf("Stat: %v %v", fi, err)
	}
	for _, bad := range []string{"/etc", "etc/../etc", "", "loop1"} {
		if _, err := fsys.Open(bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if _, err := fsys.Open("self"); !errors.Is(err, ErrLoop) {
		t.Errorf("Open(self): %v", err)
	}
}

//go:build linux

package fs

import (
	"bytes"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// hostile builds a guest tree that tries to write outside the copy.
func hostile(outside string) (*memFS, map[string]Node) {
	m := newMem()
	n := map[string]Node{}
	dd := m.dir(2, "..")
	m.file(dd, "x", "in a dir named ..")
	m.file(2, "../../escape", "escape attempt")
	m.file(2, "/etc/passwd", "absolute name")
	m.file(2, ".", "dot")
	m.file(2, "", "empty name")
	m.file(2, "nul\x00name", "nul")
	// A symlink out of the copy, then a directory of the same name (a
	// damaged directory can hold both) with a file under it, then a name
	// through it.
	m.symlink(2, "evil", outside)
	evil := m.dir(2, "evil")
	m.file(evil, "passwd", "must not land outside")
	m.file(2, "evil/passwd2", "nor this")
	m.symlink(2, "rel", "../outside")
	n["loop"] = m.dir(2, "loop")
	m.link(n["loop"], "back", 2)
	return m, n
}

func TestCopyHostile(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	m, _ := hostile(outside)
	dest := filepath.Join(base, "out")
	stats, err := Copy(m, 2, "/", dest, CopyOptions{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("wrote outside the destination: %v", ents)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Fatalf("wrote beside the destination: %v", ents)
	}
	for name, want := range map[string]string{
		"%2E%2E/x":         "in a dir named ..",
		"..%2F..%2Fescape": "escape attempt",
		"%2Fetc%2Fpasswd":  "absolute name",
		"%2E":              "dot",
		"%":                "empty name",
		"nul%00name":       "nul",
		"evil%2Fpasswd2":   "nor this",
	} {
		b, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	if tg, err := os.Readlink(filepath.Join(dest, "evil")); err != nil || tg != outside {
		t.Errorf("symlink evil: %q %v", tg, err)
	}
	if len(stats.Renamed) != 7 {
		t.Errorf("renamed: %v", stats.Renamed)
	}
	var exist, cycle bool
	for _, e := range stats.Errors {
		exist = exist || (e.Path == "/evil" && errors.Is(e.Err, ErrExist))
		cycle = cycle || (e.Path == "/loop/back" && errors.Is(e.Err, ErrCycle))
	}
	if !exist || !cycle {
		t.Errorf("errors: %v", stats.Errors)
	}
	t.Logf("stats: %+v", *stats)
}

// TestCopyMetadata: modes, times, hard links, holes, setuid, specials,
// damaged reads.
func TestCopyMetadata(t *testing.T) {
	m := newMem()
	d := m.dir(2, "d")
	m.nodes[d].st.Mode = iofs.ModeDir | 0o555 // read-only, set after its content
	f := m.file(d, "f", "content")
	m.nodes[f].st.Mode = 0o640
	m.nodes[f].st.Xattrs = map[string][]byte{"user.test": []byte("v"), "trusted.x": []byte("root only")}
	suid := m.file(2, "suid", "#!/bin/sh\n")
	m.nodes[suid].st.Mode = iofs.ModeSetuid | iofs.ModeSetgid | 0o755
	h := m.file(2, "h1", "linked")
	m.nodes[h].st.Nlink = 2
	m.link(d, "h2", h)
	m.symlink(2, "sl", "d/f")
	sparse := m.add(2, "sparse", &memNode{st: Stat{Mode: 0o600, Size: 8 << 30}})
	data := bytes.Repeat([]byte("x"), 8192)
	m.nodes[sparse].data = append(append(data, make([]byte, 1<<20)...), data...)
	m.nodes[sparse].layout = &Layout{Data: []Extent{{Logical: 0, Physical: 4096, Length: 8192}, {Logical: 8192 + 1<<20, Physical: 1 << 30, Length: 8192}}}
	fifo := m.add(2, "fifo", &memNode{st: Stat{Mode: iofs.ModeNamedPipe | 0o644}})
	m.add(2, "tty", &memNode{st: Stat{Mode: iofs.ModeDevice | iofs.ModeCharDevice | 0o620, Rdev: 0x0400}})
	dmg := m.file(2, "damaged", "part")
	m.nodes[dmg].readErr = ErrDamaged

	dest := filepath.Join(t.TempDir(), "out")
	stats, err := Copy(m, 2, "/", dest, CopyOptions{Recursive: true, Xattrs: XattrsSafe})
	if err != nil {
		t.Fatal(err)
	}
	lstat := func(name string) *syscall.Stat_t {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dest, name), &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	check := func(name string, n Node, perm uint32) {
		t.Helper()
		st := lstat(name)
		want := m.nodes[n].st
		if perm != 0 && st.Mode&0o7777 != perm {
			t.Errorf("%s: mode %o, want %o", name, st.Mode&0o7777, perm)
		}
		if st.Mtim.Sec != want.Mtime.Unix() || st.Mtim.Nsec != int64(want.Mtime.Nanosecond()) {
			t.Errorf("%s: mtime %v, want %v", name, st.Mtim, want.Mtime)
		}
	}
	check("d", d, 0o555)
	check("d/f", f, 0o640)
	check("suid", suid, 0o755) // setuid and setgid dropped
	check("sl", m.nodes[2].ents[3].Node, 0)
	check("sparse", sparse, 0o600)
	if a, b := lstat("h1"), lstat("d/h2"); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link not kept: %d %d nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	if st := lstat("sparse"); st.Size != 8<<30 || st.Blocks*512 > 1<<20 {
		t.Errorf("sparse: size %d, %d bytes allocated", st.Size, st.Blocks*512)
	}
	fd, _ := os.Open(filepath.Join(dest, "sparse"))
	got := make([]byte, len(m.nodes[sparse].data))
	fd.ReadAt(got, 0)
	fd.Close()
	if !bytes.Equal(got, m.nodes[sparse].data) {
		t.Errorf("sparse content differs")
	}
	if v := make([]byte, 8); true {
		n, err := unix.Lgetxattr(filepath.Join(dest, "d/f"), "user.test", v)
		if err == nil && string(v[:n]) != "v" {
			t.Errorf("xattr: %q", v[:n])
		} else if err != nil {
			t.Logf("user xattrs not supported here: %v", err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dest, "fifo")); err == nil {
		t.Errorf("fifo recreated without Specials")
	}
	if len(stats.Skipped) != 2 {
		t.Errorf("skipped: %v", stats.Skipped)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "damaged")); err != nil || string(b) != "part" {
		t.Errorf("damaged file: %q %v", b, err)
	}
	var dmgErr bool
	for _, e := range stats.Errors {
		dmgErr = dmgErr || e.Path == "/damaged" && errors.Is(e.Err, ErrDamaged)
	}
	if !dmgErr || stats.HardLinks != 1 || stats.Files != 5 {
		t.Errorf("stats: %+v", *stats)
	}

	// With Specials, SetID and Owners.
	var st syscall.Stat_t
	m.nodes[f].st.UID, m.nodes[f].st.GID = 1234, 5678
	dest2 := filepath.Join(t.TempDir(), "out")
	if _, err := Copy(m, 2, "/", dest2, CopyOptions{Recursive: true, Specials: true, SetID: true, Owners: true}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Lstat(filepath.Join(dest2, "d/f"), &st); err != nil {
		t.Fatal(err)
	}
	if wantUID := uint32(os.Geteuid()); os.Geteuid() == 0 {
		wantUID = 1234
		if st.Uid != wantUID || st.Gid != 5678 {
			t.Errorf("owner %d:%d, want 1234:5678", st.Uid, st.Gid)
		}
	} else if st.Uid != wantUID {
		t.Errorf("owner %d as non-root", st.Uid)
	}
	if err := syscall.Lstat(filepath.Join(dest2, "fifo"), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		t.Errorf("fifo: %v", err)
	}
	if err := syscall.Lstat(filepath.Join(dest2, "suid"), &st); err != nil || st.Mode&0o7777 != 0o6755 {
		t.Errorf("suid: mode %o", st.Mode&0o7777)
	}
	_ = fifo
}

func TestCopyBudget(t *testing.T) {
	m := newMem()
	m.file(2, "small", "ok")
	huge := m.add(2, "huge", &memNode{st: Stat{Mode: 0o644, Size: 1 << 60}, data: []byte("claims 2^60 bytes")})
	m.nodes[huge].layout = &Layout{Data: []Extent{{Logical: 0, Physical: 0, Length: 1 << 60}}}
	dest := filepath.Join(t.TempDir(), "out")
	var calls int
	stats, err := Copy(m, 2, "/", dest, CopyOptions{Recursive: true, Budget: &Budget{MaxRead: 8 << 20}, Progress: func(b, f int64) { calls++ }})
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("err %v", err)
	}
	if stats.Bytes > 8<<20 || calls == 0 {
		t.Errorf("wrote %d bytes, %d progress calls", stats.Bytes, calls)
	}
	ents, _ := os.ReadDir(dest)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".vzsalvage-") || e.Name() == "huge" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestCopySingle(t *testing.T) {
	m, n := testTree()
	dir := t.TempDir()
	// Into an existing directory, under the base name.
	if _, err := Copy(m, n["/etc/passwd"], "/etc/passwd", dir, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Errorf("%q %v", b, err)
	}
	// Never over an existing file.
	if _, err := Copy(m, n["/etc/hosts"], "/etc/hosts", filepath.Join(dir, "passwd"), CopyOptions{}); !errors.Is(err, ErrExist) {
		t.Errorf("overwrite: %v", err)
	}
	// A directory needs Recursive.
	if _, err := Copy(m, n["/etc"], "/etc", filepath.Join(dir, "etc"), CopyOptions{}); err == nil {
		t.Errorf("directory copied without Recursive")
	}
	// A symlink is copied as a symlink.
	if _, err := Copy(m, n["/abs"], "/abs", filepath.Join(dir, "abs"), CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if tg, err := os.Readlink(filepath.Join(dir, "abs")); err != nil || tg != "/etc" {
		t.Errorf("symlink: %q %v", tg, err)
	}
	// Orphans come along with the root.
	stats, err := Copy(m, 2, "/", filepath.Join(dir, "all"), CopyOptions{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "all/lost+found/#"+itoa(n["orphan dir"])+"/child")); err != nil || string(b) != "in an orphan" {
		t.Errorf("orphan: %q %v (%+v)", b, err, stats.Errors)
	}
}

// TestCopyReplace: with Replace an existing destination is replaced, never
// written through; existing directories are entered, never through a
// symlink; without it nothing is replaced.
func TestCopyReplace(t *testing.T) {
	m := newMem()
	d := m.dir(m.Root(), "d")
	m.file(d, "f", "new content")
	m.file(d, "viasym", "must not reach outside")
	m.dir(d, "sub")
	m.symlink(d, "l", "new-target")
	root, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("outside"), 0o644)
	dest := filepath.Join(root, "d")
	os.MkdirAll(dest, 0o755)
	os.WriteFile(filepath.Join(dest, "f"), []byte("old"), 0o644)
	os.Symlink(victim, filepath.Join(dest, "viasym")) // a file's name is a symlink out
	os.Symlink(outside, filepath.Join(dest, "sub"))   // a directory's name is a symlink out
	os.Symlink("old-target", filepath.Join(dest, "l"))
	os.WriteFile(filepath.Join(dest, "keep"), []byte("mine"), 0o644)

	// without Replace: nothing replaced, each conflict reported
	st, err := Copy(m, d, "/d", root, CopyOptions{Recursive: true})
	if err != nil || len(st.Errors) == 0 {
		t.Fatalf("without Replace: %v, %d errors", err, len(st.Errors))
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "f")); string(b) != "old" {
		t.Errorf("f replaced without Replace: %q", b)
	}

	if _, err := Copy(m, d, "/d", root, CopyOptions{Recursive: true, Replace: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "f")); string(b) != "new content" {
		t.Errorf("f: %q", b)
	}
	if b, _ := os.ReadFile(victim); string(b) != "outside" {
		t.Errorf("written through a symlink: the outside file holds %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dest, "viasym")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("viasym: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("a directory was entered through a symlink: %d entries outside", len(ents))
	}
	if l, _ := os.Readlink(filepath.Join(dest, "l")); l != "new-target" {
		t.Errorf("l -> %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "keep")); string(b) != "mine" {
		t.Errorf("an unrelated file changed: %q", b)
	}
	if ents, _ := os.ReadDir(dest); len(ents) != 5 {
		t.Errorf("%d entries in dest, temporary names left?", len(ents))
	}

	// a single file onto an existing file
	one := filepath.Join(root, "one")
	os.WriteFile(one, []byte("old"), 0o644)
	f, _ := Lookup(m, "/d/f")
	if _, err := Copy(m, f, "/d/f", one, CopyOptions{}); !errors.Is(err, ErrExist) {
		t.Errorf("onto a file without Replace: %v", err)
	}
	if _, err := Copy(m, f, "/d/f", one, CopyOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(one); string(b) != "new content" {
		t.Errorf("one: %q", b)
	}
}

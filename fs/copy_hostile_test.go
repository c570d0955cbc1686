//go:build linux

package fs

import (
	"encoding/binary"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// capSetuid is a security.capability value as setcap writes it for
// cap_setuid+ep (VFS_CAP_REVISION_2, effective, permitted bit 7).
func capSetuid() []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<7)
	return b
}

// aclUser1000 is a system.posix_acl_access value: u::rw-,u:1000:r--,g::r--,m::r--,o::r--.
func aclUser1000() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{1, 6, 0xffffffff}, {2, 4, 1000}, {4, 4, 0xffffffff}, {0x10, 4, 0xffffffff}, {0x20, 4, 0xffffffff}} {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// xattrNames lists a host file's extended attributes.
func xattrNames(t *testing.T, p string) []string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var out []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// TestCopyXattrPolicy: a guest file with a file capability (the audit's
// cap_setuid+ep interpreter), trusted.* and security.selinux keeps only
// user.* and its ACL by default; XattrsAll restores the rest, and the
// capability only where owners are kept.
func TestCopyXattrPolicy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can set security.* and trusted.* attributes")
	}
	m := newMem()
	f := m.file(2, "python3", "#!interpreter")
	m.nodes[f].st.Mode = 0o755
	m.nodes[f].st.Xattrs = map[string][]byte{
		"security.capability":     capSetuid(),
		"trusted.overlay.opaque":  []byte("y"),
		"security.selinux":        []byte("system_u:object_r:bin_t:s0\x00"),
		"user.comment":            []byte("kept"),
		"system.posix_acl_access": aclUser1000(),
	}
	d := m.dir(2, "d")
	m.nodes[d].st.Xattrs = map[string][]byte{"trusted.x": []byte("1"), "user.y": []byte("2")}

	tests := []struct {
		name    string
		opt     CopyOptions
		want    string // sorted names on the file
		skipped int64
	}{
		{"default", CopyOptions{Recursive: true, Owners: true, Xattrs: XattrsSafe}, "system.posix_acl_access user.comment", 4},
		{"no-owners", CopyOptions{Recursive: true, Xattrs: XattrsSafe}, "system.posix_acl_access user.comment", 4},
		{"none", CopyOptions{Recursive: true, Owners: true, Xattrs: XattrsNone}, "", 7},
		{"all, owners kept", CopyOptions{Recursive: true, Owners: true, Xattrs: XattrsAll},
			"security.capability security.selinux system.posix_acl_access trusted.overlay.opaque user.comment", 0},
		{"all, no owners", CopyOptions{Recursive: true, Xattrs: XattrsAll},
			"security.selinux system.posix_acl_access trusted.overlay.opaque user.comment", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "out")
			stats, err := Copy(m, 2, "/", dest, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(slices.Sorted(slices.Values(xattrNames(t, filepath.Join(dest, "python3")))), " ")
			if got != tc.want {
				t.Errorf("xattrs on the file: %q, want %q (errors %v)", got, tc.want, stats.Errors)
			}
			dirNames := strings.Join(slices.Sorted(slices.Values(xattrNames(t, filepath.Join(dest, "d")))), " ")
			if strings.Contains(dirNames, "trusted.") != (tc.opt.Xattrs == XattrsAll) {
				t.Errorf("xattrs on the directory: %q", dirNames)
			}
			if stats.XattrsSkipped != tc.skipped {
				t.Errorf("XattrsSkipped %d, want %d", stats.XattrsSkipped, tc.skipped)
			}
		})
	}
}

// TestCopyAliased: one inode with link count 1 under 120 names (the
// audit's 158 KB archive that made 2.6 GB) is copied once and hard-linked
// under the other names; a budget then bounds what is left.
func TestCopyAliased(t *testing.T) {
	m := newMem()
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	f := m.file(2, "name0", big)
	for i := 1; i < 120; i++ {
		m.link(2, "name"+itoa(Node(i)), f)
	}
	dest := filepath.Join(t.TempDir(), "out")
	b := &Budget{MaxRead: 2 << 20, MaxWrite: 2 << 20}
	stats, err := Copy(m, 2, "/", dest, CopyOptions{Recursive: true, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != 1 || stats.HardLinks != 119 || len(stats.Aliased) != 119 || stats.Bytes != int64(len(big)) {
		t.Fatalf("files %d, hard links %d, aliased %d, %d bytes", stats.Files, stats.HardLinks, len(stats.Aliased), stats.Bytes)
	}
	if b.Written != int64(len(big)) || b.Read != int64(len(big)) {
		t.Errorf("budget: read %d, written %d", b.Read, b.Written)
	}
	var a, z syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dest, "name0"), &a); err != nil || a.Nlink != 120 {
		t.Fatalf("nlink %d %v", a.Nlink, err)
	}
	if err := syscall.Stat(filepath.Join(dest, "name119"), &z); err != nil || z.Ino != a.Ino {
		t.Fatalf("name119 is not a link of name0: %v", err)
	}

	// Many inodes over the same blocks (no two names share an inode) are
	// copied each: the shared budget stops them, with a clear error.
	m2 := newMem()
	for i := 0; i < 40; i++ {
		m2.file(2, "copy"+itoa(Node(i)), big)
	}
	b2 := &Budget{MaxWrite: 8 << 20}
	dest2 := filepath.Join(t.TempDir(), "out")
	stats, err = Copy(m2, 2, "/", dest2, CopyOptions{Recursive: true, Budget: b2})
	if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), "written, the cap is 8388608") {
		t.Fatalf("err %v", err)
	}
	if b2.Written > 8<<20 || stats.Files != 8 || b2.Stopped != "write" {
		t.Errorf("wrote %d bytes in %d files", b2.Written, stats.Files)
	}
	// A second copy sharing the spent budget stops at once.
	stats, err = Copy(m, 2, "/", filepath.Join(t.TempDir(), "out"), CopyOptions{Recursive: true, Budget: b2})
	if !errors.Is(err, ErrBudget) || stats.Files != 0 {
		t.Errorf("after the budget is spent: %v, %d files", err, stats.Files)
	}
}

// watchFS calls hook before each file is opened.
type watchFS struct {
	*memFS
	hook func(n Node)
}

func (w watchFS) Open(n Node) (File, error) {
	w.hook(n)
	return w.memFS.Open(n)
}

// TestCopyDirsHandedOverLast: a directory given to a guest uid (one that
// may be a host user's) and a mode that lets others in gets them only once
// the whole copy is written: while later files are copied and hard links
// are made through it, it is still the copier's, mode 0700. Otherwise a
// host user with that uid could swap it for a symlink and have a later
// hard link (made by a path through it) point anywhere.
func TestCopyDirsHandedOverLast(t *testing.T) {
	m := newMem()
	a := m.dir(2, "a")
	m.nodes[a].st.Mode = iofs.ModeDir | 0o777
	m.nodes[a].st.UID, m.nodes[a].st.GID = 4242, 4242
	sub := m.dir(a, "sub")
	m.nodes[sub].st.UID = 4242
	h := m.file(sub, "h", "linked from b")
	m.nodes[h].st.Nlink = 2
	b := m.dir(2, "b")
	late := m.file(b, "late", "copied after a is complete")
	m.link(b, "h2", h)

	dest := filepath.Join(t.TempDir(), "out")
	checked := false
	w := watchFS{m, func(n Node) {
		if n != late {
			return
		}
		checked = true
		for _, p := range []string{"a", "a/sub"} {
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(dest, p), &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode&0o7777 != 0o700 || st.Uid != uint32(os.Geteuid()) {
				t.Errorf("%s handed over before the copy ended: mode %o uid %d", p, st.Mode&0o7777, st.Uid)
			}
		}
	}}
	stats, err := Copy(w, 2, "/", dest, CopyOptions{Recursive: true, Owners: true})
	if err != nil || len(stats.Errors) > 0 {
		t.Fatal(err, stats.Errors)
	}
	if !checked {
		t.Fatal("hook not called")
	}
	var st, l1, l2 syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dest, "a"), &st); err != nil || st.Mode&0o7777 != 0o777 {
		t.Errorf("a: mode %o %v", st.Mode&0o7777, err)
	}
	if os.Geteuid() == 0 && st.Uid != 4242 {
		t.Errorf("a: uid %d", st.Uid)
	}
	if st.Mtim.Sec != m.nodes[a].st.Mtime.Unix() {
		t.Errorf("a: mtime %d, want %d", st.Mtim.Sec, m.nodes[a].st.Mtime.Unix())
	}
	syscall.Lstat(filepath.Join(dest, "a/sub/h"), &l1)
	syscall.Lstat(filepath.Join(dest, "b/h2"), &l2)
	if l1.Ino != l2.Ino || stats.HardLinks != 1 {
		t.Errorf("hard link not made: %d %d", l1.Ino, l2.Ino)
	}
}

// TestOpenBeneath: no element of the path may be a symlink.
func TestOpenBeneath(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a/b"), 0o700)
	os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "s"))
	top, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(top)
	for rel, ok := range map[string]bool{"": true, "a": true, "a/b": true, "s": false, "s/b": false, "a/../s": false} {
		fd, err := openBeneath(top, rel)
		if (err == nil) != ok {
			t.Errorf("%q: %v", rel, err)
		}
		if err == nil && fd != top {
			unix.Close(fd)
		}
	}
}

// The tests build images with xfsprogs (and, where the kernel lets them, a
// loop mount) and use Linux syscalls (xattrs, fifos, device nodes).

//go:build linux

package xfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// treeOpt shapes a source tree.
type treeOpt struct {
	small   int  // files in /small (a leaf-form directory at 200)
	many    int  // entries in /many (node form from about 600)
	big     int  // size of /big.bin
	frag    int  // extents of /frag.bin (4 KiB of data, then a 4 KiB hole, n times)
	special bool // fifo, devices, setuid, owners, trusted/security xattrs, ACLs (as root)
	xattrs  bool // user xattrs of every form (short, leaf, node, remote values)
	proto   bool // only what a protofile can say: no hard links, sticky bits or xattrs
}

// buildTree writes a deterministic source tree under root, with fixed
// times (nanoseconds included).
func buildTree(t testing.TB, root string, o treeOpt) {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			fmt.Fprintf(&b, "line %d of some text %d\n", b.Len(), rng.IntN(1000))
		}
		return b.Bytes()[:n]
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, data []byte, mode os.FileMode) {
		t.Helper()
		full := filepath.Join(root, p)
		must(os.MkdirAll(filepath.Dir(full), 0o755))
		must(os.WriteFile(full, data, mode))
		must(os.Chmod(full, mode))
	}
	write("README", []byte("vzsalvage xfs test tree\n"), 0o644)
	write("empty", nil, 0o644)
	must(os.MkdirAll(filepath.Join(root, "emptydir"), 0o755))
	for i := range o.small {
		write(fmt.Sprintf("small/f%03d", i), text(rng.IntN(6000)), 0o644)
	}
	for _, n := range []int{1, 100, 511, 512, 513, 4095, 4096, 4097, 65537} {
		write(fmt.Sprintf("sizes/s%d", n), rnd(n), 0o644)
	}
	if o.big > 0 {
		write("big.bin", append(rnd(o.big/8), text(o.big-o.big/8)...), 0o600)
	}
	if o.frag > 0 {
		fh, err := os.Create(filepath.Join(root, "frag.bin"))
		must(err)
		for i := range o.frag {
			_, err := fh.WriteAt(text(4096), int64(i)*8192)
			must(err)
		}
		must(fh.Close())
	}
	d := "deep"
	for i := range 40 {
		d = filepath.Join(d, fmt.Sprintf("level%02d", i))
	}
	write(filepath.Join(d, "bottom.txt"), []byte("the bottom\n"), 0o640)
	for i := range 30 {
		write(fmt.Sprintf("block/entry-with-a-long-name-%03d", i), []byte{byte(i)}, 0o644)
	}
	for i := range o.many {
		name := fmt.Sprintf("entry-%035d", i)
		write("many/"+name, []byte(name), 0o644)
	}
	must(os.MkdirAll(filepath.Join(root, "links"), 0o755))
	must(os.Symlink("../small/f001", filepath.Join(root, "links/inline")))
	if !o.proto {
		// mkfs.xfs -p of xfsprogs 6.1 writes v5 remote symlinks without
		// their block header (xfs_repair clears them): TestProtoSymlinkBug.
		must(os.Symlink(strings.Repeat("long/", 80)+"target", filepath.Join(root, "links/remote")))
		must(os.Symlink(strings.Repeat("x", 1000), filepath.Join(root, "links/longest")))
	}
	write("modes/ro", []byte("ro"), 0o444)
	write("modes/exec", []byte("#!/bin/sh\n"), 0o755)
	if !o.proto {
		write("hl/a", rnd(5000), 0o644)
		must(os.Link(filepath.Join(root, "hl/a"), filepath.Join(root, "hl/b")))
		must(os.MkdirAll(filepath.Join(root, "modes/sticky"), 0o755))
		must(os.Chmod(filepath.Join(root, "modes/sticky"), 0o1777))
	}
	if o.xattrs {
		x := func(p, name string, v []byte) {
			t.Helper()
			must(syscall.Setxattr(filepath.Join(root, p), name, v, 0))
		}
		write("xattr/short", []byte("short-form attributes\n"), 0o644)
		x("xattr/short", "user.comment", []byte("hello"))
		x("xattr/short", "user.empty", nil)
		write("xattr/remote", []byte("a remote value\n"), 0o644)
		x("xattr/remote", "user.big", text(3000))
		write("xattr/leaf", []byte("leaf attributes\n"), 0o644)
		for i := range 30 {
			x("xattr/leaf", fmt.Sprintf("user.attr%02d", i), text(40+i))
		}
		write("xattr/node", []byte("node attributes\n"), 0o644)
		// The host's ext4 keeps at most a block of attributes per file:
		// node form needs 1 KiB XFS blocks.
		for i := range 36 {
			x("xattr/node", fmt.Sprintf("user.attr-%04d", i), text(24+i%8))
		}
		x("xattr/node", "user.remote-in-node", rnd(900))
		must(os.MkdirAll(filepath.Join(root, "xattr/dir"), 0o755))
		x("xattr/dir", "user.on-a-dir", []byte("dir value"))
	}
	if o.special && os.Geteuid() == 0 {
		must(syscall.Mkfifo(filepath.Join(root, "modes/fifo"), 0o644))
		must(syscall.Mknod(filepath.Join(root, "modes/chr"), syscall.S_IFCHR|0o600, int(mkdev(4, 65))))
		must(syscall.Mknod(filepath.Join(root, "modes/blk"), syscall.S_IFBLK|0o660, int(mkdev(259, 70000))))
		write("modes/setuid", []byte("su"), 0o755)
		must(os.Chmod(filepath.Join(root, "modes/setuid"), 0o755|os.ModeSetuid))
		must(os.MkdirAll(filepath.Join(root, "modes/setgid"), 0o755))
		must(os.Chmod(filepath.Join(root, "modes/setgid"), 0o755|os.ModeSetgid))
		must(os.Lchown(filepath.Join(root, "modes/ro"), 1234, 5678))
		must(os.Lchown(filepath.Join(root, "links/inline"), 4321, 8765))
		if !o.proto {
			write("acl.txt", []byte("acl\n"), 0o664)
			// user::rw- user:1234:rw- group::r-- mask::rw- other::r--
			acl := []byte{2, 0, 0, 0}
			for _, e := range [][3]uint32{{1, 6, 0xFFFFFFFF}, {2, 6, 1234}, {4, 4, 0xFFFFFFFF}, {0x10, 6, 0xFFFFFFFF}, {0x20, 4, 0xFFFFFFFF}} {
				acl = le.AppendUint16(acl, uint16(e[0]))
				acl = le.AppendUint16(acl, uint16(e[1]))
				acl = le.AppendUint32(acl, e[2])
			}
			must(syscall.Setxattr(filepath.Join(root, "acl.txt"), "system.posix_acl_access", acl, 0))
			must(os.MkdirAll(filepath.Join(root, "acldir"), 0o755))
			must(syscall.Setxattr(filepath.Join(root, "acldir"), "system.posix_acl_default", acl, 0))
			must(syscall.Setxattr(filepath.Join(root, "acl.txt"), "trusted.t", []byte("trusted value"), 0))
			must(syscall.Setxattr(filepath.Join(root, "README"), "security.capability",
				[]byte{1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
		}
	}
	fixTimes(root)
}

// fixTimes gives every file and directory under root a fixed time with
// nanoseconds (modification times differ by path length).
func fixTimes(root string) {
	ts := time.Unix(1600000000, 123456789)
	filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && d.Type()&iofs.ModeSymlink == 0 {
			rel, _ := filepath.Rel(root, p)
			os.Chtimes(p, ts, ts.Add(time.Duration(len(rel))*time.Second))
		}
		return nil
	})
}

func mkdev(major, minor uint64) uint64 {
	return major&0xFFFFF000<<32 | major&0xFFF<<8 | minor&0xFFFFFF00<<12 | minor&0xFF
}

var xfsEnv = testimg.XFSEnv

// tool runs a tool with xfsEnv and fails the test on error.
func tool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testutil.RequireTool(t, name), args...)
	cmd.Env = append(os.Environ(), xfsEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// mkfsProto makes an XFS image of size bytes from src with mkfs.xfs -p.
func mkfsProto(t testing.TB, src, img string, size int64, extra ...string) {
	t.Helper()
	testimg.XFSFrom(t, img, size, src, append([]string{"-L", "proto"}, extra...)...)
}

func makeImage(t testing.TB, img string, size int64) {
	t.Helper()
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// mountOK reports whether this machine can loop-mount XFS (root, a kernel
// with XFS and loop devices).
var mountOK = sync.OnceValue(func() bool {
	if os.Geteuid() != 0 {
		return false
	}
	dir, err := os.MkdirTemp("", "xfs-probe")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "img")
	f, _ := os.Create(img)
	f.Truncate(32 << 20)
	f.Close()
	mkfs := exec.Command("mkfs.xfs", "-q", "-f", img)
	mkfs.Env = append(os.Environ(), xfsEnv...)
	if mkfs.Run() != nil {
		return false
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if exec.Command("mount", "-o", "loop", img, mnt).Run() != nil {
		return false
	}
	return exec.Command("umount", mnt).Run() == nil
})

// mkfsMount makes an XFS image of size bytes with mkfs.xfs (extra options),
// mounts it, copies src in with cp -a (modes, owners, times, xattrs, hard
// links kept), lets fill add to the mounted tree (may be nil), and
// unmounts. It skips the test where loop mounts are impossible.
func mkfsMount(t testing.TB, src, img string, size int64, fill func(mnt string), extra ...string) {
	t.Helper()
	if !mountOK() {
		t.Skip("loop mounts of XFS are not possible here (needs root, loop devices and the xfs module)")
	}
	makeImage(t, img, size)
	tool(t, "mkfs.xfs", append(append([]string{"-q", "-f", "-L", "mounted"}, extra...), img)...)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		// Linux kernels built without CONFIG_XFS_SUPPORT_V4 refuse v4.
		t.Skipf("this kernel does not mount the image (mkfs.xfs %v): %s", extra, out)
	}
	mounted := true
	defer func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	}()
	tool(t, "cp", "-a", src+"/.", mnt)
	if fill != nil {
		fill(mnt)
	}
	tool(t, "umount", mnt)
	mounted = false
}

// openImage opens an image file with the reader.
func openImage(t testing.TB, img string, opt Options) *FS {
	t.Helper()
	return fstest.OpenImage(t, img, func(r io.ReaderAt, size int64) (*FS, error) { return Open(r, size, opt) })
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// lookup returns the node at path p.
func lookup(t testing.TB, f fs.FS, p string) fs.Node {
	t.Helper()
	n, err := fs.Lookup(f, p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The tests build images with e2fsprogs and use Linux syscalls (xattrs, fifos).

//go:build linux

package ext4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// treeOpt sizes a source tree.
type treeOpt struct {
	small   int   // files in /small
	many    int   // entries in /many (htree after e2fsck -fD)
	big     int64 // size of /big.bin
	sparse  bool  // add /sparse.img
	special bool  // fifo, setuid, owners (when root)
}

var stdTree = treeOpt{small: 200, many: 3000, big: 1500 << 10, sparse: true, special: true}

// buildTree writes a deterministic source tree under root.
func buildTree(t testing.TB, root string, o treeOpt) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
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
	write("README", []byte("vzsalvage ext4 test tree\n"), 0o644)
	write("empty", nil, 0o644)
	must(os.MkdirAll(filepath.Join(root, "emptydir"), 0o755))
	for i := range o.small {
		write(fmt.Sprintf("small/f%03d", i), rnd(rng.IntN(6000)), 0o644)
	}
	for _, n := range []int{1, 59, 60, 61, 100, 150, 1023, 1024, 1025, 4095, 4096, 4097, 65537} {
		write(fmt.Sprintf("sizes/s%d", n), rnd(n), 0o644)
	}
	if o.big > 0 {
		write("big.bin", rnd(int(o.big)), 0o600)
	}
	if o.sparse {
		full := filepath.Join(root, "sparse.img")
		fh, err := os.Create(full)
		must(err)
		for _, c := range []struct {
			off int64
			n   int
		}{{0, 4096}, {3 << 20, 10000}, {8<<20 - 100, 100}} {
			_, err := fh.WriteAt(rnd(c.n), c.off)
			must(err)
		}
		must(fh.Close())
	}
	write("hl/a", rnd(5000), 0o644)
	must(os.Link(filepath.Join(root, "hl/a"), filepath.Join(root, "hl/b")))
	must(os.MkdirAll(filepath.Join(root, "links"), 0o755))
	must(os.Symlink("../small/f001", filepath.Join(root, "links/fast")))
	must(os.Symlink(strings.Repeat("long/", 40)+"target", filepath.Join(root, "links/slow")))
	must(os.Symlink(strings.Repeat("x", 900), filepath.Join(root, "links/verylong")))
	write("dirs/a/b/c/d/deep.txt", []byte("deep\n"), 0o640)
	write("modes/ro", []byte("ro"), 0o444)
	write("modes/exec", []byte("#!/bin/sh\n"), 0o755)
	must(os.MkdirAll(filepath.Join(root, "modes/sticky"), 0o755))
	must(os.Chmod(filepath.Join(root, "modes/sticky"), 0o1777))
	must(os.MkdirAll(filepath.Join(root, "modes/setgid"), 0o755))
	must(os.Chmod(filepath.Join(root, "modes/setgid"), 0o2755|os.ModeSetgid))
	write("xattr.txt", []byte("has attributes\n"), 0o644)
	xattrs := syscall.Setxattr(filepath.Join(root, "xattr.txt"), "user.comment", []byte("hello"), 0) == nil
	if xattrs {
		must(syscall.Setxattr(filepath.Join(root, "xattr.txt"), "user.big", bytes.Repeat([]byte("x"), 600), 0))
	}
	if xattrs && o.special {
		// A POSIX ACL in the xattr form: user::rw- user:1234:rw- group::r-- mask::rw- other::r--.
		acl := []byte{2, 0, 0, 0}
		for _, e := range [][3]uint32{{1, 6, 0xFFFFFFFF}, {2, 6, 1234}, {4, 4, 0xFFFFFFFF}, {0x10, 6, 0xFFFFFFFF}, {0x20, 4, 0xFFFFFFFF}} {
			acl = le.AppendUint16(acl, uint16(e[0]))
			acl = le.AppendUint16(acl, uint16(e[1]))
			acl = le.AppendUint32(acl, e[2])
		}
		write("acl.txt", []byte("acl\n"), 0o664)
		must(syscall.Setxattr(filepath.Join(root, "acl.txt"), "system.posix_acl_access", acl, 0))
		if os.Geteuid() == 0 {
			must(syscall.Setxattr(filepath.Join(root, "acl.txt"), "trusted.t", []byte("trusted value"), 0))
			must(syscall.Setxattr(filepath.Join(root, "xattr.txt"), "security.capability",
				[]byte{1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
		}
	}
	if o.special {
		must(syscall.Mkfifo(filepath.Join(root, "modes/fifo"), 0o644))
		write("modes/setuid", []byte("su"), 0o755)
		must(os.Chmod(filepath.Join(root, "modes/setuid"), 0o755|os.ModeSetuid))
		if os.Geteuid() == 0 {
			must(os.Lchown(filepath.Join(root, "modes/ro"), 1234, 5678))
			must(os.Lchown(filepath.Join(root, "links/fast"), 4321, 8765))
		}
	}
	for i := range o.many {
		name := fmt.Sprintf("entry-%035d", i)
		write("many/"+name, []byte(name), 0o644)
	}
	// Fixed times with nanoseconds, on files and directories.
	ts := time.Unix(1600000000, 123456789)
	filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && d.Type()&iofs.ModeSymlink == 0 {
			os.Chtimes(p, ts, ts.Add(time.Duration(len(p))*time.Second))
		}
		return nil
	})
}

const testUUID = "0b1e6d2c-5a4f-4d1e-9c3b-2f8e7a6d5c4b"

// mkfs builds an image of the tree at src with mke2fs -d. args come before
// the image name; size is like "32M".
func mkfs(t testing.TB, src, img, size string, args ...string) {
	t.Helper()
	// A fixed UUID and hash seed make images, and so tests, repeatable.
	a := append([]string{"-q", "-F", "-L", "vzs-test", "-U", testUUID,
		"-E", "root_owner=0:0,hash_seed=6b8e2f1a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"}, args...)
	a = append(a, "-d", src, img, size)
	testutil.Run(t, "mke2fs", a...)
}

// walked is one node reached by the test walker.
type walked struct {
	path    string
	st      *fs.Stat
	entry   *fs.DirEntry
	lay     *fs.Layout
	sum     string // SHA-256 of a regular file's content, up to the walker's cap
	readErr error
	link    string
	orphan  bool
}

// walk reads every node reachable from the root (and, with orphans, from
// Orphans(), as /#lost/#INODE) and the content of every file up to maxFile
// bytes. It detects directory cycles. Errors are collected, never fatal.
func walk(f *FS, orphans bool, maxFile int64) (map[string]*walked, []error) {
	out := make(map[string]*walked)
	var errs []error
	seen := make(map[fs.Node]bool)
	var visit func(p string, n fs.Node, e *fs.DirEntry, orphan bool)
	visit = func(p string, n fs.Node, e *fs.DirEntry, orphan bool) {
		st, err := f.Stat(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			return
		}
		w := &walked{path: p, st: st, entry: e, orphan: orphan}
		w.lay, err = f.Layout(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: layout: %w", p, err))
		}
		out[p] = w
		switch {
		case st.Mode.IsDir():
			if seen[n] {
				return
			}
			seen[n] = true
			ents, err := f.ReadDir(n)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
			}
			for i := range ents {
				visit(path.Join(p, ents[i].Name), ents[i].Node, &ents[i], orphan)
			}
		case st.Mode.IsRegular():
			fl, err := f.Open(n)
			if err != nil {
				w.readErr = err
				return
			}
			w.sum, w.readErr = hashFile(fl, min(fl.Size(), maxFile))
		case st.Mode&iofs.ModeSymlink != 0:
			w.link, w.readErr = f.ReadLink(n)
		}
	}
	visit("/", f.Root(), nil, false)
	if orphans {
		ns, err := f.Orphans()
		if err != nil {
			errs = append(errs, fmt.Errorf("orphans: %w", err))
		}
		for _, n := range ns {
			visit(fmt.Sprintf("/#lost/#%d", n), n, nil, true)
		}
	}
	return out, errs
}

// openImage opens an image file with our reader.
func openImage(t testing.TB, img string, opt Options) *FS {
	t.Helper()
	return fstest.OpenImage(t, img, func(r io.ReaderAt, size int64) (*FS, error) { return Open(r, size, opt) })
}

// srcEntry is one source-tree object.
type srcEntry struct {
	path string
	fi   os.FileInfo
	data []byte
	sum  string
	link string
}

// readTree lists the source tree.
func readTree(t testing.TB, root string) map[string]*srcEntry {
	t.Helper()
	out := make(map[string]*srcEntry)
	filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		e := &srcEntry{path: rel, fi: fi}
		switch {
		case fi.Mode().IsRegular():
			e.data, err = os.ReadFile(p)
			e.sum = sum(e.data)
		case fi.Mode()&os.ModeSymlink != 0:
			e.link, err = os.Readlink(p)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[rel] = e
		return nil
	})
	return out
}

// contentCount counts how many source regular files have their exact
// content somewhere in got (content hashes, matched as multisets), the
// measure used to compare recovery with other tools.
func contentCount(src map[string]*srcEntry, got []string) int {
	want := make(map[string]int)
	for _, e := range src {
		if e.fi.Mode().IsRegular() {
			want[e.sum]++
		}
	}
	n := 0
	for _, g := range got {
		if want[g] > 0 {
			want[g]--
			n++
		}
	}
	return n
}

// filesUnder returns the content hashes of the regular files under dir
// (files over 64 MiB are skipped: no source file is that large).
func filesUnder(t testing.TB, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fh, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer fh.Close()
		if st, err := fh.Stat(); err == nil && st.Size() <= 64<<20 {
			if s, err := hashFile(fh, st.Size()); err == nil {
				out = append(out, s)
			}
		}
		return nil
	})
	return out
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

var hashBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// hashFile hashes the first n bytes of r. Read errors are returned after
// hashing everything (damaged reads fill zeros).
func hashFile(r io.ReaderAt, n int64) (string, error) {
	h := sha256.New()
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	buf := *bp
	var first error
	for off := int64(0); off < n; {
		k := min(int64(len(buf)), n-off)
		if _, err := r.ReadAt(buf[:k], off); err != nil && err != io.EOF && first == nil {
			first = err
		}
		h.Write(buf[:k])
		off += k
	}
	return hex.EncodeToString(h.Sum(nil)), first
}

// sortedPaths returns the keys of m in order.
func sortedPaths[V any](m map[string]V) []string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	sort.Strings(k)
	return k
}

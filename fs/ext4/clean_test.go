//go:build linux

package ext4

import (
	"bytes"
	"errors"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// runCode runs a tool and returns its exit code, failing on codes outside ok.
func runCode(t testing.TB, ok []int, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command(testutil.RequireTool(t, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "E2FSPROGS_FAKE_TIME=1700000000")
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, c := range ok {
		if c == code {
			return code
		}
	}
	t.Fatalf("%s %v: exit %d\n%s", name, args, code, out)
	return code
}

// fsck -fD rebuilds directories as htrees (exit 1: "filesystem modified").
func htreeify(t testing.TB, img string) {
	runCode(t, []int{0, 1}, "e2fsck", "-fyD", img)
}

// sourceTree is a source tree built once per test binary.
type sourceTree struct {
	once sync.Once
	opt  treeOpt
	dir  string
	tree map[string]*srcEntry
}

var (
	fullSource = &sourceTree{opt: stdTree}
	liteSource = &sourceTree{opt: treeOpt{small: 100, big: 300 << 10, sparse: true, special: true}}
	tempDirs   []string
)

// get builds the tree on first use and returns its directory and listing.
func (s *sourceTree) get(t testing.TB) (string, map[string]*srcEntry) {
	s.once.Do(func() {
		d, err := os.MkdirTemp("", "ext4src")
		if err != nil {
			t.Fatal(err)
		}
		tempDirs = append(tempDirs, d)
		buildTree(t, d, s.opt)
		s.dir = d
		s.tree = readTree(t, d)
	})
	if s.tree == nil {
		t.Fatal("source tree not built")
	}
	return s.dir, s.tree
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

type imageConfig struct {
	name  string
	size  string
	args  []string
	htree bool // build the full tree and run e2fsck -fD to index /many
}

var cleanConfigs = []imageConfig{
	{"ext4-4k", "64M", []string{"-t", "ext4", "-b", "4096"}, true},
	{"ext4-1k", "40M", []string{"-t", "ext4", "-b", "1024"}, true},
	{"ext4-1k-uninit_bg", "40M", []string{"-t", "ext4", "-b", "1024", "-O", "^metadata_csum,^64bit,uninit_bg"}, true},
	{"ext4-inline", "64M", []string{"-t", "ext4", "-O", "inline_data"}, false},
	{"ext4-meta_bg", "40M", []string{"-t", "ext4", "-b", "1024", "-O", "meta_bg,^resize_inode"}, true},
	{"ext4-nojournal-128", "64M", []string{"-t", "ext4", "-O", "^has_journal", "-I", "128"}, false},
	{"ext4-bigalloc", "64M", []string{"-t", "ext4", "-O", "bigalloc", "-C", "16384"}, false},
	{"ext4-csum_seed", "64M", []string{"-t", "ext4", "-O", "metadata_csum_seed,^flex_bg"}, true},
	{"ext3-1k", "40M", []string{"-t", "ext3", "-b", "1024"}, true},
	{"ext2-4k", "64M", []string{"-t", "ext2"}, false},
	{"ext2-1k-nofiletype", "40M", []string{"-t", "ext2", "-b", "1024", "-O", "^filetype"}, false},
}

func TestCleanImages(t *testing.T) {
	for _, c := range cleanConfigs {
		t.Run(c.name, func(t *testing.T) {
			src, tree := liteSource.get(t)
			if c.htree {
				src, tree = fullSource.get(t)
			}
			img := filepath.Join(t.TempDir(), "img")
			mkfs(t, src, img, c.size, c.args...)
			if c.htree {
				htreeify(t, img)
			}
			f := openImage(t, img, Options{})
			info := f.Info()
			if len(info.Problems) > 0 {
				t.Errorf("problems on a clean image: %q", info.Problems)
			}
			if info.Type != c.name[:4] || info.UUID != testUUID || info.Label != "vzs-test" || info.View != ViewOnDisk {
				t.Errorf("Info() = %+v", info)
			}
			got, errs := walk(f, true, 1<<30)
			t.Logf("%d source objects, %d read", len(tree), len(got))
			for _, e := range errs {
				t.Error(e)
			}
			compareTree(t, src, tree, got)
			if c.name == "ext4-inline" {
				files, dirs := 0, 0
				for _, w := range got {
					if w.lay != nil && w.lay.Inline && w.st.Mode.IsRegular() {
						files++
					}
					if w.lay != nil && w.lay.Inline && w.st.Mode.IsDir() {
						dirs++
					}
				}
				if files < 10 || dirs < 5 {
					t.Errorf("only %d inline files and %d inline directories", files, dirs)
				}
			}
			if c.htree {
				in, err := f.readInode(uint32(got["/many"].st.Node))
				if err != nil || in.flags&flagIndex == 0 {
					t.Errorf("/many is not an htree directory (%v)", err)
				}
			}
			for p, w := range got {
				if w.orphan {
					t.Errorf("orphan %s on a clean image", p)
				}
				if len(w.st.Problems) > 0 {
					t.Errorf("%s: problems %q", p, w.st.Problems)
				}
			}
		})
	}
}

// compareTree checks every source object against what the walker read.
func compareTree(t *testing.T, root string, src map[string]*srcEntry, got map[string]*walked) {
	t.Helper()
	errs := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 20 {
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if errs > 20 {
			t.Errorf("... %d differences in all", errs)
		}
	}()
	inodes := make(map[uint64]uint64) // source inode -> our node
	for _, p := range sortedPaths(src) {
		s := src[p]
		w := got[p]
		if w == nil {
			fail("%s: missing", p)
			continue
		}
		sys := s.fi.Sys().(*syscall.Stat_t)
		if s.fi.Mode()&(iofs.ModeType|iofs.ModePerm|iofs.ModeSetuid|iofs.ModeSetgid|iofs.ModeSticky) !=
			w.st.Mode&(iofs.ModeType|iofs.ModePerm|iofs.ModeSetuid|iofs.ModeSetgid|iofs.ModeSticky) && p != "/" {
			fail("%s: mode %v, want %v", p, w.st.Mode, s.fi.Mode())
		}
		if p != "/" && (w.st.UID != sys.Uid || w.st.GID != sys.Gid) {
			fail("%s: owner %d:%d, want %d:%d", p, w.st.UID, w.st.GID, sys.Uid, sys.Gid)
		}
		if s.fi.Mode()&iofs.ModeSymlink == 0 && p != "/" {
			// mke2fs -d copies whole seconds only.
			want := s.fi.ModTime().Truncate(1e9)
			if !w.st.Mtime.Equal(want) {
				fail("%s: mtime %v, want %v", p, w.st.Mtime, want)
			}
		}
		switch {
		case s.fi.Mode().IsRegular():
			if w.readErr != nil {
				fail("%s: %v", p, w.readErr)
			}
			if w.st.Size != s.fi.Size() || w.sum != s.sum {
				fail("%s: content differs (size %d, want %d)", p, w.st.Size, s.fi.Size())
			}
			if prev, ok := inodes[sys.Ino]; ok && prev != uint64(w.st.Node) {
				fail("%s: hard link to a different node", p)
			}
			inodes[sys.Ino] = uint64(w.st.Node)
			if w.st.Nlink != uint32(sys.Nlink) {
				fail("%s: nlink %d, want %d", p, w.st.Nlink, sys.Nlink)
			}
		case s.fi.Mode()&iofs.ModeSymlink != 0:
			if w.link != s.link || w.readErr != nil {
				fail("%s: link %q (%v), want %q", p, w.link, w.readErr, s.link)
			}
		}
		// Extended attributes, as the source filesystem has them.
		if s.fi.Mode()&iofs.ModeSymlink == 0 {
			want := listXattrs(filepath.Join(root, p))
			for name, v := range want {
				if !bytes.Equal(w.st.Xattrs[name], v) {
					fail("%s: xattr %s = %x, want %x", p, name, w.st.Xattrs[name], v)
				}
			}
			for name := range w.st.Xattrs {
				if _, ok := want[name]; !ok {
					fail("%s: extra xattr %s", p, name)
				}
			}
		}
	}
	for p := range got {
		if src[p] == nil && p != "/lost+found" {
			fail("%s: not in the source tree", p)
		}
	}
}

// listXattrs returns a file's extended attributes.
func listXattrs(p string) map[string][]byte {
	buf := make([]byte, 65536)
	n, err := syscall.Listxattr(p, buf)
	if err != nil || n == 0 {
		return nil
	}
	out := make(map[string][]byte)
	for _, name := range bytes.Split(bytes.TrimRight(buf[:n], "\x00"), []byte{0}) {
		v := make([]byte, 65536)
		m, err := syscall.Getxattr(p, string(name), v)
		if err == nil {
			out[string(name)] = v[:m]
		}
	}
	return out
}

// TestUnwrittenExtents preallocates unwritten extents inside a hole of
// /sparse.img with debugfs: the content still reads as the source's zeros
// and Layout reports them with Physical -1.
func TestUnwrittenExtents(t *testing.T) {
	src, tree := liteSource.get(t)
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, src, img, "32M", "-t", "ext4", "-b", "4096")
	testutil.Run(t, "debugfs", "-w", "-R", "fallocate /sparse.img 10 20", img)
	f := openImage(t, img, Options{})
	got, errs := walk(f, false, 1<<30)
	for _, e := range errs {
		t.Error(e)
	}
	w := got["/sparse.img"]
	if w.sum != tree["/sparse.img"].sum {
		t.Error("/sparse.img differs from the source")
	}
	unwritten := int64(0)
	for _, e := range w.lay.Data {
		if e.Physical == -1 {
			unwritten += e.Length
		}
	}
	if unwritten != 11*4096 {
		t.Errorf("%d unwritten bytes in the layout, want %d", unwritten, 11*4096)
	}
}

// TestEAInode stores an attribute value too large for an xattr block (1
// KiB blocks) in its own inode (ea_inode).
func TestEAInode(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("0123456789abcdef"), 200) // 3,200 bytes
	if err := syscall.Setxattr(p, "user.huge", val, 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, src, img, "8M", "-t", "ext4", "-b", "1024", "-O", "ea_inode")
	f := openImage(t, img, Options{})
	n := lookup(t, f, "/f")
	st, err := f.Stat(n)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.Xattrs["user.huge"], val) || len(st.Problems) > 0 {
		t.Errorf("user.huge = %d bytes, problems %q", len(st.Xattrs["user.huge"]), st.Problems)
	}
	lay, _ := f.Layout(n)
	if len(lay.Meta) < 1 || len(lay.Attr) < 2 { // its inode; the EA inode and its blocks
		t.Errorf("layout meta %v, attr %v: the EA inode is not listed", lay.Meta, lay.Attr)
	}
	if o, _ := f.Orphans(); len(o) > 0 {
		t.Errorf("EA inode offered as an orphan: %v", o)
	}
}

// TestConcurrentWalks reads one FS from several goroutines at once.
func TestConcurrentWalks(t *testing.T) {
	src, _ := liteSource.get(t)
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, src, img, "32M", "-t", "ext4", "-b", "1024")
	f := openImage(t, img, Options{})
	want, _ := walk(f, true, 1<<30)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _ := walk(f, true, 1<<30)
			for p, w := range want {
				if g := got[p]; g == nil || g.sum != w.sum {
					t.Errorf("%s differs between walks", p)
				}
			}
		}()
	}
	wg.Wait()
}

// TestBackupSuperblock zeroes the primary superblock of images with default
// and non-default group sizes: a backup is found either way.
func TestBackupSuperblock(t *testing.T) {
	src, tree := liteSource.get(t)
	for _, args := range [][]string{
		{"-t", "ext4", "-b", "1024"},
		{"-t", "ext4", "-b", "4096", "-g", "2048"},
		{"-t", "ext3", "-b", "2048", "-g", "4096"},
	} {
		img := filepath.Join(t.TempDir(), "img")
		mkfs(t, src, img, "32M", args...)
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		clear(b[sbOffset : sbOffset+sbSize])
		f, err := Open(bytes.NewReader(b), int64(len(b)), Options{})
		if err != nil {
			t.Errorf("%v: %v", args, err)
			continue
		}
		got, _ := walk(f, false, 1<<30)
		if got["/small/f042"] == nil || got["/small/f042"].sum != tree["/small/f042"].sum {
			t.Errorf("%v: /small/f042 not read (problems %q)", args, f.Info().Problems)
		}
	}
}

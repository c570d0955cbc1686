//go:build linux

package xfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"

	"github.com/vzsalvage/vzsalvage/fs/fstest"
)

// protoOpts: what mkfs.xfs -p keeps of a tree (no times: it sets the
// current time; no hard links or xattrs: a protofile cannot say them).
var protoOpts = fstest.Options{NoMtime: true, NoHardLinks: true, NoXattrs: true, SkipTestFS: true}

// TestProto reads images made by mkfs.xfs -p from a protofile, v5 (the
// default: CRCs, sparse inodes, reflink, big timestamps) and v4.
func TestProto(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, treeOpt{small: 200, many: 1000, big: 3 << 20, frag: 40, special: true, proto: true})
	for _, c := range []struct {
		name string
		args []string
	}{
		{"v5", nil},
		{"v4", []string{"-m", "crc=0"}},
		{"v5-1k-nrext64", []string{"-b", "size=1024", "-i", "nrext64=1", "-n", "size=8192"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			mkfsProto(t, src, img, 64<<20, c.args...)
			f := openImage(t, img, Options{})
			fstest.Check(t, f, src, protoOpts)
		})
	}
}

// TestMounted reads images written through the kernel's XFS driver (loop
// mount, cp -a): times, hard links, sticky bits, xattrs of every form, ACLs,
// and a file fragmented enough for an extent B+tree.
func TestMounted(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, treeOpt{small: 200, many: 2000, big: 2 << 20, frag: 600, special: true, xattrs: true})
	for _, c := range []struct {
		name string
		args []string
		want []string // forms the image must hold
	}{
		{"v5", nil, []string{"bigtime", "bmbt:level1", "dir:block", "dir:node", "dir:shortform", "symlink:inline", "symlink:remote", "xattr:leaf", "xattr:shortform"}},
		{"v4", []string{"-m", "crc=0"}, []string{"bmbt:level1", "dir:node", "xattr:leaf"}},
		{"v5-1k-nrext64", []string{"-b", "size=1024", "-i", "nrext64=1"}, []string{"bmbt:level2", "nrext64", "xattr:node", "dir:node"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			mkfsMount(t, src, img, 64<<20, nil, c.args...)
			f := openImage(t, img, Options{})
			fstest.Check(t, f, src, fstest.Options{SkipTestFS: true})
			var got []string
			forms := formats(t, f)
			for _, w := range c.want {
				if !forms[w] {
					t.Errorf("the image holds no %s", w)
				}
			}
			for k := range forms {
				got = append(got, k)
			}
			sort.Strings(got)
			t.Logf("forms read: %v", got)
		})
	}
}

// TestProtoSymlinkBug: mkfs.xfs -p of xfsprogs 6.1 writes a v5 remote
// symlink without its block header (xfs_repair -n: "bad symlink header").
// The target is still read, with a problem.
func TestProtoSymlinkBug(t *testing.T) {
	src := t.TempDir()
	target := strings.Repeat("long/", 80) + "target"
	if err := os.Symlink(target, filepath.Join(src, "remote")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img")
	mkfsProto(t, src, img, 32<<20)
	f := openImage(t, img, Options{})
	got, err := f.ReadLink(lookup(t, f, "/remote"))
	if got != target || err == nil {
		t.Fatalf("ReadLink = %q, %v; want the target and a problem", got, err)
	}
}

// formats names the on-disk forms a reader met in an image, to show what
// a test covers: directory forms, bmbt depth, attribute forms, symlinks.
func formats(t *testing.T, f *FS) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	fs.Walk(f, f.Root(), func(p string, e *fs.DirEntry, st *fs.Stat, err error) error {
		if st == nil {
			return nil
		}
		in, err := f.node(st.Node)
		if err != nil {
			return nil
		}
		switch {
		case in.typ() == sIFDIR && in.format == fmtLocal:
			out["dir:shortform"] = true
		case in.typ() == sIFDIR:
			m := f.mapFork(in, false)
			leaf := uint64(dir2LeafOffset) >> f.sb.blockLog
			data, leaves := 0, 0
			for _, r := range m.Runs {
				if r.Off < leaf {
					data += int(r.N)
				} else if r.Off < 2*leaf {
					leaves += int(r.N)
				}
			}
			switch {
			case leaves == 0:
				out["dir:block"] = true
			case leaves <= int(f.dirBlk/f.bs):
				out["dir:leaf"] = true
			default:
				out["dir:node"] = true
			}
		case in.typ() == sIFLNK && in.format == fmtLocal:
			out["symlink:inline"] = true
		case in.typ() == sIFLNK:
			out["symlink:remote"] = true
		}
		if in.format == fmtBtree {
			out[fmt.Sprintf("bmbt:level%d", be.Uint16(f.dataFork(in)))] = true
		}
		switch in.aformat {
		case fmtLocal:
			if in.forkoff != 0 {
				out["xattr:shortform"] = true
			}
		case fmtExtents, fmtBtree:
			r := attrReader{f: f, in: in, m: f.mapFork(in, true), seen: map[uint64]bool{}}
			if b, _, err := r.read(0); err == nil {
				switch be.Uint16(b[8:]) {
				case attrLeafMagic, attr3LeafMagic:
					out["xattr:leaf"] = true
				case daNodeMagic, da3NodeMagic:
					out["xattr:node"] = true
				}
			}
		}
		if in.flags2&flag2Nrext64 != 0 {
			out["nrext64"] = true
		}
		if in.flags2&flag2Bigtime != 0 {
			out["bigtime"] = true
		}
		return nil
	})
	return out
}

// TestDirtyLog: a filesystem shut down without unmounting (xfs_io
// shutdown) is reported as having a dirty log, replayed by default (the
// file written last is there) or not; a clean one is not.
func TestDirtyLog(t *testing.T) {
	src := t.TempDir()
	img := filepath.Join(t.TempDir(), "img")
	mkfsMount(t, src, img, 32<<20, func(mnt string) {
		if err := os.WriteFile(filepath.Join(mnt, "late"), []byte("written just before the crash"), 0o644); err != nil {
			t.Fatal(err)
		}
		tool(t, "xfs_io", "-x", "-c", "shutdown -f", mnt)
	})
	if p := openImage(t, img, Options{Log: LogOnDisk}).Info().Problems; len(p) != 1 || !strings.Contains(p[0], "log is dirty") {
		t.Errorf("problems %q, want a dirty log", p)
	}
	f := openImage(t, img, Options{})
	if p := f.Info().Problems; len(p) != 1 || !strings.HasPrefix(p[0], "log replayed: ") {
		t.Errorf("problems %q, want a replayed log", p)
	}
	// Its data never reached the disk (no fsync): the kernel too shows
	// it empty after recovery.
	if _, err := fs.Lookup(f, "/late"); err != nil {
		t.Errorf("the file created last is not in the replayed view: %v", err)
	}
	tool(t, "xfs_repair", "-L", img) // zeroes the log: clean again
	if p := openImage(t, img, Options{}).Info().Problems; len(p) != 0 {
		t.Errorf("problems %q after xfs_repair -L", p)
	}
}

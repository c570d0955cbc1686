//go:build linux

package testimg

import (
	"fmt"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// XFSEnv lets mkfs.xfs make filesystems smaller than 300 MiB (as for
// xfstests).
var XFSEnv = []string{"TEST_DIR=/tmp", "TEST_DEV=/dev/null", "QA_CHECK_FS=xfs", "LC_ALL=C"}

// XFSFrom makes an XFS image of size bytes at path (a new sparse file)
// holding srcDir, with mkfs.xfs -p and a protofile written from the tree
// (modes, owners, symlinks, devices; no times, hard links or xattrs: a
// protofile cannot say them). extra are mkfs.xfs options.
func XFSFrom(t testing.TB, path string, size int64, srcDir string, extra ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("vzsalvage\n0 0\n")
	protoEntry(t, &b, srcDir, "", 0)
	b.WriteString("$\n")
	proto := filepath.Join(t.TempDir(), "proto")
	must(t, os.WriteFile(proto, []byte(b.String()), 0o644))
	must(t, truncate(path, size))
	cmd := exec.Command(testutil.RequireTool(t, "mkfs.xfs"), append(append([]string{"-q", "-f"}, extra...), "-p", proto, path)...)
	cmd.Env = append(os.Environ(), XFSEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v: %s", err, out)
	}
}

// protoEntry writes the protofile lines of path p (a directory's own line,
// then its entries).
func protoEntry(t testing.TB, b *strings.Builder, p, name string, depth int) {
	fi, err := os.Lstat(p)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	m := fi.Mode()
	typ := "-"
	switch {
	case m.IsDir():
		typ = "d"
	case m&iofs.ModeSymlink != 0:
		typ = "l"
	case m&iofs.ModeNamedPipe != 0:
		typ = "p"
	case m&iofs.ModeCharDevice != 0:
		typ = "c"
	case m&iofs.ModeDevice != 0:
		typ = "b"
	}
	su, sg := "-", "-"
	if m&iofs.ModeSetuid != 0 {
		su = "u"
	}
	if m&iofs.ModeSetgid != 0 {
		sg = "g"
	}
	fmt.Fprintf(b, "%s%s %s%s%s%03o %d %d", strings.Repeat(" ", depth), name, typ, su, sg, m.Perm(), st.Uid, st.Gid)
	switch typ {
	case "-":
		fmt.Fprintf(b, " %s\n", p)
	case "l":
		target, _ := os.Readlink(p)
		fmt.Fprintf(b, " %s\n", target)
	case "c", "b":
		fmt.Fprintf(b, " %d %d\n", (st.Rdev>>8)&0xfff|(st.Rdev>>32)&^0xfff, st.Rdev&0xff|(st.Rdev>>12)&^0xff)
	case "d":
		b.WriteString("\n")
		ents, err := os.ReadDir(p)
		must(t, err)
		for _, e := range ents {
			protoEntry(t, b, filepath.Join(p, e.Name()), e.Name(), depth+1)
		}
		fmt.Fprintf(b, "%s$\n", strings.Repeat(" ", depth))
	default:
		b.WriteString("\n")
	}
}

// FATPartition formats partition p of the disk image at path with
// mkfs.vfat (FAT32 unless extra says otherwise) and copies srcDir's
// content into it with mcopy -s -m (times kept, written as UTC).
func FATPartition(t testing.TB, path string, p Partition, srcDir string, extra ...string) {
	t.Helper()
	sector := strconv.FormatInt(p.Offset/512, 10)
	args := append([]string{"--offset=" + sector, "-n", "EFI"}, extra...)
	args = append(args, path, strconv.FormatInt(p.Size/1024, 10))
	run := func(name string, args ...string) {
		cmd := exec.Command(testutil.RequireTool(t, name), args...)
		cmd.Env = append(os.Environ(), "TZ=UTC", "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v: %s", name, args, err, out)
		}
	}
	run("mkfs.vfat", args...)
	ents, err := os.ReadDir(srcDir)
	must(t, err)
	cp := []string{"-s", "-m", "-Q", "-i", path + "@@" + strconv.FormatInt(p.Offset, 10)}
	for _, e := range ents {
		cp = append(cp, filepath.Join(srcDir, e.Name()))
	}
	run("mcopy", append(cp, "::/")...)
}

package rescue

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// hostileVM builds a one-disk guest (GPT, ext4 root filled from src by
// mke2fs -d), runs the debugfs commands on the root filesystem, and returns
// the .vma.zst archive.
func hostileVM(t *testing.T, src string, debugfs ...string) (dir, arc string) {
	t.Helper()
	dir = t.TempDir()
	disk := testimg.Disk{Name: "drive-scsi0", Path: filepath.Join(dir, "root.raw")}
	parts := testimg.GPTExt4(t, disk.Path, 48<<20, src)
	if len(debugfs) > 0 {
		cmds := filepath.Join(dir, "debugfs.cmds")
		if err := os.WriteFile(cmds, []byte(strings.Join(debugfs, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		testutil.Run(t, "debugfs", "-w", "-f", cmds, disk.Path+"?offset="+strconv.FormatInt(parts[2].Offset, 10))
	}
	return dir, testimg.BuildArchive(t, dir, []testimg.Disk{disk}, ".zst", 1)
}

// listXattrs returns the extended attribute names of every file under dir.
func listXattrs(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		buf := make([]byte, 4096)
		n, err := unix.Llistxattr(p, buf)
		if err != nil {
			return nil
		}
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				out[s] = append(out[s], p)
			}
		}
		return nil
	})
	return out
}

// TestRescueNoCapabilities is the audit's finding 1: a guest interpreter
// with cap_setuid+ep (setcap), trusted.* and security.selinux (debugfs
// ea_set) must come out with neither, whatever the owners; only with
// --xattrs all, and owners kept, is the capability restored.
func TestRescueNoCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (setcap; the audit's case is a rescue run as root)")
	}
	src := filepath.Join(t.TempDir(), "src")
	py := filepath.Join(src, "usr", "bin", "python3")
	if err := os.MkdirAll(filepath.Dir(py), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(py, []byte("#!/bin/sh\nexec /bin/sh \"$@\"\n"), 0o755)
	testutil.Run(t, "setcap", "cap_setuid+ep", py)
	if err := unix.Setxattr(py, "user.comment", []byte("kept"), 0); err != nil {
		t.Skipf("no user xattrs in the temporary directory: %v", err)
	}
	os.WriteFile(filepath.Join(src, "data"), []byte("plain"), 0o644)
	_, arc := hostileVM(t, src,
		"ea_set /usr/bin/python3 trusted.overlay.opaque y",
		"ea_set /usr/bin/python3 security.selinux system_u:object_r:bin_t:s0",
		"ea_set /data trusted.x 1",
		"ea_set /usr security.ima xx")

	for _, tc := range []struct {
		name string
		opt  Options
		want string // attributes expected on the output, sorted
	}{
		{"default", Options{Owners: true}, "user.comment"},
		{"no-owners", Options{}, "user.comment"},
		{"xattrs all, no owners", Options{Xattrs: fs.XattrsAll}, "security.ima security.selinux trusted.overlay.opaque trusted.x user.comment"},
		{"xattrs all, owners", Options{Owners: true, Xattrs: fs.XattrsAll}, "security.capability security.ima security.selinux trusted.overlay.opaque trusted.x user.comment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rescue")
			rep, err := Run(arc, out, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(out, "files", "drive-scsi0-p3")
			var names []string
			for n := range listXattrs(t, root) {
				names = append(names, n)
			}
			got := strings.Join(slices.Sorted(slices.Values(names)), " ")
			if got != tc.want {
				t.Errorf("attributes on the output: %q, want %q", got, tc.want)
			}
			if b, err := os.ReadFile(filepath.Join(root, "usr/bin/python3")); err != nil || !bytes.HasPrefix(b, []byte("#!/bin/sh")) {
				t.Errorf("python3: %q %v", b, err)
			}
			if tc.opt.Xattrs != fs.XattrsAll && !hasNote(rep, "extended attributes not restored") {
				t.Errorf("no note says attributes were left out: %+v", rep.Volumes)
			}
		})
	}
}

func hasNote(rep *Report, s string) bool {
	for _, v := range rep.Volumes {
		for _, n := range v.Notes {
			if strings.Contains(n, s) {
				return true
			}
		}
	}
	return false
}

// fileBytes sums the sizes of the distinct regular files (by inode) under
// dir, and counts the names.
func fileBytes(t *testing.T, dir string) (bytes int64, names int) {
	t.Helper()
	seen := map[uint64]bool{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		names++
		st := info.Sys().(*syscall.Stat_t)
		if !seen[st.Ino] {
			seen[st.Ino] = true
			bytes += st.Blocks * 512
		}
		return nil
	})
	return bytes, names
}

// bigText is 20 MiB of compressible text: a small archive, a large file.
func bigText(t *testing.T, path string) []byte {
	b := bytes.Repeat([]byte("a line of a large log file that compresses well\n"), 20<<20/48)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRescueAliasedInode is the audit's finding 2: 119 more names for one
// inode whose link count stays 1 (debugfs ln does not count), which turned a
// small archive into 120 copies. The file is copied once and hard-linked.
func TestRescueAliasedInode(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	want := bigText(t, filepath.Join(src, "big.log"))
	var cmds []string
	for i := 1; i < 120; i++ {
		// debugfs ln does not grow a directory: 30 names per directory
		d := "/d" + strconv.Itoa(i/30)
		if i%30 == 0 || i == 1 {
			cmds = append(cmds, "mkdir "+d)
		}
		cmds = append(cmds, "ln /big.log "+d+"/name"+strconv.Itoa(i))
	}
	_, arc := hostileVM(t, src, cmds...)
	st, _ := os.Stat(arc)
	out := filepath.Join(t.TempDir(), "rescue")
	rep, err := Run(arc, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(out, "files", "drive-scsi0-p3")
	got, names := fileBytes(t, root)
	t.Logf("archive %d bytes; output %d bytes of file data in %d names; %s", st.Size(), got, names, rep.Summary())
	if names != 120 || got > int64(len(want))+1<<20 {
		t.Errorf("%d names, %d bytes: the inode was copied more than once", names, got)
	}
	if b, err := os.ReadFile(filepath.Join(root, "d3", "name119")); err != nil || !bytes.Equal(b, want) {
		t.Errorf("name119: %d bytes %v", len(b), err)
	}
	if !hasNote(rep, "written as hard links") {
		t.Errorf("no note says names were aliased: %+v", rep.Volumes)
	}
}

// TestRescueSharedBlocks: 40 inodes over the same 20 MiB of blocks
// (debugfs copy_inode), which no inode check can see: the rescue's budget
// (the bytes the backup's disks hold) stops the copies, the report says so,
// and the rescue is not reported intact.
func TestRescueSharedBlocks(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	bigText(t, filepath.Join(src, "big.log"))
	var cmds []string
	for i := 1; i <= 40; i++ {
		n := "/copy" + strconv.Itoa(i)
		cmds = append(cmds, "write /dev/null "+n, "copy_inode /big.log "+n)
	}
	_, arc := hostileVM(t, src, cmds...)
	out := filepath.Join(t.TempDir(), "rescue")
	rep, err := Run(arc, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, names := fileBytes(t, filepath.Join(out, "files"))
	var stored int64
	for _, d := range rep.Devices {
		stored += d.Stored()
	}
	t.Logf("disks hold %d bytes; output %d bytes in %d files; %s", stored, got, names, rep.Summary())
	if got > stored+copySlack+1<<20 {
		t.Errorf("wrote %d bytes, more than the %d the disks hold and the slack", got, stored)
	}
	if rep.Intact() || rep.CopyStopped == "" || !strings.Contains(rep.Summary(), "file copies stopped") {
		t.Errorf("the stop is not reported: %s", rep.Summary())
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !bytes.Contains(md, []byte("file copies stopped")) {
		t.Errorf("report.md does not say the copies stopped")
	}
}

// overlapGPT rewrites every partition entry of a GPT disk to the first
// one's range, with both headers' checksums made right: n partitions over
// one filesystem (sgdisk refuses to make overlapping partitions; a crafted
// table has them).
func overlapGPT(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, hdrOff := range []int64{512, int64(len(b)) - 512} {
		h := b[hdrOff : hdrOff+512]
		if string(h[:8]) != "EFI PART" {
			t.Fatalf("no GPT header at %d", hdrOff)
		}
		ents := int64(le.Uint64(h[72:])) * 512
		num, size := int64(le.Uint32(h[80:])), int64(le.Uint32(h[84:]))
		e := b[ents : ents+num*size]
		first, last := le.Uint64(e[32:]), le.Uint64(e[40:])
		for i := int64(1); i < num; i++ {
			if le.Uint64(e[i*size:]) != 0 || le.Uint64(e[i*size+8:]) != 0 { // a used entry
				le.PutUint64(e[i*size+32:], first)
				le.PutUint64(e[i*size+40:], last)
			}
		}
		le.PutUint32(h[88:], crc32.ChecksumIEEE(e))
		hs := le.Uint32(h[12:])
		le.PutUint32(h[16:], 0)
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:hs]))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRescueOverlappingPartitions is the audit's other finding 2: 128 GPT
// partitions over one ext4 (9 KB of archive made 2.1 GB). The filesystem is
// copied once; the other 127 are listed as duplicates of it.
func TestRescueOverlappingPartitions(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	want := bigText(t, filepath.Join(src, "big.log"))
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(disk, 64<<20)
	args := []string{"-a", "8", "-n", "1:2048:+40M"}
	for i := 2; i <= 128; i++ {
		args = append(args, "-n", strconv.Itoa(i)+":0:+4K")
	}
	testutil.Run(t, "sgdisk", append(args, disk)...)
	overlapGPT(t, disk)
	testutil.Run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-d", src, "-E", "offset=1048576", disk, "40960k")
	arc := testimg.BuildArchive(t, dir, []testimg.Disk{{Name: "drive-scsi0", Path: disk}}, ".zst", 1)

	out := filepath.Join(dir, "rescue")
	rep, err := Run(arc, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dups, copied := 0, 0
	for _, v := range rep.Volumes {
		switch {
		case v.DuplicateOf == "drive-scsi0-p1":
			dups++
		case v.Dir != "":
			copied++
		}
	}
	got, _ := fileBytes(t, filepath.Join(out, "files"))
	t.Logf("%d volumes, %d copied, %d duplicates; %d bytes of files; %s", len(rep.Volumes), copied, dups, got, rep.Summary())
	if dups != 127 || copied != 1 || got > int64(len(want))+1<<20 {
		t.Errorf("%d duplicates, %d copied, %d bytes written", dups, copied, got)
	}
	if b, err := os.ReadFile(filepath.Join(out, "files", "drive-scsi0-p1", "big.log")); err != nil || !bytes.Equal(b, want) {
		t.Errorf("big.log: %v", err)
	}
	if !rep.Intact() {
		t.Errorf("not intact: %s", rep.Summary())
	}
}

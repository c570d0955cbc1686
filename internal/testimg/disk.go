package testimg

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// Partition is a partition of a built disk.
type Partition struct {
	Index  int
	Offset int64
	Size   int64
}

// Images are the same bytes on every run with the same tool versions
// (ToolVersions): the GUIDs and UUIDs are fixed, the tools run at FixedTime
// (testutil.Run sets E2FSPROGS_FAKE_TIME), the source tree's times are set
// to it, and what the tools take from the clock or from chance anyway
// (ctimes mke2fs -d copies, XFS inode times and generations) is set
// afterwards with debugfs and xfs_db. (File owners are the user's: run as
// root, as the README's test command does, they are 0.)

// FixedTime is the time test images carry.
var FixedTime = time.Unix(1700000000, 0)

// GPTExt4 builds a raw disk of size bytes at path like a typical Linux
// guest: a GPT (sgdisk) with an 8 MiB EFI partition (p1), a 16 MiB ext4
// /boot (p2, mke2fs) and an ext4 root (p3) filled from srcDir by mke2fs -d.
// extra are extra mke2fs arguments for the root (e.g. "-O", "^metadata_csum").
// The times of srcDir's files are set to FixedTime.
func GPTExt4(t testing.TB, path string, size int64, srcDir string, extra ...string) []Partition {
	t.Helper()
	must(t, truncate(path, size))
	testutil.Run(t, "sgdisk", "-U", "6d3f6b43-5b0a-4c5e-9a43-1f7c2e8d0001",
		"-n1:2048:+8M", "-t1:ef00", "-c1:EFI", "-u1:6d3f6b43-5b0a-4c5e-9a43-1f7c2e8d0011",
		"-n2:0:+16M", "-t2:8300", "-c2:boot", "-u2:6d3f6b43-5b0a-4c5e-9a43-1f7c2e8d0012",
		"-n3:0:0", "-t3:8300", "-c3:root", "-u3:6d3f6b43-5b0a-4c5e-9a43-1f7c2e8d0013", path)
	parts := partitions(t, path)
	bootSrc := t.TempDir()
	must(t, os.WriteFile(bootSrc+"/vmlinuz", randomBytes(1<<20, 3), 0o644))
	mkext4(t, path, parts[1], bootSrc, "2b1c9a3e-7d44-4f0e-8c1a-5e6f7a8b0002", "-L", "boot")
	args := append([]string{"-L", "root"}, extra...)
	mkext4(t, path, parts[2], srcDir, "2b1c9a3e-7d44-4f0e-8c1a-5e6f7a8b0003", args...)
	return parts
}

// mkext4 makes an ext4 filesystem with the given UUID (also its hash seed)
// in partition p, filled from src.
func mkext4(t testing.TB, path string, p Partition, src, uuid string, extra ...string) {
	t.Helper()
	rels := stampTree(t, src)
	ext := "offset=" + strconv.FormatInt(p.Offset, 10) + ",hash_seed=" + uuid
	var rest []string
	for i := 0; i < len(extra); i++ {
		if extra[i] == "-E" && i+1 < len(extra) {
			ext += "," + extra[i+1] // one -E: mke2fs keeps only the last
			i++
			continue
		}
		rest = append(rest, extra[i])
	}
	args := []string{"-q", "-F", "-t", "ext4", "-d", src, "-U", uuid, "-E", ext}
	args = append(args, rest...)
	args = append(args, path, strconv.FormatInt(p.Size/1024, 10)+"k")
	testutil.Run(t, "mke2fs", args...)
	// mke2fs -d copies each file's ctime (the time of stampTree) and atime.
	var cmds strings.Builder
	at := "@" + strconv.FormatInt(FixedTime.Unix(), 10)
	for _, rel := range rels {
		fmt.Fprintf(&cmds, "sif \"/%s\" ctime %s\nsif \"/%s\" atime %s\n", rel, at, rel, at)
	}
	f := filepath.Join(t.TempDir(), "debugfs.cmds")
	must(t, os.WriteFile(f, []byte(cmds.String()), 0o644))
	testutil.Run(t, "debugfs", "-w", "-f", f, path+"?offset="+strconv.FormatInt(p.Offset, 10))
}

// stampTree sets the access and modification times of everything under
// dir (dir included, symbolic links themselves) to FixedTime and returns
// their paths relative to dir ("" for dir).
func stampTree(t testing.TB, dir string) []string {
	t.Helper()
	var rels []string
	tv := []unix.Timeval{unix.NsecToTimeval(FixedTime.UnixNano()), unix.NsecToTimeval(FixedTime.UnixNano())}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			rel = ""
		}
		rels = append(rels, rel)
		return unix.Lutimes(p, tv)
	})
	must(t, err)
	return rels
}

// partitions reads a disk's partitions with sgdisk.
func partitions(t testing.TB, path string) []Partition {
	t.Helper()
	var parts []Partition
	for _, line := range strings.Split(string(testutil.Run(t, "sgdisk", "-p", path)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		idx, err1 := strconv.Atoi(f[0])
		start, err2 := strconv.ParseInt(f[1], 10, 64)
		end, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		parts = append(parts, Partition{Index: idx, Offset: start * 512, Size: (end - start + 1) * 512})
	}
	return parts
}

// XFS builds a bare XFS disk (no partition table) of size bytes (mkfs.xfs
// needs at least 300 MiB; the file stays sparse).
func XFS(t testing.TB, path string, size int64) {
	t.Helper()
	must(t, truncate(path, size))
	testutil.Run(t, "mkfs.xfs", "-q", "-f", "-L", "data", "-m", "uuid=8c0e5a7d-3f21-4b6a-9d4e-2a1b3c4d0004", path)
	// mkfs.xfs gives the inodes it makes the current time and a random
	// generation: fix them.
	var ino []string
	for _, line := range strings.Split(string(testutil.Run(t, "xfs_db", "-r", "-c", "sb 0", "-c", "print rootino rbmino rsumino", path)), "\n") {
		if _, v, ok := strings.Cut(line, " = "); ok {
			ino = append(ino, strings.TrimSpace(v))
		}
	}
	if len(ino) != 3 {
		t.Fatalf("xfs_db: inodes %q", ino)
	}
	sec := strconv.FormatInt(FixedTime.Unix(), 10)
	args := []string{"-x"}
	for _, n := range ino {
		args = append(args, "-c", "inode "+n)
		for _, f := range []string{"core.atime", "core.mtime", "core.ctime", "v3.crtime"} {
			args = append(args, "-c", "write -d "+f+".sec "+sec, "-c", "write -d "+f+".nsec 0")
		}
		args = append(args, "-c", "write -d core.gen 0")
	}
	testutil.Run(t, "xfs_db", append(args, path)...)
}

// EFIDisk writes a 540672-byte efidisk (the size Proxmox uses for OVMF
// variables) with firmware-volume-like content: a header, a variable store
// region and erased (0xff) space.
func EFIDisk(t testing.TB, path string) {
	t.Helper()
	b := make([]byte, 540672)
	for i := range b {
		b[i] = 0xff
	}
	copy(b, randomBytes(4096, 5))
	copy(b[8192:], []byte(strings.Repeat("BootOrder\x00Boot0001\x00PlatformLang en-US\x00", 200)))
	must(t, os.WriteFile(path, b, 0o644))
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func truncate(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// FileSHA256 returns the sha256 of a file's content.
func FileSHA256(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return sha256.Sum256(b)
}

// JournalBlocks writes the current content of blocks (4 KiB) of the ext4
// filesystem at byte offset off of the image into its journal as one
// transaction (debugfs journal_write), then recovers it (journal_run): the
// journal is clean again and its log keeps the copies, as after the kernel
// checkpointed the change that logged those blocks.
func JournalBlocks(t testing.TB, img string, off int64, blocks []int64) {
	t.Helper()
	b, err := os.ReadFile(img)
	must(t, err)
	dir := t.TempDir()
	var data []byte
	var list []string
	for _, blk := range blocks {
		data = append(data, b[off+blk*4096:off+(blk+1)*4096]...)
		list = append(list, strconv.FormatInt(blk, 10))
	}
	must(t, os.WriteFile(filepath.Join(dir, "blocks"), data, 0o644))
	cmds := "jo\njw -b " + strings.Join(list, ",") + " " + filepath.Join(dir, "blocks") + "\njc\n"
	must(t, os.WriteFile(filepath.Join(dir, "cmds"), []byte(cmds), 0o644))
	at := img + "?offset=" + strconv.FormatInt(off, 10)
	testutil.Run(t, "debugfs", "-w", "-f", filepath.Join(dir, "cmds"), at)
	testutil.Run(t, "debugfs", "-w", "-R", "jr", at)
}

// FSBlocks lists the blocks of a path of the ext4 filesystem at byte
// offset off of the image, as debugfs gives them.
func FSBlocks(t testing.TB, img string, off int64, p string) []int64 {
	t.Helper()
	var out []int64
	for _, w := range strings.Fields(string(testutil.Run(t, "debugfs", "-R", "blocks "+p, img+"?offset="+strconv.FormatInt(off, 10)))) {
		b, err := strconv.ParseInt(w, 10, 64)
		if err != nil {
			t.Fatalf("debugfs blocks %s: %q", p, w)
		}
		out = append(out, b)
	}
	return out
}

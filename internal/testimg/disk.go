package testimg

import (
	"crypto/sha256"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// Partition is a partition of a built disk.
type Partition struct {
	Index  int
	Offset int64
	Size   int64
}

// GPTExt4 builds a raw disk of size bytes at path like a typical Linux
// guest: a GPT (sgdisk) with an 8 MiB EFI partition (p1), a 16 MiB ext4
// /boot (p2, mke2fs) and an ext4 root (p3) filled from srcDir by mke2fs -d.
// extra are extra mke2fs arguments for the root (e.g. "-O", "^metadata_csum").
func GPTExt4(t testing.TB, path string, size int64, srcDir string, extra ...string) []Partition {
	t.Helper()
	must(t, truncate(path, size))
	testutil.Run(t, "sgdisk", "-n1:2048:+8M", "-t1:ef00", "-c1:EFI", "-n2:0:+16M", "-t2:8300", "-c2:boot",
		"-n3:0:0", "-t3:8300", "-c3:root", path)
	parts := partitions(t, path)
	bootSrc := t.TempDir()
	must(t, os.WriteFile(bootSrc+"/vmlinuz", randomBytes(1<<20, 3), 0o644))
	mkext4(t, path, parts[1], bootSrc, "-L", "boot")
	args := append([]string{"-L", "root"}, extra...)
	mkext4(t, path, parts[2], srcDir, args...)
	return parts
}

func mkext4(t testing.TB, path string, p Partition, src string, extra ...string) {
	t.Helper()
	ext := "offset=" + strconv.FormatInt(p.Offset, 10)
	var rest []string
	for i := 0; i < len(extra); i++ {
		if extra[i] == "-E" && i+1 < len(extra) {
			ext += "," + extra[i+1] // one -E: mke2fs keeps only the last
			i++
			continue
		}
		rest = append(rest, extra[i])
	}
	args := []string{"-q", "-F", "-t", "ext4", "-d", src, "-E", ext}
	args = append(args, rest...)
	args = append(args, path, strconv.FormatInt(p.Size/1024, 10)+"k")
	testutil.Run(t, "mke2fs", args...)
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
	testutil.Run(t, "mkfs.xfs", "-q", "-f", "-L", "data", path)
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

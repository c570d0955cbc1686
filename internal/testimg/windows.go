//go:build linux

package testimg

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// WindowsDisk builds a raw disk of size bytes at path laid out as Windows
// installs itself on a UEFI machine: a GPT (sgdisk) with a 16 MiB EFI
// system partition (p1, FAT16 filled from efiSrc), a 16 MiB Microsoft
// reserved partition (p2, no filesystem), the Windows basic data partition
// (p3, NTFS holding winFiles) and a 16 MiB Windows recovery partition at
// the end (p4, NTFS holding recFiles). See NTFSPartition for the files.
func WindowsDisk(t testing.TB, path string, size int64, efiSrc string, winFiles, recFiles map[string][]byte) []Partition {
	t.Helper()
	must(t, truncate(path, size))
	testutil.Run(t, "sgdisk", "-U", "6d3f6b43-5b0a-4c5e-9a43-1f7c2e8d0101",
		"-n1:2048:+16M", "-t1:ef00", "-c1:EFI system partition", "-u1:6d3f6b43-5b0a-4c5e-9a43-1f7c2e8d0111",
		"-n2:0:+16M", "-t2:0c01", "-c2:Microsoft reserved partition", "-u2:6d3f6b43-5b0a-4c5e-9a43-1f7c2e8d0112",
		"-n3:0:-16M", "-t3:0700", "-c3:Basic data partition", "-u3:6d3f6b43-5b0a-4c5e-9a43-1f7c2e8d0113",
		"-n4:0:0", "-t4:2700", "-c4:Recovery", "-u4:6d3f6b43-5b0a-4c5e-9a43-1f7c2e8d0114", path)
	parts := partitions(t, path)
	if len(parts) != 4 {
		t.Fatalf("sgdisk made %d partitions, want 4", len(parts))
	}
	FATPartition(t, path, parts[0], efiSrc, "-F", "16", "-s", "1")
	NTFSPartition(t, path, parts[2], "Windows", winFiles)
	NTFSPartition(t, path, parts[3], "Recovery", recFiles)
	return parts
}

// NTFSPartition makes an NTFS filesystem (mkntfs) in partition p of the
// disk at path and copies files into its root directory with ntfscp, no
// mount needed: a name "FILE:STREAM" is written as the alternate data
// stream STREAM of FILE (ntfscp -N), after FILE itself. Files get the
// modification time FixedTime.
func NTFSPartition(t testing.TB, path string, p Partition, label string, files map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "part.img")
	must(t, truncate(img, p.Size))
	testutil.Run(t, "mkntfs", "-F", "-Q", "-q", "-L", label, "-p", strconv.FormatInt(p.Offset/512, 10),
		"-H", "255", "-S", "63", img)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	// Files before their streams: "a" sorts before "a:s".
	slices.Sort(names)
	for i, n := range names {
		src := filepath.Join(dir, strconv.Itoa(i))
		must(t, os.WriteFile(src, files[n], 0o644))
		must(t, os.Chtimes(src, FixedTime, FixedTime))
		if file, stream, ok := strings.Cut(n, ":"); ok {
			testutil.Run(t, "ntfscp", "-q", "-N", stream, img, src, file)
		} else {
			testutil.Run(t, "ntfscp", "-q", "-t", img, src, n)
		}
	}
	b, err := os.ReadFile(img)
	must(t, err)
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	defer fh.Close()
	_, err = fh.WriteAt(b, p.Offset)
	must(t, err)
}

// BtrfsFrom builds a bare btrfs disk (no partition table) of size bytes at
// path, filled from srcDir by mkfs.btrfs --rootdir (at least 128 MiB; the
// file stays sparse where mkfs leaves it so).
func BtrfsFrom(t testing.TB, path string, size int64, srcDir string, extra ...string) {
	t.Helper()
	must(t, truncate(path, size))
	args := append([]string{"-q", "-f", "-U", "3c1b6a4e-2d5f-4e8a-9b7c-1d2e3f4a0005"}, extra...)
	testutil.Run(t, "mkfs.btrfs", append(args, "--rootdir", srcDir, path)...)
}

//go:build linux

package btrfs

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/fs/fstest"
)

// mkfsOptions is what mkfs.btrfs --rootdir keeps: everything, with
// modification times to the second (btrfs-progs 6.2).
var mkfsOptions = fstest.Options{MtimeGranularity: time.Second}

// TestConformance holds the reader to the contract every filesystem reader
// passes (fs/fstest), for each checksum algorithm btrfs offers.
func TestConformance(t *testing.T) {
	src := sourceTree(t)
	for _, csum := range []string{"crc32c", "xxhash", "sha256", "blake2"} {
		t.Run(csum, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			mkfs(t, src, img, "--csum", csum)
			opt := mkfsOptions
			opt.SkipTestFS = csum != "crc32c" // once is enough: it reads every file byte by byte
			fstest.Check(t, openImage(t, img, Options{}), src, opt)
		})
	}
}

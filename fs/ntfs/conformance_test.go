//go:build linux

package ntfs

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/fs/fstest"
)

// ntfs3gOptions is what an NTFS image written through ntfs-3g keeps:
// times to 100 ns, hard links, symlinks (Interix), streams as xattrs; no
// POSIX owners or modes.
var ntfs3gOptions = fstest.Options{MtimeGranularity: 100 * time.Nanosecond, NoOwners: true, NoModes: true}

// TestConformance holds the reader to the contract every filesystem reader
// passes (fs/fstest), on a plain and on a compressed volume (mkntfs -C:
// ntfs-3g writes LZNT1).
func TestConformance(t *testing.T) {
	src := sourceTree(t)
	for _, c := range []struct {
		name string
		args []string
	}{{"plain", nil}, {"compressed", []string{"-C"}}} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			build(t, src, img, c.args...)
			opt := ntfs3gOptions
			opt.SkipTestFS = c.name != "plain"
			fstest.Check(t, openImage(t, img, Options{}), src, opt)
		})
	}
}

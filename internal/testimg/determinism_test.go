package testimg

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The images TestImagesDeterministic builds, with Debian 12's tools.
const (
	gptSHA = "a30ec970bcbcd1c03d4e85c25774594430c22e6ff04ec28bffca105d27d8cbb3"
	xfsSHA = "cea09f2a29f605187895be0d8f87bbf5d659729aa22f8f39bcd9bf839fda667e"
)

// TestImagesDeterministic builds each image from a tree made anew: with
// Debian 12's tools as root, its bytes must be the pinned ones; elsewhere
// the same when built again a second later.
func TestImagesDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds disk images")
	}
	build := func() (gpt, xfs, efi [32]byte) {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		must(t, os.Mkdir(src, 0o755))
		Tree(t, src, TreeOptions{Files: 40, Seed: 5})
		GPTExt4(t, filepath.Join(dir, "gpt.raw"), 48<<20, src)
		XFS(t, filepath.Join(dir, "xfs.raw"), 300<<20)
		EFIDisk(t, filepath.Join(dir, "efi.raw"))
		return FileSHA256(t, filepath.Join(dir, "gpt.raw")), FileSHA256(t, filepath.Join(dir, "xfs.raw")), FileSHA256(t, filepath.Join(dir, "efi.raw"))
	}
	g1, x1, e1 := build()
	// With the tools the numbers were measured with, run as root, the
	// bytes are these on every machine; elsewhere, at least the same twice.
	if same, _ := SameTools(t); same && os.Geteuid() == 0 {
		for _, h := range []struct {
			name string
			got  [32]byte
			want string
		}{{"GPTExt4", g1, gptSHA}, {"XFS", x1, xfsSHA}} {
			if fmt.Sprintf("%x", h.got) != h.want {
				t.Errorf("%s: sha256 %x, want %s", h.name, h.got, h.want)
			}
		}
		return
	}
	time.Sleep(1100 * time.Millisecond)
	g2, x2, e2 := build()
	if g1 != g2 {
		t.Error("GPTExt4 made different bytes twice")
	}
	if x1 != x2 {
		t.Error("XFS made different bytes twice")
	}
	if e1 != e2 {
		t.Error("EFIDisk made different bytes twice")
	}
}

// TestDiskDataPinned: DiskData is what pinned files elsewhere were made
// from (codec/zstd/testdata): it must not change. Add a new generator
// rather than change this one.
func TestDiskDataPinned(t *testing.T) {
	d := DiskData(11<<20, 1)
	const want = "dd6af69f162e8ac979129d92773b8ac96c01583c3056061741f58ebb32a7e0d6"
	if got := fmt.Sprintf("%x", sha256.Sum256(d)); got != want {
		t.Errorf("DiskData(11 MiB, 1) has sha256 %s, want %s", got, want)
	}
}

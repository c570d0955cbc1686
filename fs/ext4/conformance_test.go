//go:build linux

package ext4

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/fs/fstest"
)

// TestConformance holds the ext4 reader to the contract every filesystem
// reader passes (fs/fstest), on a clean image and on one hit by garbage.
func TestConformance(t *testing.T) {
	src, _ := liteSource.get(t)
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, src, img, "40M", "-t", "ext4", "-b", "1024")
	fstest.Check(t, openImage(t, img, Options{}), src,
		fstest.Options{MtimeGranularity: time.Second, Extra: []string{"/lost+found"}})

	// 64 KiB of garbage early in the volume (inode tables, directories).
	dmg := fstest.Garbage(t, img, 300<<10, 64<<10, 7)
	c := fstest.CheckDamaged(t, openImage(t, img, Options{Damage: dmg}), dmg, src)
	t.Logf("%+v", c)
	if c.Intact+c.Damaged+c.Missing != c.Files {
		t.Errorf("counts %+v do not add up", c)
	}
}

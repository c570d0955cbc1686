package rescue

import (
	"fmt"
	"strconv"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/volume"
)

// copySlack is what the copies may read and write beyond the bytes the
// disks hold (rounding; small files of a filesystem whose blocks are
// shared legitimately, such as journal copies).
const copySlack = 64 << 20

// outputBudget returns the one budget for every file copy of a rescue. The
// guest chooses its volumes' sizes and its filesystems' content: a crafted
// filesystem can name one inode many times or point many inodes at the
// same blocks, and a crafted partition table can list the same filesystem
// a hundred times, each turning a small backup into any amount of output.
// The copies may therefore write at most the bytes the backup's disks hold
// (stored clusters: what the archive holds, not what its header claims),
// and read at most the bytes of the disks that the volumes cover, each
// counted once however many volumes overlap it. maxOutput, when set,
// replaces the cap on writing (and raises the one on reading to it).
// Filesystems that share blocks by design (btrfs snapshots, XFS reflinks)
// can legitimately need more: their readers will have to say how much.
func outputBudget(devs []report.Device, vols []volume.Volume, maxOutput int64) *fs.Budget {
	b := &fs.Budget{}
	covered := map[string]*damage.Map{} // per device: the union of its volumes
	for _, v := range vols {
		if v.Kind == "lv" {
			continue // inside a PV, itself a volume
		}
		if covered[v.Device] == nil {
			covered[v.Device] = &damage.Map{}
		}
		covered[v.Device].Add(v.Offset, v.Size, damage.Lost)
	}
	for _, d := range devs {
		b.MaxRead += covered[d.Name].Count(0, d.Size, damage.Lost)
		b.MaxWrite += d.Stored()
	}
	b.MaxRead += copySlack
	b.MaxWrite += copySlack
	if maxOutput > 0 {
		b.MaxWrite = maxOutput
		b.MaxRead = max(b.MaxRead, maxOutput)
	}
	return b
}

// budgetMessage says why the copies stopped, for the report.
func budgetMessage(b *fs.Budget, maxOutput int64) string {
	what := fmt.Sprintf("%s of file data written, as much as the backup's disks hold", ui.Bytes(b.Written))
	switch {
	case b.Stopped == "read":
		what = fmt.Sprintf("%s of file data read, as much as the volumes cover", ui.Bytes(b.Read))
	case maxOutput > 0:
		what = fmt.Sprintf("%s of file data written (--max-output %d)", ui.Bytes(b.Written), maxOutput)
	}
	return "file copies stopped: " + what + "; the filesystems name the same data many times " +
		"(damaged or crafted); the disk images are complete, and --max-output raises the cap"
}

// sameVolume finds an earlier volume that is the same filesystem as v: the
// same start and size on the same disk, and the same type and uuid.
// Partitions that overlap that way are read once; logical volumes are not
// matched (their later segments may differ), nor are partitions of other
// sizes (one may hold more of the filesystem): the output budget bounds
// those.
type sameVolume map[string]string

func (s sameVolume) seen(v volume.Volume) (string, bool) {
	if v.FS == "" || v.Kind == "lv" {
		return "", false
	}
	key := v.Device + "\x00" + strconv.FormatInt(v.Offset, 10) + "\x00" + strconv.FormatInt(v.Size, 10) + "\x00" + v.FS + "\x00" + v.UUID
	if first, ok := s[key]; ok {
		return first, true
	}
	s[key] = v.ID
	return "", false
}

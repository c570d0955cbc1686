// Package volume finds the volumes inside a guest's disk images: MBR and GPT
// partitions, LVM2 logical volumes, and whole-disk filesystems, and says what
// each holds (by superblock magic) and how much of it lies in damage.
package volume

import (
	"io"

	"github.com/vzsalvage/vzsalvage/damage"
)

// Disk is one disk image of a guest.
type Disk struct {
	// Name is the device name ("drive-scsi0") or, for a plain image file,
	// its base name without extension. Volume ids start with it.
	Name string
	R    io.ReaderAt
	Size int64
	// Damage lists the disk's byte ranges not known to be right (nil: none).
	Damage *damage.Map
}

// Volume is a byte range (or, for LVM, a mapping) of one or more disks that
// may hold a filesystem.
type Volume struct {
	// ID is stable and unique among the volumes of one guest:
	// "drive-scsi0" (whole disk), "drive-scsi0-p3" (partition 3),
	// "drive-scsi0-vg0-root" (LV root of VG vg0 whose first segment lies on
	// drive-scsi0). Every command accepts it.
	ID string
	// Device is the disk the volume lies on (for LVs: the disk of the
	// first segment).
	Device string
	// Offset is the byte offset in Device (for LVs: of the first segment).
	Offset int64
	Size   int64
	// Kind is "disk", "partition" or "lv".
	Kind string
	// Scheme is the partitioning that defined it: "gpt", "mbr", "lvm", or "".
	Scheme string
	// Index is the partition number (1-based) or 0.
	Index int
	// PartType is the partition type (GPT type GUID or MBR type byte as
	// "0x83") with a human name where known; the LV's segment type for LVs.
	PartType string
	// Name is the GPT partition name or the LV name.
	Name string
	// FS is what the volume's content looks like: "ext2", "ext3", "ext4",
	// "xfs", "btrfs", "vfat", "exfat", "ntfs", "swap", "crypto_LUKS",
	// "zfs_member", "LVM2_member", or "" when nothing was recognised.
	FS    string
	UUID  string
	Label string
	// R reads the volume's bytes (offset 0 = the volume's first byte).
	R io.ReaderAt
	// Damage lists the volume's byte ranges not known to be right, in
	// volume offsets (nil: none).
	Damage *damage.Map
	// Notes says what was unusual: "primary GPT damaged, backup used",
	// "LVM metadata: newest copy bad, seqno 4 used", "thin volume: not read".
	Notes []string
}

package source

import (
	"fmt"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/btrfs"
	"github.com/vzsalvage/vzsalvage/fs/ext4"
	"github.com/vzsalvage/vzsalvage/fs/fat"
	"github.com/vzsalvage/vzsalvage/fs/ntfs"
	"github.com/vzsalvage/vzsalvage/fs/xfs"
	"github.com/vzsalvage/vzsalvage/volume"
)

// FSOptions control how a filesystem is opened.
type FSOptions struct {
	// NoJournal reads ext3/ext4 and XFS as on disk (like mount -o
	// norecovery) instead of replaying a dirty journal or log in memory.
	NoJournal bool
}

// ErrUnsupported is wrapped when vzsalvage has no reader for a volume's
// filesystem (yet).
var ErrUnsupported = fmt.Errorf("no reader for this filesystem")

// A Reader opens one kind of filesystem on a volume, read-only; the
// volume's damage map (v.Damage) tells it which metadata to distrust.
type Reader func(v volume.Volume, opt FSOptions) (fs.FS, error)

// Readers is the one registry of filesystem readers, keyed by the type
// names volume.Detect gives (its probes, in volume/detect.go, recognise the
// filesystems; these read them). To add a filesystem: write its reader as
// a package under fs/ (fs/ext4 is the model), hold it to the shared
// contract with fs/fstest in its tests, make sure volume.Detect names it,
// and add it here.
var Readers = map[string]Reader{
	"ext2":  openExt4,
	"ext3":  openExt4,
	"ext4":  openExt4,
	"tar":   openTar, // a container backup's root filesystem (container.go)
	"xfs":   openXFS,
	"vfat":  openFAT,
	"exfat": openFAT,
	"btrfs": openBtrfs,
	"ntfs":  openNTFS,
}

func openExt4(v volume.Volume, opt FSOptions) (fs.FS, error) {
	mode := ext4.Auto
	if opt.NoJournal {
		mode = ext4.OnDisk
	}
	return ext4.Open(v.R, v.Size, ext4.Options{Journal: mode, Damage: v.Damage})
}

func openXFS(v volume.Volume, opt FSOptions) (fs.FS, error) {
	mode := xfs.LogAuto
	if opt.NoJournal {
		mode = xfs.LogOnDisk
	}
	return xfs.Open(v.R, v.Size, xfs.Options{Damage: v.Damage, Log: mode})
}

func openFAT(v volume.Volume, _ FSOptions) (fs.FS, error) {
	return fat.Open(v.R, v.Size, fat.Options{Damage: v.Damage})
}

func openBtrfs(v volume.Volume, _ FSOptions) (fs.FS, error) {
	return btrfs.Open(v.R, v.Size, btrfs.Options{Damage: v.Damage})
}

func openNTFS(v volume.Volume, _ FSOptions) (fs.FS, error) {
	return ntfs.Open(v.R, v.Size, ntfs.Options{Damage: v.Damage})
}

// OpenFS opens the filesystem on a volume with its registered reader.
func OpenFS(v volume.Volume, opt FSOptions) (fs.FS, error) {
	if open := Readers[v.FS]; open != nil {
		return open(v, opt)
	}
	switch v.FS {
	case "":
		return nil, fmt.Errorf("%s: %w (no filesystem recognised)", v.ID, ErrUnsupported)
	case "crypto_LUKS":
		return nil, fmt.Errorf("%s: encrypted (LUKS): %w", v.ID, ErrUnsupported)
	}
	return nil, fmt.Errorf("%s: %s: %w", v.ID, v.FS, ErrUnsupported)
}

// Find returns the volume with the given id.
func Find(vols []volume.Volume, id string) (volume.Volume, error) {
	var ids []string
	for _, v := range vols {
		if v.ID == id {
			return v, nil
		}
		ids = append(ids, v.ID)
	}
	return volume.Volume{}, fmt.Errorf("no volume %q (volumes: %v)", id, ids)
}

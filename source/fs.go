package source

import (
	"fmt"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/ext4"
	"github.com/vzsalvage/vzsalvage/volume"
)

// FSOptions control how a filesystem is opened.
type FSOptions struct {
	// NoJournal reads ext3/ext4 as on disk (like mount -o norecovery)
	// instead of replaying a dirty journal in memory.
	NoJournal bool
}

// ErrUnsupported is wrapped when vzsalvage has no reader for a volume's
// filesystem (yet).
var ErrUnsupported = fmt.Errorf("no reader for this filesystem")

// OpenFS opens the filesystem on a volume, read-only. The volume's damage
// map tells the reader which metadata to distrust.
func OpenFS(v volume.Volume, opt FSOptions) (fs.FS, error) {
	switch v.FS {
	case "ext2", "ext3", "ext4":
		mode := ext4.Auto
		if opt.NoJournal {
			mode = ext4.OnDisk
		}
		return ext4.Open(v.R, v.Size, ext4.Options{Journal: mode, Damage: v.Damage})
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

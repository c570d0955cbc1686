package source

import (
	"fmt"
	"os"

	"github.com/vzsalvage/vzsalvage/image/qcow2"
	"github.com/vzsalvage/vzsalvage/volume"
)

// imageDisk turns an image file into a disk: qcow2 images are read through
// their tables (clusters they cannot map are damage), anything else as raw
// bytes.
func imageDisk(f *os.File, size int64, name string) (volume.Disk, error) {
	var magic [4]byte
	f.ReadAt(magic[:], 0)
	if string(magic[:]) != "QFI\xfb" {
		return volume.Disk{Name: name, R: f, Size: size}, nil
	}
	img, err := qcow2.Open(f, size)
	if err != nil {
		return volume.Disk{}, fmt.Errorf("%s: %w", f.Name(), err)
	}
	d := volume.Disk{Name: name, R: img, Size: img.Size()}
	if dm := img.Damage(); !dm.Empty() {
		d.Damage = dm
	}
	return d, nil
}

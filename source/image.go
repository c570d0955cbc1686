package source

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vzsalvage/vzsalvage/volume"
)

// openImage opens a disk image file (raw or qcow2) read-only as one disk,
// named after the file (without its extension).
func openImage(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	name := filepath.Base(path)
	name = strings.TrimSuffix(name, filepath.Ext(name))
	name = strings.TrimPrefix(name, "disk-")
	s := &Source{Path: path, Kind: KindImage, Dir: filepath.Dir(path), closers: []io.Closer{f}}
	disk, err := imageDisk(f, st.Size(), name)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.Disks = []volume.Disk{disk}
	return s, nil
}

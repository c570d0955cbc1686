package source

import (
	"fmt"
	"io"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/payload"
	"github.com/vzsalvage/vzsalvage/volume"
)

// openContainer opens a container backup: one read of the stream builds
// its index (nothing is written); files are then read by decoding the
// stream again, forward, as they are asked for.
func openContainer(path string, opt Options) (*Source, error) {
	if opt.Notify != nil {
		opt.Notify(fmt.Sprintf("reading the index of %s", path))
	}
	res, err := extract.Verify(path, extract.Options{Progress: opt.Progress})
	if err != nil {
		return nil, err
	}
	sr := ctar.NewStreamReader(func() (io.ReadCloser, error) { return payload.OpenDecoded(path, codec.Options{}) })
	v := ContainerVolume(ctar.NewVolume([]ctar.Generation{{Index: res.Tar, R: sr, Name: path}}))
	s := &Source{Path: path, Kind: KindArchive, Report: res.Report, vols: []volume.Volume{v}}
	s.closers = append(s.closers, sr)
	return s, nil
}

// ContainerVolume turns a container's volume into the volume every command
// reads: id "rootfs", filesystem "tar".
func ContainerVolume(cv *ctar.Volume) volume.Volume {
	return volume.Volume{ID: extract.RootfsID, Kind: "tar", FS: "tar", Size: cv.Size, R: cv, Damage: cv.Damage}
}

// openTar returns the tree of a container's volume.
func openTar(v volume.Volume, _ FSOptions) (fs.FS, error) {
	cv, ok := v.R.(*ctar.Volume)
	if !ok {
		return nil, fmt.Errorf("%s: a tar stream is read only from a container backup: %w", v.ID, ErrUnsupported)
	}
	return cv.FS, nil
}

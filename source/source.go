// Package source turns what a user points vzsalvage at — a backup archive,
// a directory written by extract or rescue, or a disk image file (raw or
// qcow2) — into disks with their damage maps, their volumes, and the
// filesystems on them.
package source

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vzsalvage/vzsalvage/archive"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/payload"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/volume"
)

// Kinds of source.
const (
	KindArchive = "archive"
	KindDir     = "directory"
	KindImage   = "image"
)

// Options control Open.
type Options struct {
	// CacheDir, if set, holds extracted archives for reuse: an archive is
	// extracted there once per path, size and modification time. Without
	// it, an archive's disks are read into unnamed temporary files that
	// vanish when the Source is closed.
	CacheDir string
	// Progress is called while an archive is extracted.
	Progress func(done, total int64)
	// Notify is called with a one-line message before long work.
	Notify func(msg string)
}

// Source is an opened source of disks.
type Source struct {
	Path string
	Kind string
	// Dir is the directory holding the images (extract directory or cache).
	Dir   string
	Disks []volume.Disk
	// Report is the damage account of an archive or extract directory (nil
	// for an image file).
	Report  *report.Report
	closers []io.Closer
	// vols, when set, are the volumes (a container's root filesystem)
	// instead of what the disks hold.
	vols []volume.Volume
}

// Close closes the disk images.
func (s *Source) Close() error {
	var first error
	for _, c := range s.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.closers = nil
	return first
}

// Damaged says in one line what the source's damage account reports
// damaged ("" for an intact source or an image file, which has none).
func (s *Source) Damaged() string {
	if s.Report == nil {
		return ""
	}
	var bad int64
	for _, d := range s.Report.Devices {
		bad += d.Damage.Total(damage.Tainted)
	}
	what := "disk data"
	if len(s.Report.Devices) == 0 { // a container: its root filesystem's stream
		what = "its data"
		for _, v := range s.Report.Volumes {
			bad += v.DamagedBytes
		}
	}
	for _, a := range s.Report.Archives {
		if a.Status != report.Intact {
			return fmt.Sprintf("the backup is damaged: %s of %s lost or unverified (see 'vzsalvage verify' or 'vzsalvage rescue')", ui.Bytes(bad), what)
		}
	}
	if bad > 0 {
		return fmt.Sprintf("%s of %s lost or unverified", ui.Bytes(bad), what)
	}
	return ""
}

// Volumes finds the volumes on the source's disks (a container backup
// has one: its root filesystem).
func (s *Source) Volumes() []volume.Volume {
	if s.vols != nil {
		return s.vols
	}
	return volume.Discover(s.Disks)
}

// Open opens a source.
func Open(path string, opt Options) (*Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return openDir(path)
	}
	backup, err := payload.IsBackup(path)
	switch {
	case err != nil:
		return nil, err
	case backup:
		return openArchive(path, st, opt)
	}
	if n := archive.ParseName(path); n.Payload != "" || n.Ext != "" {
		// not read as a raw disk: its start is damaged, or it is no backup
		return nil, fmt.Errorf("%s: named like a vzdump backup, but neither compressed (zstd, gzip, lzo) nor a VMA or tar stream (damaged at its start, or not a backup)", path)
	}
	return openImage(path)
}

// openDir opens a directory written by extract (disk-*.raw + damage.json)
// or rescue (disks/ + report.json).
func openDir(dir string) (*Source, error) {
	if st, err := os.Stat(filepath.Join(dir, "disks")); err == nil && st.IsDir() {
		s, err := openDir(filepath.Join(dir, "disks"))
		if err == nil {
			s.Path = dir
		}
		return s, err
	}
	s := &Source{Path: dir, Kind: KindDir, Dir: dir}
	rep, err := report.ReadFile(filepath.Join(dir, "damage.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "damage.json"), err)
	}
	if rep != nil {
		s.Report = rep
		for _, d := range rep.Devices {
			if d.Image == "" {
				continue
			}
			if err := s.addImage(filepath.Join(dir, filepath.Base(d.Image)), d.Name, d); err != nil {
				s.Close()
				return nil, err
			}
		}
		return s, nil
	}
	names, _ := filepath.Glob(filepath.Join(dir, "disk-*.raw"))
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no disk images (disk-*.raw) and no damage.json here", dir)
	}
	for _, p := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "disk-"), ".raw")
		if err := s.addImage(p, name, report.Device{}); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// addImage opens an image file read-only as a disk.
func (s *Source) addImage(path, name string, d report.Device) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.closers = append(s.closers, f)
	disk, err := imageDisk(f, st.Size(), name) // raw, or qcow2 (extract --format qcow2)
	if err != nil {
		return err
	}
	disk.Damage = d.Damage
	if d.Size > 0 && d.Size != disk.Size {
		return fmt.Errorf("%s: a %d-byte disk, but the report says %d", path, disk.Size, d.Size)
	}
	s.Disks = append(s.Disks, disk)
	return nil
}

// openArchive reads an archive for browsing. A container backup is read
// through its tar index (container.go). A VM backup's disks: with a cache
// directory the images are extracted there once (per path, size and
// modification time) and kept for later commands; without one they go to
// unnamed temporary files in the system's temporary directory, which
// disappear when the source is closed or the process ends, whatever
// happens: nothing is left behind, and no home directory is needed.
func openArchive(path string, st os.FileInfo, opt Options) (*Source, error) {
	if k, err := payload.KindOf(path); err != nil {
		return nil, err
	} else if k == payload.Tar {
		return openContainer(path, opt)
	}
	if opt.CacheDir == "" {
		return openUnlinked(path, opt)
	}
	abs, _ := filepath.Abs(path)
	key := sha256.Sum256([]byte(abs + "\x00" + strconv.FormatInt(st.Size(), 10) + "\x00" + st.ModTime().String()))
	dir := filepath.Join(opt.CacheDir, hex.EncodeToString(key[:8]))
	if _, err := os.Stat(filepath.Join(dir, "damage.json")); err != nil {
		if opt.Notify != nil {
			opt.Notify(fmt.Sprintf("extracting %s to %s (once; delete it when done)", filepath.Base(path), dir))
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		if _, err := extract.Extract(path, dir, extract.Options{Force: true, Progress: opt.Progress}); err != nil {
			return nil, err
		}
	}
	s, err := openDir(dir)
	if err != nil {
		return nil, err
	}
	s.Path, s.Kind = path, KindArchive
	return s, nil
}

// openUnlinked reads an archive's disks into unnamed temporary files.
func openUnlinked(path string, opt Options) (*Source, error) {
	tmp := os.TempDir()
	if opt.Notify != nil {
		opt.Notify(fmt.Sprintf("reading %s (its disks go to unnamed temporary files in %s, gone when done; --cache DIR keeps them for the next command)", filepath.Base(path), tmp))
	}
	res, err := extract.Extract(path, tmp, extract.Options{Unlinked: true, Progress: opt.Progress})
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return nil, fmt.Errorf("no space left in %s for the disks of %s: pass --cache DIR on a larger filesystem, or run 'vzsalvage extract' once and point this command at its directory", tmp, filepath.Base(path))
		}
		return nil, err
	}
	s := &Source{Path: path, Kind: KindArchive, Report: res.Report}
	for i, d := range res.Report.Devices {
		f := res.Files[i]
		s.closers = append(s.closers, f)
		s.Disks = append(s.Disks, volume.Disk{Name: d.Name, R: f, Size: d.Size, Damage: d.Damage})
	}
	return s, nil
}

package extract

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vzsalvage/vzsalvage/image/qcow2"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/vma"
)

// imageSet writes the disk images and configs of one archive into a
// directory. Images are written under temporary names and renamed when the
// read is complete.
type imageSet struct {
	dir   string
	force bool
	// unlinked keeps the images as unnamed temporary files (removed as
	// soon as they are created, read through their open descriptors): no
	// file name, no config, no damage.json is left behind.
	unlinked bool
	// qcow2 writes images as qcow2 (compressed with qcow2Compress) rather
	// than sparse raw files, where the device's size is known.
	qcow2, qcow2Compress bool
	files                map[uint8]*image
	zero                 []byte
	// names holds every file name given out, so that two devices or
	// configs whose names map to the same file never overwrite each other.
	names map[string]bool
	// configFiles maps each config's name in the archive to the file it
	// was written to.
	configFiles map[string]string
	// newConfigs are the config files written that did not exist before:
	// abort removes them unless the read is done.
	newConfigs []string
	done       bool
	// over, when set, makes the images of its devices be written in place
	// (overlay.go).
	over *Overlay
	// budget: the write ranges the images may still keep (writes); 0:
	// writes are not tracked
	budget int
	// run: blocks that follow each other on a raw image and in the VMA
	// reader's buffer, written at once (flush) when the next do not
	// follow, or before the reader moves them (vma.Reader.DataKept)
	run pendingRun
}

// pendingRun is a write held back to be joined with the next.
type pendingRun struct {
	im   *image
	off  int64
	data []byte
}

// maxRun bounds a joined write: past 1 MiB a larger write costs as much
// per byte (64 KiB writes, one per cluster, cost 25 ms more of system
// time per 512 MiB than 1 MiB ones).
const maxRun = 1 << 20

// put writes p at off of im, joined with the run held back when it
// follows it on the image and in memory (a raw image only: an image
// written in place logs each write, a qcow2 one packs its own).
func (s *imageSet) put(im *image, p []byte, off int64) error {
	if im.log != nil || im.q != nil {
		if err := s.flush(); err != nil {
			return err
		}
		return im.writeAt(p, off)
	}
	r := &s.run
	if r.im == im && r.off+int64(len(r.data)) == off && len(r.data)+len(p) <= maxRun && follows(r.data, p) {
		r.data = r.data[:len(r.data)+len(p)]
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	*r = pendingRun{im: im, off: off, data: p}
	return nil
}

// follows reports whether b starts in memory where a ends (in a's array).
func follows(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && cap(a) >= len(a)+len(b) && &a[:len(a)+1][len(a)] == &b[0]
}

// flush writes the run held back.
func (s *imageSet) flush() error {
	r := &s.run
	if r.im == nil {
		return nil
	}
	im, data, off := r.im, r.data, r.off
	*r = pendingRun{}
	return im.writeAt(data, off)
}

func newImageSet(dir string, force bool) *imageSet {
	return &imageSet{dir: dir, force: force, files: map[uint8]*image{}, names: map[string]bool{}, configFiles: map[string]string{}}
}

// ourName reports whether a file name is one extract writes itself
// (damage.json, disk-*.raw, disk-*.qcow2, temporary .*.partial files),
// which a config from the archive must not take.
func ourName(name string) bool {
	return name == "damage.json" || strings.HasPrefix(name, ".") ||
		strings.HasPrefix(name, "disk-") && (strings.HasSuffix(name, ".raw") || strings.HasSuffix(name, ".qcow2"))
}

// unique returns name, or name with a suffix before its extension, so
// that no two outputs of one archive share a file name.
func (s *imageSet) unique(name, suffix string) string {
	n := name
	for i := 1; s.names[n]; i++ {
		ext := filepath.Ext(name)
		n = fmt.Sprintf("%s-%s%s", strings.TrimSuffix(name, ext), suffix, ext)
		if i > 1 {
			n = fmt.Sprintf("%s-%s-%d%s", strings.TrimSuffix(name, ext), suffix, i, ext)
		}
	}
	s.names[n] = true
	return n
}

type image struct {
	f     *os.File
	tmp   string
	final string
	q     *qcow2.Writer // writes into f, for qcow2 images
	size  int64
	w     writes     // the ranges written
	log   *ChangeLog // an image written in place: its changes (f is the log's)
}

// writeAt writes p at off of the device (the last block may reach past
// the device's end: a qcow2 image gets only what lies within it, an image
// written in place too, as the fresh one is cut to the device's size).
func (im *image) writeAt(p []byte, off int64) error {
	im.w.add(off, int64(len(p)))
	if im.log != nil {
		if off >= im.size {
			return nil
		}
		return im.log.write(im.f, p[:min(int64(len(p)), im.size-off)], off)
	}
	if im.q == nil {
		_, err := im.f.WriteAt(p, off)
		return err
	}
	if off >= im.size {
		return nil
	}
	_, err := im.q.WriteAt(p[:min(int64(len(p)), im.size-off)], off)
	return err
}

// ImageName returns the file name of a device's image: disk-<device>.raw.
func ImageName(dev string) string { return "disk-" + SafeFileName(dev) + ".raw" }

// target refuses to overwrite an existing file unless forced.
func (s *imageSet) target(name string) (string, error) {
	p := filepath.Join(s.dir, name)
	if _, err := os.Lstat(p); err == nil && !s.force {
		return "", fmt.Errorf("%s exists (use --force to overwrite)", p)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return p, nil
}

func (s *imageSet) writeConfigs(cfgs []vma.Config) error {
	for _, c := range cfgs {
		name := SafeFileName(filepath.Base(c.Name))
		if ourName(name) {
			name = "config-" + strings.TrimPrefix(name, ".")
		}
		name = s.unique(name, "config")
		s.configFiles[c.Name] = name
		p, err := s.target(name)
		if err != nil {
			return err
		}
		_, existed := os.Lstat(p)
		if err := report.WriteFileAtomic(p, c.Data, 0o644); err != nil {
			return err
		}
		if existed != nil {
			s.newConfigs = append(s.newConfigs, p)
		}
	}
	return nil
}

// open creates the temporary image file of a device, sized to the device.
func (s *imageSet) open(d vma.Device) (*image, error) {
	if im := s.files[d.ID]; im != nil {
		return im, nil
	}
	if im, err := s.openInPlace(d); im != nil || err != nil {
		return im, err
	}
	asQcow2 := s.qcow2 && d.Size > 0 && !s.unlinked
	name := ImageName(d.Name)
	if asQcow2 {
		name = strings.TrimSuffix(name, ".raw") + ".qcow2"
	}
	final, err := s.target(s.unique(name, fmt.Sprint(d.ID)))
	if s.unlinked {
		final, err = "", nil
	}
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.dir, "."+filepath.Base(final)+".partial*")
	if err != nil {
		return nil, err
	}
	if s.unlinked {
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return nil, err
		}
	}
	if d.Size > 0 && !asQcow2 {
		if err := f.Truncate(d.Size); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	im := &image{f: f, tmp: f.Name(), final: final, size: d.Size, w: writes{budget: &s.budget}}
	if asQcow2 {
		if im.q, err = qcow2.NewWriter(f, d.Size, qcow2.WriterOptions{Compress: s.qcow2Compress}); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
	}
	s.files[d.ID] = im
	return im, nil
}

// openInPlace opens, for an overlay, the first pass's image of a device
// (nil when it has none of the device's size, or its writes are unknown).
func (s *imageSet) openInPlace(d vma.Device) (*image, error) {
	o := s.over
	if o == nil || s.qcow2 || s.unlinked || d.Size <= 0 {
		return nil, nil
	}
	path, ok := o.Images[d.Name]
	if !ok || o.Written[d.Name] == nil {
		return nil, nil
	}
	if st, err := os.Stat(path); err != nil || st.Size() != d.Size {
		return nil, nil
	}
	s.unique(filepath.Base(path), fmt.Sprint(d.ID))
	f, err := o.Log.open(path)
	if err != nil {
		return nil, err
	}
	im := &image{f: f, final: path, size: d.Size, log: o.Log, w: writes{budget: &s.budget}}
	s.files[d.ID] = im
	return im, nil
}

// write stores a cluster's blocks, one write per run of adjacent blocks;
// with skip it only counts them as written (an overlay's image holds them
// already).
func (s *imageSet) write(vr *vma.Reader, c *vma.Cluster, skip bool) error {
	im := s.files[c.Dev]
	if im == nil {
		// headerless salvage: the device is learned from its clusters
		var err error
		if im, err = s.open(vma.Device{ID: c.Dev, Name: fmt.Sprintf("dev%d", c.Dev)}); err != nil {
			return err
		}
	}
	// only an image written in place holds the clusters not written again
	skip = skip && im.log != nil
	base := c.Offset()
	k := 0
	for j := 0; j < vma.BlocksPerCluster; {
		if c.Mask&(1<<j) == 0 {
			if c.Rewrite {
				if s.zero == nil {
					s.zero = make([]byte, vma.BlockSize)
				}
				if skip {
					im.w.add(base+int64(j)*vma.BlockSize, vma.BlockSize)
					s.over.Skipped += vma.BlockSize
				} else if err := s.put(im, s.zero[:vma.BlockSize], base+int64(j)*vma.BlockSize); err != nil {
					return err
				}
			}
			j++
			continue
		}
		n := 1
		for j+n < vma.BlocksPerCluster && c.Mask&(1<<(j+n)) != 0 {
			n++
		}
		if skip {
			im.w.add(base+int64(j)*vma.BlockSize, int64(n)*vma.BlockSize)
			s.over.Skipped += int64(n) * vma.BlockSize
		} else if err := s.put(im, c.Data[k*vma.BlockSize:(k+n)*vma.BlockSize], base+int64(j)*vma.BlockSize); err != nil {
			return err
		}
		k += n
		j += n
	}
	if !vr.DataKept() {
		return s.flush()
	}
	return nil
}

// finish sizes and renames a device's image; it returns the final name,
// or for an unlinked set the open file, which the caller then owns.
func (s *imageSet) finish(d vma.Device) (string, *os.File, error) {
	if err := s.flush(); err != nil {
		return "", nil, err
	}
	im, err := s.open(d)
	if err != nil {
		return "", nil, err
	}
	if im.log != nil {
		return s.finishInPlace(d, im)
	}
	if im.q != nil {
		if err := im.q.Close(); err != nil {
			return "", nil, err
		}
	} else if err := im.f.Truncate(d.Size); err != nil { // blocks are whole 4 KiB; the device may end inside one
		return "", nil, err
	}
	if s.unlinked {
		f := im.f
		im.f = nil
		return "", f, nil
	}
	if err := im.f.Close(); err != nil {
		return "", nil, err
	}
	if err := os.Rename(im.tmp, im.final); err != nil {
		return "", nil, err
	}
	im.f = nil
	return filepath.Base(im.final), nil, nil
}

// abort closes and removes the images not finished and, unless the read
// is done, the configs it wrote, so that a failed read (no space left, an
// unreadable archive, an interrupt) leaves no partial output behind.
func (s *imageSet) abort() {
	if !s.done {
		for _, p := range s.newConfigs {
			os.Remove(p)
		}
	}
	for _, im := range s.files {
		if im.f != nil && im.log == nil {
			im.f.Close()
			im.f = nil
			if !s.unlinked {
				os.Remove(im.tmp)
			}
		}
	}
}

// ErrOverlayWrites: a read in place wrote too many ranges to compare
// them with the first pass's.
var ErrOverlayWrites = errors.New("extract: too many write ranges to write in place")

// finishInPlace completes an image written in place: what the first pass
// wrote and this one did not becomes zeros, as in a fresh image.
func (s *imageSet) finishInPlace(d vma.Device, im *image) (string, *os.File, error) {
	mine := im.w.ranges()
	if mine == nil {
		return "", nil, ErrOverlayWrites
	}
	for _, r := range subtract(s.over.Written[d.Name], mine) {
		for p := r.Off; p < r.End() && p < im.size; {
			n := min(r.End()-p, 1<<20)
			if int64(len(s.zero)) < n {
				s.zero = make([]byte, 1<<20)
			}
			if err := im.log.write(im.f, s.zero[:min(n, im.size-p)], p); err != nil {
				return "", nil, err
			}
			p += n
		}
	}
	return im.final, nil, nil
}

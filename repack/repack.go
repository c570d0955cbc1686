// Package repack gives a rescue back to Proxmox: it writes the disk images
// and configs of an extract or rescue directory into a clean VMA archive,
// compressed as vzdump compresses (zstd, gzip or lzo), that Proxmox's own
// restore (qmrestore, the web UI) accepts. The VM config carries a note
// that the backup was salvaged, when, and which ranges of each disk were
// zero-filled, unverified or taken from another night.
package repack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/lzo"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/image/sparse"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/pve"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/source"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Options control a repack.
type Options struct {
	// Devices, if set, names the disks to include (device names such as
	// "drive-scsi0"); the default is every disk of the directory.
	Devices []string
	// Compression is zstd (the default), gzip, lzo or none.
	Compression codec.Kind
	// Now is the time recorded in the archive and the note (default: now).
	Now time.Time
	// Progress, if set, is called with the disk bytes done and the total.
	Progress func(done, total int64)
	// Context, if set, stops the repack when done (an interrupt).
	Context context.Context
}

// Result says what was written.
type Result struct {
	Path    string
	Devices []vma.Device
	Configs []string
	// Note is the text added to the VM config's description.
	Note string
	// Size is the archive's size in bytes.
	Size int64
}

// Repack writes the disks and configs of dir (an extract or rescue
// directory) into the archive out, atomically: under a temporary name,
// renamed when complete.
func Repack(dir, out string, opt Options) (_ *Result, err error) {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	if opt.Context == nil {
		opt.Context = context.Background()
	}
	if opt.Compression == "" {
		opt.Compression = codec.Zstd
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: not an extract or rescue directory", dir)
	}
	src, err := source.Open(dir, source.Options{})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	disks, devs, err := choose(src, opt.Devices)
	if err != nil {
		return nil, err
	}
	configs, err := readConfigs(src)
	if err != nil {
		return nil, err
	}
	res := &Result{Devices: devs}
	res.Note = note(src.Report, devs, opt.Now)
	for i, c := range configs {
		if c.Name == "qemu-server.conf" {
			data, dropped := dropAbsent(c.Data, devs)
			for _, k := range dropped {
				res.Note += fmt.Sprintf("\n%s was not in the salvaged backup: marked backup=0, so Proxmox restores the VM without it.", k)
			}
			configs[i].Data = addNote(data, res.Note)
		}
		res.Configs = append(res.Configs, c.Name)
	}

	h := &vma.Header{Ctime: opt.Now, Configs: configs, Devices: devs}
	if _, err := rand.Read(h.UUID[:]); err != nil {
		return nil, err
	}
	tmp, err := report.CreateTemp(out)
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
			err = report.TargetError(err, tmp.Name(), out)
		}
	}()
	comp, err := compressor(tmp, opt.Compression, opt.Now)
	if err != nil {
		return nil, err
	}
	w, err := vma.NewWriter(comp, h)
	if err != nil {
		return nil, err
	}
	var total, sofar int64
	for _, d := range devs {
		total += d.Size
	}
	for i, d := range devs {
		err := writeDevice(w, d, disks[i], func(n int64) error {
			sofar += n
			if opt.Progress != nil {
				opt.Progress(sofar, total)
			}
			return opt.Context.Err()
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := comp.Close(); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	st, err := tmp.Stat()
	if err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, err
	}
	done = true
	res.Path, res.Size = out, st.Size()
	return res, nil
}

// choose picks the disks to write, with their VMA devices (the ids of the
// original archive where the directory's account has them).
func choose(src *source.Source, names []string) ([]io.ReaderAt, []vma.Device, error) {
	var disks []io.ReaderAt
	var devs []vma.Device
	used := map[uint8]bool{}
	for i, d := range src.Disks {
		if len(names) > 0 && !slices.Contains(names, d.Name) {
			continue
		}
		if !vma.SafeName(d.Name) {
			return nil, nil, fmt.Errorf("disk %q: not a name a VMA archive can hold", ui.Safe(d.Name))
		}
		id := uint8(0)
		if src.Report != nil && i < len(src.Report.Devices) && src.Report.Devices[i].ID > 0 && src.Report.Devices[i].ID < 256 {
			id = uint8(src.Report.Devices[i].ID)
		}
		if id == 0 || used[id] {
			for id = 1; used[id]; id++ {
			}
		}
		used[id] = true
		disks = append(disks, d.R)
		devs = append(devs, vma.Device{ID: id, Name: d.Name, Size: d.Size})
	}
	if len(devs) == 0 {
		if len(names) > 0 {
			return nil, nil, fmt.Errorf("none of the disks %v is in the directory", names)
		}
		return nil, nil, errors.New("no disk images in the directory")
	}
	return disks, devs, nil
}

// readConfigs reads the config files of the directory: those its account
// names, or *.conf and *.fw beside the images.
func readConfigs(src *source.Source) ([]vma.Config, error) {
	files := map[string]string{}
	if src.Report != nil && len(src.Report.Archives) > 0 {
		for name, file := range src.Report.Archives[0].ConfigFiles {
			files[name] = file
		}
	}
	if len(files) == 0 {
		for _, pat := range []string{"*.conf", "*.fw"} {
			m, _ := filepath.Glob(filepath.Join(src.Dir, pat))
			for _, p := range m {
				files[filepath.Base(p)] = filepath.Base(p)
			}
		}
	}
	var out []vma.Config
	for _, name := range slices.Sorted(mapKeys(files)) {
		b, err := os.ReadFile(filepath.Join(src.Dir, filepath.Base(files[name])))
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", name, err)
		}
		out = append(out, vma.Config{Name: name, Data: b})
	}
	// Proxmox's writer puts qemu-server.conf first.
	slices.SortStableFunc(out, func(a, b vma.Config) int {
		switch {
		case a.Name == "qemu-server.conf":
			return -1
		case b.Name == "qemu-server.conf":
			return 1
		}
		return 0
	})
	return out, nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// writeDevice writes every cluster of a device, reading only where the
// image holds data (holes of a sparse image are skipped without reading,
// so a mostly empty terabyte disk takes time for its data only).
func writeDevice(w *vma.Writer, d vma.Device, r io.ReaderAt, progress func(int64) error) error {
	data := sparse.NewFinder(r, d.Size)
	buf := make([]byte, vma.ClusterSize)
	n := d.Clusters()
	for c := int64(0); c < n; c++ {
		off := c * vma.ClusterSize
		size := min(int64(vma.ClusterSize), d.Size-off)
		var b []byte
		if data.Has(off, size) {
			b = buf[:size]
			if k, err := r.ReadAt(b, off); k < len(b) && !errors.Is(err, io.EOF) {
				return err
			}
		}
		if err := w.WriteCluster(d.ID, uint32(c), b); err != nil {
			return err
		}
		if c%256 == 255 || c == n-1 {
			if err := progress(min(256*vma.ClusterSize, d.Size-(c/256)*256*vma.ClusterSize)); err != nil {
				return err
			}
		}
	}
	return nil
}

// note says, for the VM config's description, that the archive was
// salvaged, when, from what, and which ranges of each disk are not the
// original's.
func note(rep *report.Report, devs []vma.Device, now time.Time) string {
	var b strings.Builder
	from := "a salvaged backup"
	if rep != nil && len(rep.Archives) > 0 {
		from = fmt.Sprintf("the salvaged backup %s (%s)", filepath.Base(rep.Archives[0].Path), rep.Archives[0].Status)
	}
	fmt.Fprintf(&b, "vzsalvage: repacked on %s from %s.", now.Format("2006-01-02 15:04"), from)
	if rep == nil {
		return b.String()
	}
	for _, d := range devs {
		for _, rd := range rep.Devices {
			if rd.Name != d.Name {
				continue
			}
			lost, bad := rd.Damage.Total(damage.Lost), rd.Damage.Total(damage.Tainted)
			var filled int64
			for _, s := range rd.Sources {
				if s.Kind == report.Filled {
					filled += s.Length
				}
			}
			switch {
			case bad == 0:
				fmt.Fprintf(&b, "\n%s: intact.", d.Name)
			default:
				fmt.Fprintf(&b, "\n%s: %s in %d ranges not the original's (%s zero-filled, %s unverified",
					d.Name, ui.Bytes(bad), rd.Damage.Len(), ui.Bytes(lost), ui.Bytes(bad-lost))
				if filled > 0 {
					fmt.Fprintf(&b, ", %s of it from another night", ui.Bytes(filled))
				}
				b.WriteString("); the ranges are in damage.json or report.json of the rescue.")
			}
		}
	}
	return b.String()
}

// addNote adds the note to a qemu-server.conf's description: the comment
// lines at its top (Proxmox decodes each "#" line as a line of the
// description; "%" would be read as an escape, so the note has none).
func addNote(conf []byte, note string) []byte {
	lines := strings.SplitAfter(string(conf), "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "#") && !strings.HasPrefix(lines[i], "#qmdump#") {
		i++
	}
	var add strings.Builder
	for _, l := range strings.Split(strings.ReplaceAll(note, "%", " percent"), "\n") {
		add.WriteString("#" + l + "\n")
	}
	if i > 0 && !strings.HasSuffix(lines[i-1], "\n") {
		lines[i-1] += "\n"
	}
	return []byte(strings.Join(lines[:i], "") + add.String() + strings.Join(lines[i:], ""))
}

// dropAbsent makes a qemu-server.conf fit an archive holding only devs:
// a disk whose device is not there loses its "#qmdump#map" line (restore
// would stop on it: the archive has no data for it) and is marked
// backup=0, which Proxmox restores as a disk left out of the backup. It
// returns the config and the keys of the disks so marked.
func dropAbsent(conf []byte, devs []vma.Device) ([]byte, []string) {
	have := map[string]bool{}
	for _, d := range devs {
		have[d.Name] = true
	}
	absent := map[string]bool{}
	for _, d := range pve.ParseQemuConfig(conf).Disks {
		if !have[d.Device()] && !d.NoBackup {
			absent[d.Key] = true
		}
	}
	if len(absent) == 0 {
		return conf, nil
	}
	var out strings.Builder
	var keys []string
	section := false
	for _, line := range strings.SplitAfter(string(conf), "\n") {
		if strings.HasPrefix(line, "[") {
			section = true
		}
		if strings.HasPrefix(line, "#qmdump#map:") {
			if f := strings.Split(line, ":"); len(f) > 2 && absent[f[1]] {
				continue
			}
		}
		if key, val, ok := strings.Cut(line, ":"); ok && !section && absent[strings.TrimSpace(key)] {
			nl := strings.HasSuffix(val, "\n")
			line = key + ":" + strings.TrimRight(val, "\n") + ",backup=0"
			if nl {
				line += "\n"
			}
			keys = append(keys, strings.TrimSpace(key))
		}
		out.WriteString(line)
	}
	return []byte(out.String()), keys
}

// compressor returns the writer that compresses the archive as vzdump does.
func compressor(w io.Writer, kind codec.Kind, now time.Time) (io.WriteCloser, error) {
	switch kind {
	case codec.Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(true))
	case codec.Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case codec.Lzo:
		return lzo.NewWriter(w, now), nil
	case codec.None:
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression %q (zstd, gzip, lzo or none)", kind)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

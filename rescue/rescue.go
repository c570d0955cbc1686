// Package rescue does the whole night's work in one call: it reads a backup
// (and older generations of it) past damage, combines the generations,
// finds the volumes, copies every readable file out, and writes the
// account: report.json for machines, report.md for the person who reads it
// first.
package rescue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/volume"
)

// Options control a rescue.
type Options struct {
	// Also lists older backups of the same guest, used to fill what the
	// newest lacks.
	Also []string
	// OtherGuest lets Also hold backups that do not look like the same
	// guest's (another VMID, SMBIOS uuid or disk layout).
	OtherGuest bool
	// Force lets rescue write into a non-empty output directory.
	Force bool
	// NoJournal reads ext3/ext4 and XFS as on disk instead of replaying
	// a dirty journal or log.
	NoJournal bool
	// Owners keeps file owners (only effective as root).
	Owners bool
	// Specials recreates device nodes and FIFOs, and keeps setuid/setgid
	// bits (off by default: the guest may be hostile).
	Specials bool
	// Xattrs says which extended attributes of the guest's files are
	// restored (the zero value: user.* and POSIX ACLs only).
	Xattrs fs.XattrMode
	// MaxOutput, if set, caps the file data written in place of what the
	// backup's disks hold (see outputBudget).
	MaxOutput int64
	// Progress receives phases and byte counts.
	Progress Progress
	// Context, if set, ends the rescue when it is done (an interrupt).
	Context context.Context
	// Format of the disk images left in disks/: "raw" (the default) or
	// "qcow2" (converted once the files are copied; Compress compresses
	// its clusters).
	Format   string
	Compress bool
}

// Progress is how a rescue reports progress.
type Progress interface {
	Phase(name string, total int64)
	Set(done, total int64)
}

type noProgress struct{}

func (noProgress) Phase(string, int64) {}
func (noProgress) Set(int64, int64)    {}

// Report is a rescue's outcome.
type Report struct {
	*report.Report
	Dir string
	// filled holds, per device, the ranges filled from older generations.
	filled []filledDevice
}

type filledDevice struct {
	name string
	m    *damage.Map
}

// Intact reports whether everything was read intact.
func (r *Report) Intact() bool {
	for _, a := range r.Archives {
		if a.Status != report.Intact {
			return false
		}
	}
	return r.nothingDamaged()
}

// nothingDamaged reports whether no disk, volume or file is left damaged.
func (r *Report) nothingDamaged() bool {
	for _, d := range r.Devices {
		if !d.Damage.Empty() {
			return false
		}
	}
	for _, v := range r.Volumes {
		if v.Error != "" {
			return false
		}
	}
	return len(r.DamagedFiles) == 0
}

// Summary is the one-line outcome.
func (r *Report) Summary() string {
	files, damaged := 0, len(r.DamagedFiles)
	for _, v := range r.Volumes {
		files += v.Files
	}
	var lost int64
	for _, d := range r.Devices {
		lost += d.Damage.Total(damage.Tainted)
	}
	if r.Intact() {
		return fmt.Sprintf("intact: %d files copied from %d volume(s), nothing damaged", files, len(r.Volumes))
	}
	if rd := r.madeWhole(); rd != nil {
		return fmt.Sprintf("made whole: %d files copied from %d volume(s), nothing damaged; the backup is damaged, but decoded again with the lost bytes from %s, its own checksum matches",
			files, len(r.Volumes), ui.Safe(donorNames(rd.Donors)))
	}
	s := "damaged: "
	if len(r.Archives) > 0 && r.Archives[0].EndsEarly != nil {
		s += "the backup ends early; "
	}
	what := "disk data"
	if len(r.Devices) == 0 { // a container: the damage lies in its archive's stream
		for _, v := range r.Volumes {
			lost += v.DamagedBytes
		}
		what = "the archive's data"
	}
	s += fmt.Sprintf("%d files copied, %d listed as damaged; %s of %s lost or unverified", files, damaged, ui.Bytes(lost), what)
	if len(r.Archives) > 0 && r.Archives[0].Bomb != nil {
		s += "; the backup's stream is a decompression bomb: reading stopped"
	}
	if r.CopyStopped != "" {
		s += "; " + r.CopyStopped
	}
	return s
}

// madeWhole returns the second decoding that made the damaged backup whole
// (verified by its checksum, nothing left damaged), or nil.
func (r *Report) madeWhole() *report.Redecode {
	if len(r.Archives) == 0 || r.Archives[0].Redecode == nil || !r.Archives[0].Redecode.Verified || !r.nothingDamaged() {
		return nil
	}
	return r.Archives[0].Redecode
}

// unverified says when the archives' own checksums could not vouch for the
// bytes outside the reported damage.
func (r *Report) unverified() string {
	if len(r.Archives) == 0 {
		return ""
	}
	switch r.Archives[0].Checksum {
	case codec.ChecksumMismatch:
		return "the backup's checksum fails, so some bytes are wrong where nothing could locate them (files not listed may be affected)"
	case codec.ChecksumUnknown:
		if r.Archives[0].Status != report.Intact {
			return "the backup's checksum could not be checked past the damage, so silent damage elsewhere cannot be ruled out"
		}
	}
	return ""
}

// Run rescues the backup at path into dir. When it cannot finish (no space
// left, an unreadable archive, opt.Context ended by an interrupt) it
// removes everything it wrote into dir, so that no partial rescue is left
// behind, and its error says so.
func Run(path, dir string, opt Options) (_ *Report, err error) {
	if opt.Progress == nil {
		opt.Progress = noProgress{}
	}
	if opt.Context == nil {
		opt.Context = context.Background()
	}
	switch opt.Format {
	case "", "raw", "qcow2":
	default:
		return nil, fmt.Errorf("image format %q: raw or qcow2", opt.Format)
	}
	for _, p := range append([]string{path}, opt.Also...) {
		if st, err := os.Stat(p); err != nil {
			return nil, err
		} else if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a backup file", p)
		}
	}
	if err := checkGenerations(path, opt.Also, opt.OtherGuest); err != nil {
		return nil, err
	}
	created, err := prepareDir(dir, opt.Force)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			removeOutputs(dir, created)
			switch {
			case errors.Is(err, context.Canceled):
				err = errors.New("interrupted")
			case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
				err = errors.New("no space left for the rescue (it needs room for the disks' data and a copy of their files: choose a larger filesystem)")
			}
			err = fmt.Errorf("%w; the unfinished rescue in %s was removed", err, dir)
		}
	}()
	if isContainer(path) {
		return runContainer(path, dir, opt)
	}
	rep := &Report{Report: report.New(extract.Tool), Dir: dir}

	// 1. the newest backup (merged with its copies first), into disks/
	work := filepath.Join(dir, ".generations")
	defer os.RemoveAll(work)
	mg, err := mergeCopies(path, work, opt)
	if err != nil {
		return nil, err
	}
	opt.Also = mg.also
	disksDir := filepath.Join(dir, "disks")
	x := extract.Options{Map: len(opt.Also) > 0, Resumable: len(opt.Also) > 0, Distrust: mg.distrust}
	if mg.read != path {
		x.Checker = sidecarOf(path)
	}
	newest, err := extractOne(mg.read, disksDir, x, opt)
	if err != nil {
		return nil, err
	}
	rep.Archives = append(rep.Archives, newest.Report.Archives...)
	rep.Archives[0].Path, rep.Archives[0].Merge = path, mg.acct
	rep.Devices = append(rep.Devices, newest.Report.Devices...)

	// 2. older generations, into a work directory, then combined
	var olds []*extract.Result
	if len(opt.Also) > 0 {
		if olds, err = combineGenerations(rep, newest, dir, mg.distrust, opt); err != nil {
			return nil, err
		}
		// the damage account of disks/ now describes the combined images
		dj := report.New(extract.Tool)
		dj.Archives, dj.Devices = rep.Archives, rep.Devices
		if err := dj.WriteFile(filepath.Join(disksDir, "damage.json")); err != nil {
			return nil, err
		}
	}

	// the VM config, and the disks it names that the backup lacks
	describeConfig(rep.Report, newest.Report.Archives[0], disksDir)

	// 3. volumes and files
	var disks []volume.Disk
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i := range rep.Devices {
		d := &rep.Devices[i]
		d.Path = filepath.Join("disks", d.Image)
		f, err := os.Open(filepath.Join(disksDir, d.Image))
		if err != nil {
			return nil, err
		}
		files[d.Name] = f
		disks = append(disks, volume.Disk{Name: d.Name, R: f, Size: d.Size, Damage: d.Damage})
	}
	opt.Progress.Phase("volumes", 0)
	vols := volume.Discover(disks)
	filled := filledByVolume(disks, rep.filled)
	filesDir := filepath.Join(dir, "files")
	budget := outputBudget(rep.Devices, vols, opt.MaxOutput)
	oldVols, closeOld, err := olderVolumes(olds)
	if err != nil {
		return nil, err
	}
	defer closeOld()
	same := sameVolume{}
	for _, v := range vols {
		if first, dup := same.seen(v); dup {
			rv := VolumeReport(v)
			rv.DuplicateOf = first
			rv.Notes = append(rv.Notes, "the same filesystem as "+first+" (same place on the disk): read once, its files are there")
			rep.Volumes = append(rep.Volumes, rv)
			continue
		}
		rv, damaged, err := rescueVolume(v, filesDir, filled[v.ID], budget, oldVols, opt)
		if fatal(err) {
			return nil, err
		}
		if err != nil {
			rv.Error = err.Error()
		}
		if f := files[v.Device]; f != nil && v.FS == "" && v.Kind != "lv" {
			rv.Empty = noData(f, v.Offset, v.Size)
		}
		rep.Volumes = append(rep.Volumes, rv)
		rep.DamagedFiles = append(rep.DamagedFiles, damaged...)
	}
	if budget.Stopped != "" {
		rep.CopyStopped = budgetMessage(budget, opt.MaxOutput)
	}

	if opt.Format == "qcow2" {
		for _, f := range files {
			f.Close()
		}
		clear(files)
		if err := toQcow2(rep, disksDir, opt); err != nil {
			return nil, err
		}
	}

	// 4. the account
	if err := writeAccount(rep, dir); err != nil {
		return nil, err
	}
	return rep, nil
}

// writeAccount writes report.json and report.md into dir.
func writeAccount(rep *Report, dir string) error {
	if err := rep.WriteFile(filepath.Join(dir, "report.json")); err != nil {
		return err
	}
	var md strings.Builder
	WriteMarkdown(&md, rep)
	return report.WriteFileAtomic(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644)
}

// ownNames are what a rescue writes into its directory; --force removes
// them (and nothing else) before writing anew, and only where the marker
// says that vzsalvage wrote them.
var ownNames = []string{"disks", "files", "report.json", "report.md", ".generations", "pct.conf", "pct.fw"}

// Marker is the file a rescue leaves in its directory: it tells a later
// rescue --force that the outputs there are vzsalvage's own to replace.
const Marker = ".vzsalvage-rescue"

// prepareDir creates dir, refusing a non-empty one unless forced. --force
// replaces an earlier rescue's outputs only where that rescue left its
// marker; in a directory without one it writes only if none of the names
// it needs is taken, so that a user's own files/ or disks/ are never
// deleted.
//
// created reports that dir did not exist before.
func prepareDir(dir string, force bool) (created bool, err error) {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	if err := report.MkdirAll(dir); err != nil {
		return false, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return created, err
	}
	if len(ents) > 0 && !force {
		return created, fmt.Errorf("%s is not empty (use --force to replace an earlier rescue there)", dir)
	}
	if len(ents) > 0 {
		_, err := os.Lstat(filepath.Join(dir, Marker))
		ours := err == nil
		for _, n := range ownNames {
			p := filepath.Join(dir, n)
			if _, err := os.Lstat(p); err != nil {
				continue
			}
			if !ours {
				return created, fmt.Errorf("%s holds %s, which an earlier rescue did not write (no %s marker): not replacing it; choose an empty directory", dir, n, Marker)
			}
			if err := os.RemoveAll(p); err != nil {
				return created, err
			}
		}
	}
	return created, report.WriteFileAtomic(filepath.Join(dir, Marker),
		[]byte("This directory holds the outputs of a vzsalvage rescue; rescue --force may replace them.\n"), 0o644)
}

// removeOutputs removes what a rescue writes into dir (and dir itself if
// the rescue created it and nothing else is there).
func removeOutputs(dir string, created bool) {
	for _, n := range append(ownNames, Marker) {
		os.RemoveAll(filepath.Join(dir, n))
	}
	if created {
		os.Remove(dir) // only if empty
	}
}

// fatal reports errors that end a whole rescue: the host's (no space, a
// read-only or failing output disk) and an interrupt.
func fatal(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// extractOne extracts one backup into dir; x holds the options particular
// to it (Map, Checker, Distrust).
func extractOne(path, dir string, x extract.Options, opt Options) (*extract.Result, error) {
	opt.Progress.Phase("read "+filepath.Base(path), 0)
	x.Force, x.Progress, x.Context = true, opt.Progress.Set, opt.Context
	res, err := extract.Extract(path, dir, x)
	if err != nil {
		return nil, err
	}
	if len(res.Report.Devices) == 0 {
		return nil, fmt.Errorf("%s: no disk could be read", path)
	}
	return res, nil
}

// combineGenerations extracts the older backups (into dir/.generations,
// which the caller removes) and fills the newest images from them; it
// returns the older backups' reads, newest first.
func combineGenerations(rep *Report, newest *extract.Result, dir string, distrust []damage.Range, opt Options) ([]*extract.Result, error) {
	work := filepath.Join(dir, ".generations")
	var olds []*extract.Result
	for i, p := range opt.Also {
		res, err := extractOne(p, filepath.Join(work, fmt.Sprint(i+1)), extract.Options{}, opt)
		if err != nil {
			return nil, fmt.Errorf("older backup %s: %w", p, err)
		}
		// A copy of the same backup (same UUID) is a donor like an older
		// night, only a better one: its disks are the same night's.
		olds = append(olds, res)
		rep.Archives = append(rep.Archives, res.Report.Archives...)
	}
	// newest first
	sort.SliceStable(olds, func(i, j int) bool { return olds[i].Header.Ctime.After(olds[j].Header.Ctime) })
	disksDir := filepath.Join(dir, "disks")
	rd, err := redoNewest(newest.Report.Archives[0].Path, newest, disksDir, work, olds, distrust, opt)
	newest.Resume = nil // (its decoder checkpoint holds up to 40 MiB; the passes are done)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		if err := applyRedo(rep, rd, disksDir); err != nil {
			return nil, err
		}
	}
	for i := range rep.Devices {
		d := &rep.Devices[i]
		var donated *damage.Map
		if rd != nil {
			donated = rd.filled[d.Name]
		}
		dst := genDevice{Archive: newest.Report.Archives[0].Path, Path: filepath.Join(disksDir, d.Image),
			Damage: d.Damage, Checksum: newest.Report.Archives[0].Checksum}
		if rd != nil && rd.res.Verified {
			dst.Checksum = codec.ChecksumOK
		}
		var older []genDevice
		for _, o := range olds {
			for _, od := range o.Report.Devices {
				if od.Name == d.Name && od.Size == d.Size {
					u := o.Report.Archives[0].UUID
					older = append(older, genDevice{Archive: o.Report.Archives[0].Path, Path: o.Images[od.Name],
						Damage: od.Damage, Checksum: o.Report.Archives[0].Checksum, Copy: u != "" && u == rep.Archives[0].UUID})
				}
			}
		}
		if len(older) == 0 {
			if donated != nil {
				rep.filled = append(rep.filled, filledDevice{name: d.Name, m: donated})
			}
			continue
		}
		opt.Progress.Phase("combine "+d.Name, 0)
		c, err := combineDevice(d.Name, d.Size, dst, older, donated)
		if err != nil {
			return nil, err
		}
		d.Damage = c.Damage
		d.Sources = append(d.Sources, c.Sources...)
		sort.SliceStable(d.Sources, func(i, j int) bool { return d.Sources[i].Offset < d.Sources[j].Offset })
		recount(d)
		rep.Suspects = append(rep.Suspects, c.Suspects...)
		if donated != nil {
			c.Filled.Merge(donated)
		}
		rep.filled = append(rep.filled, filledDevice{name: d.Name, m: c.Filled})
	}
	return olds, nil
}

// recount derives a device's cluster counts from its damage map after
// combining (zero clusters keep their count).
func recount(d *report.Device) {
	var tainted, lost int64
	for off := int64(0); off < d.Size; off += clusterSize {
		n := min(int64(clusterSize), d.Size-off)
		switch worstIn(d.Damage, off, n) {
		case damage.Tainted:
			tainted++
		case damage.Lost:
			lost++
		}
	}
	d.Clusters.OK = d.Clusters.Total - d.Clusters.Zero - tainted - lost
	if d.Clusters.OK < 0 {
		d.Clusters.OK = 0
	}
	d.Clusters.Tainted, d.Clusters.Lost = tainted, lost
}

// filledByVolume translates the ranges filled from older generations into
// each volume's offsets, by finding the same volumes on disks whose damage
// maps are those ranges.
func filledByVolume(disks []volume.Disk, filled []filledDevice) map[string]*damage.Map {
	if len(filled) == 0 {
		return nil
	}
	byName := map[string]*damage.Map{}
	for _, f := range filled {
		byName[f.name] = f.m
	}
	shadow := make([]volume.Disk, len(disks))
	for i, d := range disks {
		shadow[i] = d
		shadow[i].Damage = byName[d.Name]
	}
	out := map[string]*damage.Map{}
	for _, v := range volume.Discover(shadow) {
		out[v.ID] = v.Damage
	}
	return out
}

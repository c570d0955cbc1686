// Package extract reads a backup end to end: archive → codec → payload
// (payload.Open detects it by content) → for a VM, disk images, configs
// and the damage account (damage.json); for a container, its configs, its
// files and the damage account (container.go). verify is the same read
// without the writing.
package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vzsalvage/vzsalvage/archive"
	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/payload"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Tool names vzsalvage in reports.
var Tool = "vzsalvage"

// Options control a read.
type Options struct {
	// Strict stops at the first problem (the archive is then reported
	// damaged and no image is written).
	Strict bool
	// FailFast is Strict for a caller that, when the read fails, reads
	// again without it to learn what is wrong (codec.Options.FailFast:
	// zstd then decodes with a fifth less CPU, but refuses a stream
	// without a checksum and does not say where it failed).
	FailFast bool
	// Format is the image format: "raw" (the default: sparse raw files,
	// disk-<device>.raw) or "qcow2" (disk-<device>.qcow2, as Proxmox's
	// directory storages keep disks; Compress compresses its clusters).
	Format   string
	Compress bool
	// Unlinked writes the images as unnamed temporary files in the
	// directory (removed as soon as created): Result.Files holds them open
	// and nothing is left behind, whatever happens. No config file and no
	// damage.json is written.
	Unlinked bool
	// Force overwrites existing output files.
	Force bool
	// Progress, if set, is called now and then with the bytes of the
	// archive file consumed and its size.
	Progress func(done, total int64)
	// Context, if set, stops the read when it is done (an interrupt):
	// partial images are removed and its error returned.
	Context context.Context
	// Taps, if set, see the archive file's bytes as they are read (see
	// archive.Archive.Taps).
	Taps []func([]byte)
	// Holder, if set, is a tap the archive file is read into (see
	// archive.Holder).
	Holder archive.Holder
	// Observe, if set, sees every cluster as it is read, in archive order
	// (Data is valid only during the call).
	Observe func(h *vma.Header, c *vma.Cluster)
	// NoSidecar reads without the archive's protect record even when
	// Sidecars finds one.
	NoSidecar bool
	// Checker, if set, is used instead of what Sidecars finds.
	Checker Checker
	// Hash computes, for a container backup, every member's hashes
	// (Result.Tar.Hashes), for a protect record.
	Hash bool
	// Map keeps, in Result.Map, where the damaged stream bytes belong.
	Map bool
	// Restore, if set, writes a container backup's files as its stream is
	// read, in the one pass (Result.Tree and Result.Copied say what was
	// written). Ignored for VM backups and in Strict reads.
	Restore *Restore
	// Donor makes this read a second pass (codec.Options.Donor); when the
	// stream's checksum then matches and the VMA stream reads without a
	// problem, the images are the original's and Result.Verified is set.
	Donor codec.Donor
	// Distrust lists ranges of the archive file whose bytes may be wrong
	// although they decode (codec.Options.Distrust).
	Distrust []damage.Range
	// Overlay, for a second pass (Donor), writes into the first pass's
	// images in place (overlay.go); the result is the same.
	Overlay *Overlay
	// Resumable makes a first pass keep what a second pass needs to start
	// at the extent header before the first damaged block instead of at
	// the stream's start (Result.Resume; resume.go).
	Resumable bool
	// Resume, for a second pass (Donor) writing in place (Overlay, every
	// device), starts at the first pass's Result.Resume.
	Resume *Resume
}

// ErrNotVM is returned for archives whose payload is not a VMA stream.
var ErrNotVM = errors.New("not a vzdump VM backup")

// Result is what a read found.
type Result struct {
	Report *report.Report
	// Header is the archive's header (devices learned from extents when
	// the header was lost).
	Header *vma.Header
	// Images maps device names to the image files written (extract only).
	Images map[string]string
	// Files holds, for Options.Unlinked, each device's image, open, in the
	// order of Report.Devices; the caller closes them (Close).
	Files []*os.File
	// Map is where the damaged stream bytes belong (Options.Map).
	Map *StreamMap
	// Written are, with Options.Map, the device ranges each image was
	// written (sorted, merged; nil for an image with too many to keep).
	Written map[string][]damage.Range
	// Verified: a read with a donor whose output the stream's own
	// checksum confirmed: no byte of any device is damaged.
	Verified bool
	// Tar is a container backup's index (nil for a VM backup).
	Tar *ctar.Index
	// Tree is a container's tree as its files were written (Options.Restore,
	// or an extraction's rootfs), to judge them against Tar's damage;
	// Copied says what was written.
	Tree   *ctar.FS
	Copied *fs.CopyStats
	// Fragments lists the fragments of a container's stream written with
	// its files (lost+found/@OFFSET).
	Fragments []ctar.Fragment
	// CopyErr is what stopped the writing of a container's files early
	// (the Budget); the read went on to the end.
	CopyErr error
	// Resume is where a second pass can start (Options.Resumable), or nil.
	Resume *Resume
	// ResumedAt is the stream offset a read with Options.Resume started at.
	ResumedAt int64
}

// Restore says where and how a container's files are written while its
// stream is read.
type Restore struct {
	Dir  string // created; it must not exist
	Copy fs.CopyOptions
}

// Close closes the files of an unlinked extraction.
func (r *Result) Close() error {
	for _, f := range r.Files {
		f.Close()
	}
	r.Files = nil
	return nil
}

// Intact reports whether the archive was read without any problem.
func (r *Result) Intact() bool {
	for _, a := range r.Report.Archives {
		if a.Status != report.Intact {
			return false
		}
	}
	return true
}

// Verify reads an archive completely without writing anything.
func Verify(path string, opt Options) (*Result, error) {
	return run(path, "", opt)
}

// Extract reads an archive into dir: disk-<device>.raw (sparse), the config
// files, and damage.json.
func Extract(path, dir string, opt Options) (*Result, error) {
	switch opt.Format {
	case "", "raw", "qcow2":
	default:
		return nil, fmt.Errorf("image format %q: raw or qcow2", opt.Format)
	}
	made, err := mkdirs(dir)
	if err != nil {
		return nil, err
	}
	res, err := run(path, dir, opt)
	if errors.Is(err, errResume) {
		// (found before any cluster was written) the whole stream again
		opt.Resume = nil
		res, err = run(path, dir, opt)
	}
	if err != nil {
		// what run wrote is gone; so are the directories made for it
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i]) // only if empty
		}
	}
	return res, err
}

// mkdirs makes dir and its missing parents, as os.MkdirAll, and returns
// the directories it made, outermost first.
func mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		missing = append(missing, d)
	}
	slices.Reverse(missing)
	if err := report.MkdirAll(dir); err != nil {
		return nil, err
	}
	return missing, nil
}

func run(path, dir string, opt Options) (*Result, error) {
	opt.Strict = opt.Strict || opt.FailFast
	copt := codec.Options{Strict: opt.Strict, FailFast: opt.FailFast, Donor: opt.Donor, Distrust: opt.Distrust}
	if err := opt.Resume.check(opt); err != nil {
		return nil, err
	}
	if opt.Resume != nil {
		copt.Resume, copt.ResumeFrom = opt.Resume.cp, opt.Resume.snap.Offset()
	}
	copt.KeepCheckpoint = opt.resumable()
	s, err := payload.Open(path, copt)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	a := s.Archive
	a.Taps, a.Holder = opt.Taps, opt.Holder
	dec, err := s.Decode()
	if err != nil {
		return nil, err
	}
	raw := s.Raw()
	stop := startProgress(a, opt.Progress)
	defer stop()
	if s.Kind() == payload.Tar {
		if opt.Resume != nil {
			return nil, errResume
		}
		return runContainer(s, dec, dir, opt, stop)
	}
	chk, chkProblem := findChecker(path, opt)
	if chk != nil && opt.Resume != nil {
		return nil, errResume
	}

	vopt := vma.Options{Salvage: !opt.Strict}
	var sm *StreamMap
	if opt.Map {
		sm = &StreamMap{}
		vopt.Place, vopt.Spans = sm.place, sm.addSpan
	}
	ck := snapshots(&vopt, raw, opt, chk)
	var vr *vma.Reader
	if opt.Resume != nil {
		vr, err = vma.Resume(dec, opt.Resume.snap, vopt)
	} else {
		vr, err = vma.NewReader(dec, vopt)
	}
	if err != nil {
		return nil, NotVM(path, a, err)
	}
	res := &Result{Report: report.New(Tool), Header: vr.Header(), Images: map[string]string{}, Map: sm}
	if chk != nil {
		if err := chk.Applies(vr.Header()); err != nil {
			chk, chkProblem = nil, fmt.Sprintf("sidecar %s not used: %v", chk.Name(), err)
		}
	}
	var out *imageSet
	if dir != "" {
		out = newImageSet(dir, opt.Force)
		out.unlinked = opt.Unlinked
		out.over = opt.Overlay
		if opt.Map || opt.Overlay != nil {
			out.budget = maxWrites
		}
		out.qcow2, out.qcow2Compress = opt.Format == "qcow2", opt.Compress
		defer out.abort()
		if !opt.Unlinked {
			if err := out.writeConfigs(vr.Header().Configs); err != nil {
				return nil, err
			}
		}
		for _, d := range vr.Header().Devices {
			if _, err := out.open(d); err != nil {
				return nil, err
			}
		}
		if opt.Resume != nil {
			if err := out.resumed(opt.Resume.snap); err != nil {
				return nil, err
			}
			res.ResumedAt = opt.Resume.snap.Offset()
		}
	}
	var readErr error
	for n := 0; ; n++ {
		if opt.Context != nil && n%256 == 0 {
			if err := opt.Context.Err(); err != nil {
				return nil, err
			}
		}
		c, err := vr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		if opt.Observe != nil {
			opt.Observe(vr.Header(), c)
		}
		if chk != nil {
			chk.Cluster(vr.Header(), c)
		}
		if out != nil {
			// an overlay's images hold what the first pass wrote from the
			// output both passes share
			skip := opt.Overlay != nil && vr.Consumed() <= opt.Overlay.From
			if err := out.write(vr, c, skip); err != nil {
				return nil, err
			}
		}
	}
	stop()
	vres := vr.Result()
	if sm != nil {
		sm.finish(dec, raw, vres)
	}
	if readErr == nil {
		res.Resume = resumePoint(ck, vr, sm)
	}
	res.Verified = opt.Donor != nil && readErr == nil && dec.Checksum() == codec.ChecksumOK && vres.ProblemCount == 0
	if res.Verified {
		for i := range vres.Devices {
			d := &vres.Devices[i]
			d.Damage = &damage.Map{}
			d.Clusters = recount(d.Clusters, d.Damage, d.Size)
		}
	}
	arc := archiveReport(a, dec, vr.Header(), vres, readErr)
	if out != nil {
		arc.ConfigFiles = out.configFiles
	}
	res.Report.Archives = append(res.Report.Archives, arc)
	if readErr != nil && opt.Strict {
		// strict: the first problem ends the read; no device account
		if out != nil {
			out.done = true
		}
		return res, nil
	}
	if chk != nil {
		res.Report.Archives[0].Sidecar = checkClusters(chk, vres)
	} else if chkProblem != "" {
		res.Report.Archives[0].Sidecar = &report.Sidecar{Note: chkProblem}
	}
	if s := res.Report.Archives[0].Sidecar; s != nil && s.Wrong > 0 {
		res.Report.Archives[0].Status = report.Damaged
	}
	for _, d := range vres.Devices {
		rd := report.Device{Name: d.Name, ID: int(d.ID), Size: d.Size, Clusters: report.Clusters(d.Clusters), Damage: d.Damage, DamageMerged: d.DamageMerged}
		if out != nil {
			name, f, err := out.finish(d.Device)
			if err != nil {
				res.Close()
				return nil, err
			}
			switch {
			case f != nil:
				res.Files = append(res.Files, f)
			case out.files[d.ID].log != nil:
				// written in place (Overlay): name is its path
				rd.Image = filepath.Base(name)
				res.Images[d.Name] = name
			default:
				rd.Image = name
				res.Images[d.Name] = filepath.Join(dir, name)
			}
			if opt.Map {
				if res.Written == nil {
					res.Written = map[string][]damage.Range{}
				}
				res.Written[d.Name] = out.files[d.ID].w.ranges()
			}
		}
		res.Report.Devices = append(res.Report.Devices, rd)
	}
	if out != nil && !opt.Unlinked {
		if err := res.Report.WriteFile(filepath.Join(dir, "damage.json")); err != nil {
			return nil, err
		}
	}
	if out != nil {
		out.done = true
	}
	return res, nil
}

// NotVM explains why an archive's payload did not open as a VMA stream.
func NotVM(path string, a *archive.Archive, err error) error {
	if !errors.Is(err, vma.ErrNotVMA) {
		return fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case a.Compression == codec.None:
		return fmt.Errorf("%s: %w: neither compressed (zstd, gzip, lzo) nor a VMA stream", path, ErrNotVM)
	}
	return fmt.Errorf("%s: %w: its %s stream holds no VMA stream", path, ErrNotVM, a.Compression)
}

// archiveReport builds a VM backup's entry in the report.
func archiveReport(a *archive.Archive, dec codec.Reader, h *vma.Header, vres *vma.Result, readErr error) report.Archive {
	arc := newArchive(a, dec, "vma")
	arc.UUID, arc.Ctime = h.UUIDString(), h.Ctime.Unix()
	if vres.Headerless {
		arc.UUID, arc.Ctime = "", 0
	}
	for _, c := range h.Configs {
		arc.Configs = append(arc.Configs, c.Name)
	}
	finishArchive(&arc, a, dec, vres.Problems, vres.ProblemCount, vres.Intact(), readErr)
	return arc
}

// newArchive starts an archive's entry in the report: what the file and
// its stream say.
func newArchive(a *archive.Archive, dec codec.Reader, payload string) report.Archive {
	arc := report.Archive{
		Path: a.Path, Compression: string(a.Compression), Payload: payload,
		Guest: a.Name.Guest, VMID: a.Name.VMID, Checksum: dec.Checksum(),
	}
	if !a.Name.Time.IsZero() {
		arc.Time = a.Name.Time.Format("2006-01-02T15:04:05")
	}
	return arc
}

// finishArchive adds the problems of the stream and of the payload and
// decides the archive's status.
func finishArchive(arc *report.Archive, a *archive.Archive, dec codec.Reader, problems []damage.Problem, count int, intact bool, readErr error) {
	arc.Problems = append(arc.Problems, dec.Problems()...)
	arc.Problems = append(arc.Problems, problems...)
	arc.ProblemCount = codec.CountProblems(dec) + count
	if readErr != nil {
		arc.Problems = append(arc.Problems, problemOf(readErr))
		arc.ProblemCount++
	}
	if a.Compression == codec.None {
		arc.Checksum = codec.ChecksumAbsent
	}
	for _, p := range arc.Problems {
		if p.Kind == damage.Truncated && arc.EndsEarly == nil {
			arc.EndsEarly = &p
		}
		if p.Kind == damage.Bomb {
			arc.Bomb = &p
		}
	}
	arc.Status = report.Intact
	if arc.ProblemCount > 0 || arc.Checksum == codec.ChecksumMismatch || !intact || readErr != nil {
		arc.Status = report.Damaged
	}
}

func problemOf(err error) damage.Problem {
	return damage.Problem{Offset: -1, Message: err.Error(), Kind: damage.ReadError}
}

// SafeFileName turns an archive-supplied name into one that is safe as a
// single path component.
func SafeFileName(s string) string {
	if vma.SafeName(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c == '/' || c == '\\' || c >= 0x7f {
			b[i] = '_'
		}
	}
	s = strings.Trim(string(b), ".")
	if s == "" || len(s) > 128 {
		s = "unnamed"
	}
	return s
}

// Head is what the start of a backup says: its name and its VMA header.
type Head struct {
	Name   archive.Name
	Header *vma.Header
}

// ReadHead reads only the start of a backup: its file name and, for a VM
// backup, its header (instant, whatever the archive's size); a container
// backup's Header is empty.
func ReadHead(path string) (*Head, error) {
	s, err := payload.Open(path, codec.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if s.Kind() == payload.Tar {
		return &Head{Name: s.Archive.Name, Header: &vma.Header{}}, nil
	}
	dec, err := s.Decode()
	if err != nil {
		return nil, err
	}
	vr, err := vma.NewReader(dec, vma.Options{Salvage: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Head{Name: s.Archive.Name, Header: vr.Header()}, nil
}

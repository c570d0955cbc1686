package rescue

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/source"
	"github.com/vzsalvage/vzsalvage/volume"
)

// VolumeReport turns a volume into its entry in a report.
func VolumeReport(v volume.Volume) report.Volume {
	return report.Volume{ID: v.ID, Device: v.Device, Offset: v.Offset, Size: v.Size, Kind: v.Kind, FS: v.FS,
		UUID: v.UUID, Label: v.Label, Name: v.Name, PartType: v.PartType, Notes: v.Notes,
		DamagedBytes: v.Damage.Total(damage.Tainted)}
}

// rescueVolume copies every readable file of a volume into
// filesDir/<volume id>/ and judges each against the volume's damage.
// filled (volume offsets, may be nil) holds ranges filled from older
// generations: files damaged only there are "mixed".
//
// olds are the older nights' volumes: the same volume there gives names
// back to files whose directory is damaged here (names.go).
func rescueVolume(v volume.Volume, filesDir string, filled *damage.Map, budget *fs.Budget, olds []oldVolume, opt Options) (report.Volume, []report.DamagedFile, error) {
	rv := VolumeReport(v)
	if v.Kind == "partition" && v.FS == "" && v.Size == 0 {
		return rv, nil, nil
	}
	f, err := source.OpenFS(v, source.FSOptions{NoJournal: opt.NoJournal})
	if err != nil {
		if errors.Is(err, source.ErrUnsupported) {
			if v.FS != "" && v.FS != "LVM2_member" && v.FS != "swap" {
				rv.Notes = append(rv.Notes, fmt.Sprintf("no %s reader yet: files not copied (the disk image holds them)", v.FS))
			}
			return rv, nil, nil
		}
		return rv, nil, fmt.Errorf("cannot open the %s filesystem: %v", v.FS, err)
	}
	if ns := namersFor(v, f, olds, opt); len(ns) > 0 {
		f = fs.WithNames(f, ns...)
	}
	info := f.Info()
	rv.Notes = append(rv.Notes, info.Problems...)
	if info.View != "" {
		rv.Notes = append(rv.Notes, "read as: "+info.View)
	}
	rel := filepath.Join("files", fs.SafeName(v.ID))
	dest := filepath.Join(filesDir, fs.SafeName(v.ID))
	if err := os.MkdirAll(filesDir, 0o755); err != nil {
		return rv, nil, err
	}
	opt.Progress.Phase("copy "+v.ID, v.Size)
	stats, err := fs.Copy(f, f.Root(), "/", dest, fs.CopyOptions{
		Recursive: true, Owners: opt.Owners, Xattrs: opt.Xattrs, Specials: opt.Specials, SetID: opt.Specials,
		Budget:   budget,
		Context:  opt.Context,
		Progress: func(bytes, files int64) { opt.Progress.Set(bytes, v.Size) },
	})
	if err != nil && (stats == nil || fatal(err)) {
		return rv, nil, fmt.Errorf("copy: %w", err)
	}
	if err != nil {
		rv.Error = "copy stopped: " + err.Error()
	}
	rv.Dir = rel
	damaged := judgeFiles(&rv, v, f, stats, filled)
	return rv, damaged, nil
}

// judgeFiles notes in rv what a copy of a volume's files did (stats), and
// judges every file of its tree f against the volume's damage: it returns
// the damaged ones. filled (volume offsets, may be nil) holds ranges filled
// from older generations: files damaged only there are "mixed".
func judgeFiles(rv *report.Volume, v volume.Volume, f fs.FS, stats *fs.CopyStats, filled *damage.Map) []report.DamagedFile {
	copyErrs := map[string]error{}
	for _, e := range stats.Errors {
		copyErrs[e.Path] = e.Err
	}
	for _, e := range stats.Renamed {
		rv.Notes = append(rv.Notes, fmt.Sprintf("unsafe name written as %s", fs.SafeName(filepath.Base(e.Path))))
	}
	if n := len(stats.Skipped); n > 0 {
		rv.Notes = append(rv.Notes, fmt.Sprintf("%d device nodes, FIFOs or sockets not recreated (--specials to recreate)", n))
	}
	if n := stats.XattrsSkipped; n > 0 {
		rv.Notes = append(rv.Notes, fmt.Sprintf("%d extended attributes not restored (security.*, trusted.*, file capabilities: --xattrs all to restore them)", n))
	}
	if n := len(stats.Aliased); n > 0 {
		rv.Notes = append(rv.Notes, fmt.Sprintf("%d names of files already copied under another name, although their link count is 1 (a damaged or crafted filesystem): written as hard links, e.g. %s", n, stats.Aliased[0].Path))
	}

	var damaged []report.DamagedFile
	seen := map[string]int{} // path -> index in damaged (Walk calls twice for a directory it could not read)
	err := fs.Walk(f, f.Root(), func(path string, e *fs.DirEntry, st *fs.Stat, werr error) error {
		if i, ok := seen[path]; ok {
			if i < 0 && werr != nil {
				// a directory judged intact whose listing then failed
				seen[path] = len(damaged)
				damaged = append(damaged, report.DamagedFile{Volume: v.ID, Path: path, State: fs.StatePartial, Problems: []string{werr.Error()}})
			} else if i >= 0 && werr != nil {
				damaged[i].Problems = append(damaged[i].Problems, werr.Error())
			}
			return nil
		}
		if st != nil && !st.Mode.IsDir() {
			rv.Files++
		}
		df := report.DamagedFile{Volume: v.ID, Path: path}
		switch {
		case st == nil:
			df.State = fs.StateLost
			if werr != nil {
				df.Problems = []string{werr.Error()}
			}
		default:
			lay, lerr := f.Layout(st.Node)
			if lerr != nil {
				lay = nil
				df.Problems = append(df.Problems, "layout: "+lerr.Error())
			}
			a := fs.Assess(st, lay, e, v.Damage)
			df.State, df.BadBytes, df.MissingBytes, df.Ranges = a.State, a.BadBytes, a.MissingBytes, a.Ranges
			if st.Mode.IsRegular() {
				df.Size = st.Size
			}
			df.Problems = append(df.Problems, st.Problems...)
			if werr != nil && !errors.Is(werr, iofs.SkipDir) {
				df.Problems = append(df.Problems, werr.Error())
				if !df.State.Damaged() {
					df.State = fs.StateMetadata
				}
			}
			if cerr, ok := copyErrs[path]; ok {
				df.Problems = append(df.Problems, "copy: "+cerr.Error())
				if df.State.Rank() <= fs.StateMetadata.Rank() {
					df.State = fs.StatePartial
				}
			}
			if lerr != nil && !df.State.Damaged() {
				df.State = fs.StateMetadata
			}
			if df.State.Damaged() && filled != nil && lay != nil && onlyFilled(st, lay, e, v.Damage, filled) {
				df.State = fs.StateMixed
			}
			nameState(&df, e)
		}
		if df.State.Damaged() {
			seen[path] = len(damaged)
			damaged = append(damaged, df)
		} else if st != nil && st.Mode.IsDir() && werr == nil {
			seen[path] = -1
		}
		return nil
	})
	if err != nil {
		rv.Notes = append(rv.Notes, "walk: "+err.Error())
	}
	rv.DamagedFiles = len(damaged)
	return damaged
}

// onlyFilled reports whether every damaged byte a file depends on lies in
// ranges filled from an older generation (so the file is complete, but
// partly another night's).
func onlyFilled(st *fs.Stat, lay *fs.Layout, e *fs.DirEntry, dmg, filled *damage.Map) bool {
	if len(st.Problems) > 0 {
		return false
	}
	check := func(off, n int64) bool {
		for _, r := range dmg.Overlaps(off, n) {
			if r.State >= damage.Tainted && filled.Count(r.Off, r.Len, damage.Tainted) != r.Len {
				return false
			}
		}
		return true
	}
	for _, x := range lay.Data {
		if x.Physical >= 0 && !check(x.Physical, x.Span()) {
			return false
		}
	}
	for _, x := range lay.Meta {
		if !check(x.Physical, x.Length) {
			return false
		}
	}
	if e != nil && e.Where.Length > 0 && !check(e.Where.Physical, e.Where.Length) {
		return false
	}
	return true
}

// nameState says, for a file no directory names any more, that its name
// is unknown (an orphan, in lost+found as #NODE) or where the name it was
// given back was found (an older copy of its directory); a file otherwise
// intact is listed for it.
func nameState(df *report.DamagedFile, e *fs.DirEntry) {
	switch {
	case e == nil:
	case e.Orphan:
		df.Problems = append(df.Problems, "no directory names it (a damaged directory): its name is unknown")
		if !df.State.Damaged() {
			df.State = fs.StateNameUnknown
		}
	case e.Named != "":
		df.Problems = append(df.Problems, "its directory is damaged: the name is the one in "+e.Named)
		if !df.State.Damaged() {
			df.State = fs.StateMetadata
		}
	}
}

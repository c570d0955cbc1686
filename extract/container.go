package extract

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/payload"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/vma"
)

// RootfsID is the volume id of a container's root filesystem: the tar
// stream read as a filesystem.
const RootfsID = "rootfs"

// runContainer reads a container backup: the tar index and its damage
// account; with dir, also its config files, its files under dir/rootfs
// and damage.json; with opt.Restore, its files where that says. Files are
// written as the stream is read (once), then judged against the index.
// A strict read writes nothing until the whole stream has read cleanly.
func runContainer(s *payload.Stream, dec codec.Reader, dir string, opt Options, stop func()) (*Result, error) {
	rst := opt.Restore
	if dir != "" && !opt.Unlinked {
		dest := filepath.Join(dir, RootfsID)
		if err := clearDest(dest, opt.Force); err != nil {
			return nil, err
		}
		rst = &Restore{Dir: dest, Copy: fs.CopyOptions{Recursive: true, Owners: true, Xattrs: fs.XattrsSafe}}
	}
	if opt.Strict {
		rst = nil
	}
	sopt := ctar.Options{Strict: opt.Strict, Hash: opt.Hash}
	rec, recName, recNote := memberRecord(s.Archive.Path, opt)
	if rec != nil {
		sopt.Hash = true
	}
	var rs *ctar.Restorer
	if rst != nil {
		var err error
		if rs, err = ctar.NewRestorer(rst.Dir, rst.Copy); err != nil {
			return nil, err
		}
		rs.Hook(&sopt)
	}
	pres, err := payload.ScanTar(dec, sopt)
	if err != nil {
		if rs != nil {
			rs.Finish(&ctar.Index{Damage: &damage.Map{}})
		}
		return nil, fmt.Errorf("%s: %w", s.Archive.Path, err)
	}
	stop()
	x := pres.Tar
	res := &Result{Report: report.New(Tool), Images: map[string]string{}, Tar: x}
	var used *report.Sidecar
	switch {
	case rec != nil && pres.Err == nil:
		used = applyRecord(rec, recName, x)
	case recNote != "":
		used = &report.Sidecar{Note: recNote}
	}
	if rs != nil {
		res.Tree, res.Copied, res.CopyErr = rs.Finish(x)
		res.Fragments = rs.Fragments()
		if res.CopyErr != nil && !errors.Is(res.CopyErr, fs.ErrBudget) {
			return nil, fmt.Errorf("%s: %w", s.Archive.Path, res.CopyErr)
		}
	}
	arc := newArchive(s.Archive, dec, string(payload.Tar))
	for _, c := range pres.Configs {
		arc.Configs = append(arc.Configs, c.Name)
	}
	finishArchive(&arc, s.Archive, dec, pres.Problems, pres.ProblemCount, pres.Intact, pres.Err)
	arc.Sidecar = used
	if used != nil && (used.WrongMembers > 0 || used.MissingMembers > 0) {
		arc.Status = report.Damaged
	}
	if pres.Err != nil && opt.Strict {
		// strict: the first problem ends the read; nothing is written
		res.Report.Archives = append(res.Report.Archives, arc)
		return res, nil
	}
	vol := ContainerVolume(x)
	tree := res.Tree
	if tree == nil {
		tree = ctar.NewFS(x, nil)
	}
	res.Report.DamagedFiles = DamagedMembers(tree, x.Damage)
	vol.DamagedFiles = len(res.Report.DamagedFiles)
	if dir != "" && !opt.Unlinked {
		out := newImageSet(dir, opt.Force)
		var cfgs []vma.Config
		for _, c := range pres.Configs {
			cfgs = append(cfgs, vma.Config{Name: c.Name, Data: c.Data})
		}
		if err := out.writeConfigs(cfgs); err != nil {
			return nil, err
		}
		arc.ConfigFiles = out.configFiles
		stats := res.Copied
		if stats == nil { // strict: the stream read cleanly, now the files
			if stats, err = copyContainer(s, x, filepath.Join(dir, RootfsID)); err != nil {
				return nil, err
			}
		}
		vol.Dir, vol.Files = RootfsID, int(stats.Files+stats.Symlinks+stats.HardLinks+stats.Specials)
		for _, e := range stats.Errors {
			vol.Notes = append(vol.Notes, "copy: "+e.Error())
		}
	}
	if dir != "" && !opt.Unlinked {
		res.Report.Fragments = ContainerFragments(&vol, x, res.Fragments)
		vol.Files -= len(res.Report.Fragments) // written as files, not the guest's
	}
	res.Report.Archives = append(res.Report.Archives, arc)
	res.Report.Volumes = append(res.Report.Volumes, vol)
	if dir != "" && !opt.Unlinked {
		if err := res.Report.WriteFile(filepath.Join(dir, "damage.json")); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// memberRecord returns the protect record of a container backup's members,
// or a note saying why a sidecar that is there cannot be used.
func memberRecord(path string, opt Options) (rec ctar.Record, name, note string) {
	chk, note := findChecker(path, opt)
	if chk == nil {
		return nil, "", note
	}
	mr, ok := chk.(MemberRecord)
	if !ok {
		return nil, "", "sidecar not used: it does not record a container backup's members"
	}
	rec, err := mr.Record()
	if err != nil {
		return nil, "", "sidecar not used: " + err.Error()
	}
	return rec, mr.Name(), ""
}

// applyRecord judges a container's members against their protect record
// and says what it found.
func applyRecord(rec ctar.Record, name string, x *ctar.Index) *report.Sidecar {
	r := x.ApplyRecord(rec)
	return &report.Sidecar{Path: name, Used: true, WrongMembers: int64(r.Wrong), ConfirmedMembers: int64(r.Confirmed), MissingMembers: int64(r.Missing)}
}

// clearDest makes sure dest does not exist: with force an earlier
// extraction's tree there is removed.
func clearDest(dest string, force bool) error {
	if _, err := os.Lstat(dest); err == nil {
		if !force {
			return fmt.Errorf("%s exists (use --force to overwrite)", dest)
		}
		return os.RemoveAll(dest)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ContainerVolume is the report entry of a container's root filesystem.
func ContainerVolume(x *ctar.Index) report.Volume {
	return report.Volume{ID: RootfsID, Kind: "tar", FS: "tar", Size: x.Size, DamagedBytes: x.Damage.Total(damage.Tainted)}
}

// copyContainer copies a container's tree to dest (which must not exist)
// from a second decoding of the stream, keeping owners when run as root;
// device nodes and setuid/setgid bits are not recreated.
func copyContainer(s *payload.Stream, x *ctar.Index, dest string) (*fs.CopyStats, error) {
	sr := ctar.NewStreamReader(s.Reopen)
	defer sr.Close()
	f := ctar.NewFS(x, sr)
	stats, err := fs.Copy(f, f.Root(), "/", dest, fs.CopyOptions{Recursive: true, Owners: true, Xattrs: fs.XattrsSafe,
		Budget: &fs.Budget{MaxRead: x.Size + 64<<20, MaxWrite: x.Size + 64<<20}})
	if err != nil {
		return stats, fmt.Errorf("copy to %s: %w", dest, err)
	}
	return stats, nil
}

// DamagedMembers judges every file of a container's tree against the
// stream's damage: each file with a byte in damage, cut off, or whose
// headers had problems.
func DamagedMembers(f fs.FS, dmg *damage.Map) []report.DamagedFile {
	out := []report.DamagedFile{}
	fs.Walk(f, f.Root(), func(path string, e *fs.DirEntry, st *fs.Stat, err error) error {
		df := report.DamagedFile{Volume: RootfsID, Path: path}
		if st == nil {
			df.State = fs.StateLost
		} else {
			lay, _ := f.Layout(st.Node)
			a := fs.Assess(st, lay, e, dmg)
			df.State, df.Size, df.BadBytes, df.MissingBytes, df.Ranges, df.Problems = a.State, st.Size, a.BadBytes, a.MissingBytes, a.Ranges, st.Problems
		}
		if err != nil {
			df.Problems = append(df.Problems, err.Error())
		}
		if df.State.Damaged() {
			out = append(out, df)
		}
		return nil
	})
	return out
}

// ContainerFragments reports the fragments of a container's stream (x)
// that a Restorer wrote (lost+found/@OFFSET), and notes them in rv.
func ContainerFragments(rv *report.Volume, x *ctar.Index, written []ctar.Fragment) []report.Fragment {
	if len(x.Fragments) == 0 {
		return nil
	}
	var out []report.Fragment
	var bytes int64
	for _, fr := range written {
		out = append(out, report.Fragment{Volume: rv.ID, Path: fr.Path(), StreamOffset: fr.Off, Size: fr.Size, Trimmed: fr.Trimmed,
			State: report.FragmentUnverified})
		bytes += fr.Size
	}
	if n := len(x.Fragments) - len(written); n > 0 {
		rv.Notes = append(rv.Notes, fmt.Sprintf("%d runs of content whose tar headers were lost could not be written to /lost+found", n))
	}
	if len(out) == 0 {
		return nil
	}
	rv.Notes = append(rv.Notes, fmt.Sprintf("%d runs of content (%d bytes) whose tar headers were lost are in /lost+found as @OFFSET: "+
		"every byte decoded right, but which file each is, and whether it is all of it, is not known (report.json fragments)", len(out), bytes))
	return out
}

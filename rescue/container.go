package rescue

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/payload"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/source"
	"github.com/vzsalvage/vzsalvage/volume"
)

// runContainer rescues a container backup: each backup's stream is read
// once for its index and damage; the files are then copied out of the
// newest (decoding it again, forward), damaged ones taken from an older
// backup that holds them intact (same path, size and modification time).
// The config files go to dir (pct.conf, pct.fw), the files to
// dir/files/rootfs/.
func runContainer(path, dir string, opt Options) (*Report, error) {
	if len(opt.Also) == 0 {
		return runContainerOnce(path, dir, opt)
	}
	rep := &Report{Report: report.New(extract.Tool), Dir: dir}
	paths := append([]string{path}, opt.Also...)
	var results []*extract.Result
	for i, p := range paths {
		opt.Progress.Phase("read "+filepath.Base(p), 0)
		res, err := extract.Verify(p, extract.Options{Progress: opt.Progress.Set})
		if err != nil {
			if i > 0 {
				return nil, fmt.Errorf("older backup %s: %w", p, err)
			}
			return nil, err
		}
		if res.Tar == nil {
			return nil, fmt.Errorf("%s is not a container backup, unlike %s", p, path)
		}
		results = append(results, res)
	}
	// older generations newest first, by the time in their names
	olds := results[1:]
	sort.SliceStable(olds, func(i, j int) bool { return olds[i].Report.Archives[0].Time > olds[j].Report.Archives[0].Time })
	var gens []ctar.Generation
	for _, res := range results {
		p := res.Report.Archives[0].Path
		sr := ctar.NewStreamReader(func() (io.ReadCloser, error) { return payload.OpenDecoded(p, codec.Options{}) })
		defer sr.Close()
		gens = append(gens, ctar.Generation{Index: res.Tar, R: sr, Name: p})
		rep.Archives = append(rep.Archives, res.Report.Archives...)
	}
	for _, c := range results[0].Tar.Configs {
		name := extract.SafeFileName(c.Name)
		if err := report.WriteFileAtomic(filepath.Join(dir, name), c.Data, 0o644); err != nil {
			return nil, err
		}
		if c.Name == "pct.conf" {
			rep.Config = name
		}
	}
	cv := ctar.NewVolume(gens)
	v := source.ContainerVolume(cv)
	var filled = cv.Filled
	if len(gens) == 1 {
		filled = nil
	}
	// What a tar stream holds bounds what its files can take (sparse
	// members excepted, whose holes Copy skips).
	budget := &fs.Budget{MaxRead: v.Size + copySlack, MaxWrite: v.Size + copySlack}
	if opt.MaxOutput > 0 {
		budget.MaxWrite, budget.MaxRead = opt.MaxOutput, max(budget.MaxRead, opt.MaxOutput)
	}
	rv, damaged, err := rescueVolume(v, filepath.Join(dir, "files"), filled, budget, nil, opt)
	if err != nil {
		rv.Error = err.Error()
	}
	rv.Kind = "tar"
	ownersNote(&rv, opt)
	if len(cv.Sources) > 0 {
		rv.Notes = append(rv.Notes, fmt.Sprintf("%d damaged files taken whole from older backups (same path, size and time)", len(cv.Sources)))
		from := map[string]string{}
		for _, s := range cv.Sources {
			from[s.Path] = s.Archive
		}
		for i := range damaged {
			if a, ok := from[damaged[i].Path]; ok {
				damaged[i].Problems = append(damaged[i].Problems, "content from "+filepath.Base(a))
			}
		}
	}
	rep.Volumes = append(rep.Volumes, rv)
	rep.DamagedFiles = append(rep.DamagedFiles, damaged...)
	if budget.Stopped != "" {
		rep.CopyStopped = budgetMessage(budget, opt.MaxOutput)
	}
	if err := writeAccount(rep, dir); err != nil {
		return nil, err
	}
	return rep, nil
}

// runContainerOnce rescues one container backup in one read of its
// stream: each file is written as it passes, and judged once the stream's
// damage is known.
func runContainerOnce(path, dir string, opt Options) (*Report, error) {
	rep := &Report{Report: report.New(extract.Tool), Dir: dir}
	filesDir := filepath.Join(dir, "files")
	if err := os.MkdirAll(filesDir, 0o755); err != nil {
		return nil, err
	}
	budget := &fs.Budget{}
	if opt.MaxOutput > 0 {
		// the stream bounds what its files can take (each byte is written
		// once, holes are not): a cap only when asked for
		budget.MaxWrite, budget.MaxRead = opt.MaxOutput, opt.MaxOutput
	}
	opt.Progress.Phase("read and copy "+filepath.Base(path), 0)
	res, err := extract.Verify(path, extract.Options{Progress: opt.Progress.Set, Context: opt.Context,
		Restore: &extract.Restore{Dir: filepath.Join(filesDir, extract.RootfsID), Copy: fs.CopyOptions{
			Recursive: true, Owners: opt.Owners, Xattrs: opt.Xattrs, Specials: opt.Specials, SetID: opt.Specials,
			Budget: budget, Context: opt.Context}}})
	if err != nil {
		return nil, err
	}
	if res.Tar == nil {
		return nil, fmt.Errorf("%s is not a container backup", path)
	}
	rep.Archives = append(rep.Archives, res.Report.Archives...)
	for _, c := range res.Tar.Configs {
		if err := report.WriteFileAtomic(filepath.Join(dir, extract.SafeFileName(c.Name)), c.Data, 0o644); err != nil {
			return nil, err
		}
	}
	x := res.Tar
	v := volume.Volume{ID: extract.RootfsID, Kind: "tar", FS: "tar", Size: x.Size, Damage: x.Damage}
	rv := VolumeReport(v)
	rv.Notes = append(rv.Notes, res.Tree.Info().Problems...)
	rv.Dir = filepath.Join("files", extract.RootfsID)
	if res.CopyErr != nil {
		rv.Error = "copy stopped: " + res.CopyErr.Error()
	}
	damaged := judgeFiles(&rv, v, res.Tree, res.Copied, nil)
	ownersNote(&rv, opt)
	rep.Fragments = extract.ContainerFragments(&rv, x, res.Fragments)
	rep.Volumes = append(rep.Volumes, rv)
	rep.DamagedFiles = append(rep.DamagedFiles, damaged...)
	if budget.Stopped != "" {
		rep.CopyStopped = budgetMessage(budget, opt.MaxOutput)
	}
	if err := writeAccount(rep, dir); err != nil {
		return nil, err
	}
	return rep, nil
}

// ownersNote says when a container's files do not have the guest's owners.
func ownersNote(rv *report.Volume, opt Options) {
	if os.Geteuid() != 0 || !opt.Owners {
		rv.Notes = append(rv.Notes, "owners not kept (they are only as root): the files are yours; 'vzsalvage ls' shows the guest's numeric owners")
	}
}

// isContainer reports whether the backup at path holds a container.
func isContainer(path string) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	k, err := payload.KindOf(path)
	return err == nil && k == payload.Tar
}

package main

import (
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/source"
	"github.com/vzsalvage/vzsalvage/volume"
)

func newCp() *cobra.Command {
	var recursive, quiet, noJournal, noOwners, specials, force bool
	var cache string
	var cf copyFlags
	c := &cobra.Command{
		Use:   "cp [-r] SOURCE VOLUME:/path DEST",
		Short: "Copy a file or a tree out of a backup or disk image",
		Long: `cp copies a file (or with -r a directory tree) out of a volume's filesystem, without
root or mounts. SOURCE is a backup archive, an extract/rescue directory or a disk image;
VOLUME is an id as 'vzsalvage ls SOURCE' prints it. Modes, times, symlinks and hard links
are kept, owners too when run as root. If DEST is an existing directory the copy goes
inside it. Nothing is written outside DEST: unsafe names are renamed, symlinks are never
followed, device nodes and setuid bits are skipped unless --specials. Extended
attributes: user.* and POSIX ACLs only, unless --xattrs all. A file reached under
several names is copied once and hard-linked; at most the volume's size of file
data is read and written (--max-output to change it).

Files whose bytes lie in reported damage are still copied, and listed on stderr;
the exit status is then 1.`,
		Example: `  vzsalvage cp -r backup.vma.zst drive-scsi0-p3:/var/lib/docker/volumes ./volumes
  vzsalvage cp /srv/rescue/100 drive-scsi0-p3:/etc/fstab .`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := openSource(cmd, args[0], cache, quiet)
			if err != nil {
				return err
			}
			defer src.Close()
			id, p, err := splitVolPath(args[1])
			if err != nil {
				return err
			}
			v, err := source.Find(src.Volumes(), id)
			if err != nil {
				return err
			}
			f, err := source.OpenFS(v, source.FSOptions{NoJournal: noJournal})
			if err != nil {
				return err
			}
			n, err := fs.Lookup(f, p)
			if err != nil {
				return fmt.Errorf("%s:%s: %w", id, p, err)
			}
			prog := ui.NewProgress(!quiet)
			prog.Start("copy", 0)
			budget := copyBudget(src, v)
			if cf.maxOutput > 0 {
				budget.MaxRead, budget.MaxWrite = max(budget.MaxRead, int64(cf.maxOutput)), int64(cf.maxOutput)
			}
			stats, err := fs.Copy(f, n, path.Clean("/"+p), args[2], fs.CopyOptions{
				Recursive: recursive, Owners: !noOwners, Xattrs: cf.xattrs, Specials: specials, SetID: specials,
				Budget: budget, Replace: force,
				Progress: func(bytes, files int64) { prog.Set(bytes, 0) },
			})
			prog.Done()
			if errors.Is(err, fs.ErrBudget) {
				return fmt.Errorf("%w (%s read, %s written: the filesystem names the same data many times, damaged or crafted; --max-output raises the cap)",
					err, ui.Bytes(budget.Read), ui.Bytes(budget.Written))
			}
			if err != nil {
				return err
			}
			if exist := existing(stats); exist != "" {
				return &exitError{code: ui.ExitFailed, err: fmt.Errorf("%s already exists in %s: nothing was replaced (--force replaces it, or choose a new DEST)", exist, args[2])}
			}
			damaged := reportCopy(cmd.OutOrStdout(), cmd.ErrOrStderr(), f, n, path.Clean("/"+p), v.Damage, stats, recursive)
			if damaged {
				return errDamaged
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy directories recursively")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	c.Flags().BoolVar(&noJournal, "no-journal", false, "read ext3/ext4 and XFS as on disk, without replaying the journal or log")
	c.Flags().BoolVar(&noOwners, "no-owners", false, "do not keep owners (kept only when run as root anyway)")
	c.Flags().BoolVar(&specials, "specials", false, "recreate device nodes and FIFOs, keep setuid/setgid bits")
	c.Flags().BoolVarP(&force, "force", "f", false, "replace files, symlinks and special files that exist at DEST (renamed over, never written through); existing directories are merged into")
	cf.add(c.Flags())
	c.Flags().StringVar(&cache, "cache", "", "keep an archive's extracted disks in DIR for later commands (default: unnamed temporary files, removed when done)")
	return c
}

// existing returns the first guest path that could not be written because
// its name exists at the destination ("" if none): a host problem, not
// damage.
func existing(stats *fs.CopyStats) string {
	for _, e := range stats.Errors {
		if errors.Is(e.Err, fs.ErrExist) {
			return ui.Safe(e.Path)
		}
	}
	return ""
}

// count returns "1 file" or "3 files".
func count(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// reportCopy prints what was copied and lists damaged files on stderr. It
// returns whether anything copied is damaged or failed.
func reportCopy(w, errw io.Writer, f fs.FS, n fs.Node, p string, dmg *damage.Map, stats *fs.CopyStats, recursive bool) bool {
	bad := false
	for _, e := range stats.Errors {
		fmt.Fprintf(errw, "vzsalvage: %s\n", ui.Safe(e.Error()))
		bad = true
	}
	walk := func(fn fs.WalkFunc) error {
		if !recursive {
			st, err := f.Stat(n)
			return fn(p, nil, st, err)
		}
		return fs.Walk(f, n, func(q string, e *fs.DirEntry, st *fs.Stat, err error) error {
			return fn(path.Join(p, q), e, st, err)
		})
	}
	walk(func(q string, e *fs.DirEntry, st *fs.Stat, err error) error {
		if st == nil {
			return nil
		}
		lay, _ := f.Layout(st.Node)
		if a := fs.Assess(st, lay, e, dmg); a.State.Damaged() {
			fmt.Fprintf(errw, "damaged: %s (%s, %d bad bytes)\n", ui.Safe(q), a.State, a.BadBytes)
			bad = true
		}
		return nil
	})
	fmt.Fprintf(w, "copied %s, %s, %s, %s (%s)\n", count(stats.Files, "file", "files"), count(stats.Dirs, "directory", "directories"),
		count(stats.Symlinks, "symlink", "symlinks"), count(stats.HardLinks, "hard link", "hard links"), ui.Bytes(stats.Bytes))
	for _, s := range stats.Skipped {
		fmt.Fprintf(errw, "skipped: %s\n", ui.Safe(s.Error()))
	}
	for _, s := range stats.Renamed {
		fmt.Fprintf(errw, "renamed (unsafe name): %s\n", ui.Safe(s.Path))
	}
	for _, s := range stats.Aliased {
		fmt.Fprintf(errw, "hard-linked (same inode as an earlier name, link count 1): %s\n", ui.Safe(s.Path))
	}
	if stats.XattrsSkipped > 0 {
		fmt.Fprintf(errw, "%d extended attributes not restored (security.*, trusted.*, file capabilities: --xattrs all)\n", stats.XattrsSkipped)
	}
	return bad
}

// copyBudget bounds what a copy may read and write: the bytes the volume
// covers, and no more than the backup stores of its disk (a crafted
// filesystem can name the same blocks many times, and a guest chooses its
// disk's size), with 64 MiB of slack.
func copyBudget(src *source.Source, v volume.Volume) *fs.Budget {
	const slack = 64 << 20
	write := v.Size
	if src.Report != nil {
		for _, d := range src.Report.Devices {
			if d.Name == v.Device {
				write = min(write, d.Stored())
			}
		}
	}
	return &fs.Budget{MaxRead: v.Size + slack, MaxWrite: write + slack}
}

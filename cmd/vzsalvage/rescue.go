package main

import (
	"errors"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/rescue"
)

func newRescue() *cobra.Command {
	var out string
	var opt rescue.Options
	var asJSON, quiet, noOwners bool
	var cf copyFlags
	c := &cobra.Command{
		Use:   "rescue ARCHIVE [--also OLDER_ARCHIVE...] -o DIR",
		Short: "Do the whole night's work: disks, files and a report, from a damaged backup",
		Long: `rescue reads a backup past its damage and writes into DIR:
  DIR/disks/                 the disks (disk-<device>.raw, sparse), configs and damage.json
  DIR/files/<volume-id>/...  every file that could be read, from every partition, LV and
                             filesystem found (owners when run as root, modes, times,
                             symlinks and hard links kept)
  DIR/report.md              what was recovered, what was lost, which files are damaged and
                             how badly, and what to do next: read this first
  DIR/report.json            the same for scripts (damage per disk, per volume, per file)

With --also, older backups of the same VM fill what the newest lacks: clusters lost or
tainted in the newest are taken from an older backup that has them intact (and the report
says which ranges, and which files are mixed from two nights); tainted clusters that an
older backup holds identically are confirmed. With three or more backups, clusters that
differ from two agreeing others in a backup whose checksum failed are reported as suspects.
Before any heavy work, each older backup is checked to be of the same guest (VMID in the
name, SMBIOS uuid in the config, a disk of the same name and size); another guest's backup
is refused unless --other-guest.

If the rescue cannot finish (no space left, an unreadable backup, Ctrl-C or SIGTERM), it
removes what it wrote into DIR and says so: DIR never holds a half-done rescue.

Nothing is written outside DIR: names from the guest are made safe, symlinks are recreated
but never followed, device nodes and setuid bits are not recreated unless --specials.
Extended attributes: user.* and POSIX ACLs only; security.*, trusted.* and file
capabilities only with --xattrs all (capabilities then only on files whose owners
are kept). The guest decides what its filesystems say: a file reached under several
names is copied once and hard-linked, partitions that lie at the same place are
read once, and all the copies together write at most what the backup's disks hold
(--max-output to change that): past it the copies stop, the report says so, and the
exit status is 1.

Exit status: 0 everything intact, 1 something damaged (everything readable was still
recovered), 2 could not run.`,
		Example: `  vzsalvage rescue vzdump-qemu-100-2025_12_15-03_00_03.vma.zst -o /srv/rescue/100
  vzsalvage rescue vzdump-qemu-100-2025_12_15-03_00_03.vma.zst \
      --also vzdump-qemu-100-2025_12_14-03_00_02.vma.zst --also vzdump-qemu-100-2025_12_13-03_00_02.vma.zst \
      -o /srv/rescue/100`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &exitError{code: ui.ExitFailed, err: errors.New("rescue needs -o DIR")}
			}
			opt.Owners = !noOwners
			opt.Xattrs, opt.MaxOutput = cf.xattrs, int64(cf.maxOutput)
			return runRescue(cmd.OutOrStdout(), args[0], out, opt, asJSON, quiet)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "directory to write into (created; must be empty unless --force)")
	c.Flags().StringArrayVar(&opt.Also, "also", nil, "an older backup of the same VM (repeatable)")
	c.Flags().BoolVar(&opt.OtherGuest, "other-guest", false, "let --also take a backup that looks like another guest's (other VMID, SMBIOS uuid or disks)")
	c.Flags().BoolVar(&opt.Force, "force", false, "replace an earlier rescue's outputs in DIR (only what vzsalvage wrote there; anything else is kept, and a user's own disks/ or files/ is never deleted)")
	c.Flags().BoolVar(&opt.NoJournal, "no-journal", false, "read ext3/ext4 and XFS as on disk, without replaying the journal or log")
	c.Flags().BoolVar(&noOwners, "no-owners", false, "do not keep file owners (they are kept only when run as root anyway)")
	c.Flags().StringVar(&opt.Format, "format", "raw", "format of the disk images in DIR/disks: raw (sparse) or qcow2")
	c.Flags().BoolVar(&opt.Compress, "compress", false, "with --format qcow2: compress the images' clusters")
	c.Flags().BoolVar(&opt.Specials, "specials", false, "recreate device nodes and FIFOs, keep setuid/setgid bits")
	cf.add(c.Flags())
	c.Flags().BoolVar(&asJSON, "json", false, "print report.json to stdout")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return c
}

// phaseProgress adapts ui.Progress to rescue's phases.
type phaseProgress struct{ p *ui.Progress }

func (pp phaseProgress) Phase(name string, total int64) { pp.p.Start(name, total) }
func (pp phaseProgress) Set(done, total int64)          { pp.p.Set(done, total) }

func runRescue(w io.Writer, path, dir string, opt rescue.Options, asJSON, quiet bool) error {
	prog := ui.NewProgress(!quiet && !asJSON)
	opt.Progress = phaseProgress{prog}
	ctx, stop := interruptible()
	defer stop()
	opt.Context = ctx
	rep, err := rescue.Run(path, dir, opt)
	prog.Done()
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(w, rep.Report); err != nil {
			return err
		}
	} else {
		ui.Fprintf(w, "%s\n", rep.Summary())
		ui.Fprintf(w, "read first: %s\n", filepath.Join(dir, "report.md"))
	}
	if !rep.Intact() {
		return errDamaged
	}
	return nil
}

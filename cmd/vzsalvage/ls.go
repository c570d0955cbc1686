package main

import (
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/rescue"
	"github.com/vzsalvage/vzsalvage/source"
	"github.com/vzsalvage/vzsalvage/volume"
)

func newLs() *cobra.Command {
	var asJSON, quiet, noJournal bool
	var cache string
	c := &cobra.Command{
		Use:   "ls SOURCE [VOLUME:/path]",
		Short: "List the volumes of a backup or image, or a directory in one",
		Long: `ls finds every volume on a guest's disks without root, loop devices or mounts:
GPT and MBR partitions (extended/logical too), LVM2 logical volumes, and filesystems on a
whole disk. SOURCE is a backup archive, a directory written by extract or rescue, or a
disk image file (raw or qcow2). An archive's disks are read into unnamed temporary files
(in $TMPDIR, else /tmp) that vanish when ls ends; --cache DIR keeps them there for the
next ls or cp, and for many commands on one large backup 'vzsalvage extract' it once.

Without a path it prints one line per volume with its id (e.g. drive-scsi0-p3,
drive-scsi0-vg0-root), which every other command accepts, and how much of it lies in
reported damage. With VOLUME:/path it lists that directory of the volume's filesystem.`,
		Example: `  vzsalvage ls vzdump-qemu-100-2025_12_15-03_00_03.vma.zst
  vzsalvage ls /srv/rescue/100 drive-scsi0-p3:/var/lib/docker/volumes
  vzsalvage ls --json disk.qcow2`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := openSource(cmd, args[0], cache, quiet || asJSON)
			if err != nil {
				return err
			}
			defer src.Close()
			vols := src.Volumes()
			if len(args) == 1 {
				if err := listVolumes(cmd.OutOrStdout(), vols, asJSON); err != nil {
					return err
				}
				if d := src.Damaged(); d != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "vzsalvage: %s\n", d)
					return errDamaged
				}
				return nil
			}
			return listPath(cmd.OutOrStdout(), vols, args[1], source.FSOptions{NoJournal: noJournal}, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	c.Flags().BoolVar(&noJournal, "no-journal", false, "read ext3/ext4 and XFS as on disk, without replaying the journal or log (like mount -o norecovery)")
	c.Flags().StringVar(&cache, "cache", "", "keep an archive's extracted disks in DIR for later commands (default: unnamed temporary files, removed when done)")
	return c
}

// openSource opens a SOURCE argument with progress for archive extraction.
func openSource(cmd *cobra.Command, path, cache string, quiet bool) (*source.Source, error) {
	prog := ui.NewProgress(!quiet)
	defer prog.Done()
	return source.Open(path, source.Options{
		CacheDir: cache,
		Progress: prog.Set,
		Notify: func(msg string) {
			if !quiet {
				fmt.Fprintln(cmd.ErrOrStderr(), msg)
			}
			prog.Start("extract", 0)
		},
	})
}

func listVolumes(w io.Writer, vols []volume.Volume, asJSON bool) error {
	if asJSON {
		out := struct {
			Volumes []report.Volume `json:"volumes"`
		}{Volumes: []report.Volume{}}
		for _, v := range vols {
			out.Volumes = append(out.Volumes, rescue.VolumeReport(v))
		}
		return printJSON(w, out)
	}
	if len(vols) == 0 {
		fmt.Fprintln(w, "no volumes found")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOFFSET\tSIZE\tTYPE\tLABEL\tUUID\tDAMAGED")
	for _, v := range vols {
		dmg := "-"
		if n := v.Damage.Total(damage.Tainted); n > 0 {
			dmg = ui.Bytes(n)
		}
		typ := v.FS
		if typ == "" {
			typ = "?"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", ui.Safe(v.ID), v.Offset, ui.Bytes(v.Size), ui.Safe(typ), ui.Safe(v.Label), ui.Safe(v.UUID), dmg)
	}
	tw.Flush()
	for _, v := range vols {
		for _, n := range v.Notes {
			fmt.Fprintf(w, "note: %s: %s\n", ui.Safe(v.ID), ui.Safe(n))
		}
	}
	return nil
}

// splitVolPath splits "VOLUME:/path" (a bare VOLUME means its root).
func splitVolPath(arg string) (string, string, error) {
	id, p, ok := strings.Cut(arg, ":")
	if !ok {
		p = "/"
	}
	if id == "" {
		return "", "", &exitError{code: ui.ExitFailed, err: fmt.Errorf("%q: expected VOLUME:/path, e.g. drive-scsi0-p3:/etc", arg)}
	}
	if p == "" {
		p = "/"
	}
	return id, p, nil
}

// lsEntry is one line of a directory listing.
type lsEntry struct {
	Name     string    `json:"name"`
	Node     uint64    `json:"inode"`
	Mode     string    `json:"mode"`
	Size     int64     `json:"size"`
	UID      uint32    `json:"uid"`
	GID      uint32    `json:"gid"`
	Nlink    uint32    `json:"nlink"`
	Mtime    time.Time `json:"mtime"`
	Target   string    `json:"target,omitempty"`
	State    fs.State  `json:"damage,omitempty"`
	BadBytes int64     `json:"bad_bytes,omitempty"`
	Problems []string  `json:"problems,omitempty"`
}

func listPath(w io.Writer, vols []volume.Volume, arg string, opt source.FSOptions, asJSON bool) error {
	id, p, err := splitVolPath(arg)
	if err != nil {
		return err
	}
	v, err := source.Find(vols, id)
	if err != nil {
		return err
	}
	f, err := source.OpenFS(v, opt)
	if err != nil {
		return err
	}
	f = fs.WithOrphans(f)
	n, err := fs.LookupFollow(f, p)
	if err != nil {
		return fmt.Errorf("%s:%s: %w", id, p, err)
	}
	st, err := f.Stat(n)
	if err != nil {
		return fmt.Errorf("%s:%s: %w", id, p, err)
	}
	entries := []fs.DirEntry{{Name: path.Base(p), Node: n}}
	var dirErr error
	if st.Mode.IsDir() {
		entries, dirErr = f.ReadDir(n)
	}
	out := []lsEntry{}
	damaged := false
	for i := range entries {
		e := &entries[i]
		le := lsEntry{Name: e.Name, Node: uint64(e.Node), Mode: lsMode(e.Type)}
		st, err := f.Stat(e.Node)
		if err != nil {
			le.State, le.Problems = fs.StateLost, []string{err.Error()}
		} else {
			le.Mode, le.Size, le.UID, le.GID, le.Nlink, le.Mtime = lsMode(st.Mode), st.Size, st.UID, st.GID, st.Nlink, st.Mtime
			if st.Mode&iofs.ModeSymlink != 0 {
				le.Target, _ = f.ReadLink(e.Node)
			}
			lay, _ := f.Layout(e.Node)
			a := fs.Assess(st, lay, e, v.Damage)
			le.State, le.BadBytes, le.Problems = a.State, a.BadBytes, st.Problems
		}
		damaged = damaged || le.State.Damaged()
		out = append(out, le)
	}
	if asJSON {
		if err := printJSON(w, out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
		for _, le := range out {
			name := ui.Safe(le.Name)
			if le.Target != "" {
				name += " -> " + ui.Safe(le.Target)
			}
			mark := ""
			if le.State.Damaged() {
				mark = fmt.Sprintf("  [damaged: %s", le.State)
				if le.BadBytes > 0 {
					mark += fmt.Sprintf(", %d bad bytes", le.BadBytes)
				}
				mark += "]"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s%s\n", le.Mode, le.Nlink, le.UID, le.GID, le.Size,
				le.Mtime.Format("2006-01-02 15:04"), name, mark)
		}
		tw.Flush()
	}
	if dirErr != nil {
		return &exitError{code: ui.ExitDamaged, err: fmt.Errorf("%s:%s: directory partly unreadable: %v", id, p, dirErr)}
	}
	if damaged {
		return errDamaged
	}
	return nil
}

// lsMode formats a mode as ls -l does: "drwxr-xr-x", "lrwxrwxrwx", "-rwsr-xr-x".
func lsMode(m iofs.FileMode) string {
	b := []byte("-rwxrwxrwx")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&iofs.ModeSymlink != 0:
		b[0] = 'l'
	case m&iofs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&iofs.ModeDevice != 0:
		b[0] = 'b'
	case m&iofs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&iofs.ModeSocket != 0:
		b[0] = 's'
	}
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) == 0 {
			b[1+i] = '-'
		}
	}
	set := func(i int, on bool, x, noX byte) {
		if on {
			if b[i] == 'x' {
				b[i] = x
			} else {
				b[i] = noX
			}
		}
	}
	set(3, m&iofs.ModeSetuid != 0, 's', 'S')
	set(6, m&iofs.ModeSetgid != 0, 's', 'S')
	set(9, m&iofs.ModeSticky != 0, 't', 'T')
	return string(b)
}

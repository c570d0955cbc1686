package main

import (
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/report"
)

func newVerify() *cobra.Command {
	var asJSON, quiet bool
	c := &cobra.Command{
		Use:   "verify ARCHIVE...",
		Short: "Read backups completely and check every structure and checksum",
		Long: `verify reads each backup end to end without writing anything: the compressed
stream and its checksum, the VMA header, every extent, and that every cluster of every
disk is present (Proxmox's own 'vma verify' misses clusters missing at the end). It keeps
going after a problem and reports the first and every damaged place.

Exit status: 0 all intact, 1 any damaged, 2 could not read one.`,
		Example: `  vzsalvage verify /var/lib/vz/dump/vzdump-qemu-100-*.vma.zst
  vzsalvage verify --json backup.vma.zst > verify.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return verify(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, asJSON, quiet)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (the archives and devices of damage.json)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return c
}

func verify(w, errw io.Writer, paths []string, asJSON, quiet bool) error {
	rep := report.New(extract.Tool)
	damaged := false
	failed := false
	for _, p := range paths {
		prog := ui.NewProgress(!quiet && !asJSON)
		prog.Start("verify "+filepath.Base(p), 0)
		res, err := extract.Verify(p, extract.Options{Progress: prog.Set})
		prog.Done()
		if err != nil {
			failed = true
			ui.Fprintf(errw, "vzsalvage: %v\n", err)
			rep.Archives = append(rep.Archives, report.Archive{Path: p, Status: report.Unreadable, Checksum: codec.ChecksumUnknown,
				Problems: []damage.Problem{{Offset: -1, Message: err.Error(), Kind: damage.ReadError}}, ProblemCount: 1})
			continue
		}
		rep.Archives = append(rep.Archives, res.Report.Archives...)
		rep.Devices = append(rep.Devices, res.Report.Devices...)
		rep.Volumes = append(rep.Volumes, res.Report.Volumes...) // a container's root filesystem
		rep.DamagedFiles = append(rep.DamagedFiles, res.Report.DamagedFiles...)
		if !res.Intact() {
			damaged = true
		}
		if !asJSON {
			printArchive(w, res.Report, false)
		}
	}
	if asJSON {
		if err := printJSON(w, rep); err != nil {
			return err
		}
	}
	switch {
	case failed:
		return &exitError{code: ui.ExitFailed}
	case damaged:
		return errDamaged
	}
	return nil
}

// printArchive prints a human summary of a read: status, checksum, problems
// and the clusters of each disk.
func printArchive(w io.Writer, rep *report.Report, allProblems bool) {
	for _, a := range rep.Archives {
		ui.Fprintf(w, "%s: %s (checksum %s)\n", a.Path, a.Status, a.Checksum)
		if a.ProblemCount > 0 {
			ui.Fprintf(w, "  first problem: %s\n", ui.Safe(a.Problems[0].String()))
			limit := 10
			if allProblems {
				limit = len(a.Problems)
			}
			if a.ProblemCount > 1 {
				ui.Fprintf(w, "  %d problems:\n", a.ProblemCount)
				for i, p := range a.Problems {
					if i == limit {
						ui.Fprintf(w, "    ... %d more (see --json)\n", a.ProblemCount-limit)
						break
					}
					ui.Fprintf(w, "    %s\n", ui.Safe(p.String()))
				}
			}
		}
		if a.Checksum == codec.ChecksumMismatch && a.ProblemCount == 0 {
			ui.Fprintf(w, "  the stream's checksum fails but no damage could be located\n")
		}
		if a.MayBeFlip() {
			ui.Fprintf(w, "  if a bit flipped: vzsalvage repair %s -o FIXED tries each flip of the block that fails against the checksum\n", ui.Safe(a.Path))
		}
		if s := a.Sidecar; s != nil && s.Used && s.WrongMembers+s.ConfirmedMembers+s.MissingMembers > 0 {
			ui.Fprintf(w, "  sidecar: %d members differ from the original, %d suspected ones proved right, %d not found\n",
				s.WrongMembers, s.ConfirmedMembers, s.MissingMembers)
		}
	}
	for _, d := range rep.Devices {
		c := d.Clusters
		ui.Fprintf(w, "  %s (%s): %d clusters: %d ok, %d zero, %d tainted, %d lost\n",
			ui.Safe(d.Name), ui.Bytes(d.Size), c.Total, c.OK, c.Zero, c.Tainted, c.Lost)
	}
	if len(rep.Devices) == 0 { // a container: its files
		for _, v := range rep.Volumes {
			ui.Fprintf(w, "  %s (%s of tar stream): %d files damaged, %s of the stream lost or not right\n",
				v.ID, ui.Bytes(v.Size), v.DamagedFiles, ui.Bytes(v.DamagedBytes))
		}
		for i, f := range rep.DamagedFiles {
			if i == 10 && !allProblems {
				ui.Fprintf(w, "    ... %d more (see --json)\n", len(rep.DamagedFiles)-i)
				break
			}
			ui.Fprintf(w, "    %s: %s, %d bad bytes\n", ui.Safe(f.Path), f.State, f.BadBytes)
		}
	}
}

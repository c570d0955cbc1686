package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/protect"
)

func newProtect() *cobra.Command {
	var asJSON, quiet bool
	var overhead float64
	c := &cobra.Command{
		Use:   "protect ARCHIVE...",
		Short: "Verify new backups end to end and write the sidecar that later repairs them",
		Long: `protect reads each backup end to end (as verify does) and, when it is intact, writes
its sidecar ARCHIVE.vzsalvage (or DIR/<name>.vzsalvage with --sidecar-dir): the hash of
every cluster of every disk, the hash of every 4 KiB of the archive file and Reed-Solomon
parity over the file (about 2 % of its size). With it, 'vzsalvage repair' puts a damaged
archive back bit for bit, and every read locates damage no checksum could see.

A damaged archive gets no sidecar: protect then exits 1 and says what is wrong.
The format is described in docs/sidecar.md.

Exit status: 0 every archive protected, 1 any damaged, 2 could not read one.`,
		Example: `  vzsalvage protect /var/lib/vz/dump/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst
  vzsalvage protect --sidecar-dir /srv/sidecars /mnt/pve/nas/dump/*.vma.zst`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProtect(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, overhead/100, asJSON, quiet)
		},
	}
	c.Flags().Float64Var(&overhead, "overhead", 100*protect.DefaultOverhead, "parity size in percent of the archive")
	c.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return c
}

// protectOutput is one archive's entry in protect --json.
type protectOutput struct {
	Archive     string  `json:"archive"`
	Status      string  `json:"status"` // protected, damaged, failed
	Sidecar     string  `json:"sidecar,omitempty"`
	SidecarSize int64   `json:"sidecar_size,omitempty"`
	Overhead    float64 `json:"overhead,omitempty"`
	Error       string  `json:"error,omitempty"`
	Report      any     `json:"report,omitempty"`
}

func runProtect(w, errw io.Writer, paths []string, overhead float64, asJSON, quiet bool) error {
	var outs []protectOutput
	damaged, failed := false, false
	ctx, stop := interruptible()
	defer stop()
	for _, p := range paths {
		prog := ui.NewProgress(!quiet && !asJSON)
		prog.Start("protect "+filepath.Base(p), 0)
		// (a damaged .zst is read twice: fast, then in full to say where)
		reread := func() { prog.Start("protect "+filepath.Base(p)+": not intact, locating the damage", 0) }
		res, err := protect.Protect(p, protect.Options{SidecarDir: sidecarDir, Overhead: overhead, Progress: prog.Set, Reread: reread, Tool: "vzsalvage " + version, Context: ctx})
		prog.Done()
		if errors.Is(err, context.Canceled) {
			return &exitError{code: ui.ExitFailed, err: fmt.Errorf("interrupted: no sidecar written for %s", p)}
		}
		o := protectOutput{Archive: p}
		switch {
		case err != nil:
			failed = true
			o.Status, o.Error = "failed", err.Error()
			ui.Fprintf(errw, "vzsalvage: %s\n", ui.Safe(err.Error()))
		case !res.Intact:
			damaged = true
			o.Status, o.Report = "damaged", res.Report
			if !asJSON {
				printArchive(w, res.Report, false)
				ui.Fprintf(w, "  no sidecar written: the archive is damaged already (vzsalvage rescue %s -o DIR)\n", ui.Safe(p))
			}
		default:
			o.Status, o.Sidecar, o.SidecarSize = "protected", res.Sidecar, res.SidecarSize
			o.Overhead = float64(res.SidecarSize) / float64(max(res.ArchiveSize, 1))
			if !asJSON {
				ui.Fprintf(w, "%s: intact; sidecar %s (%s, %.2f %% of the archive; %s)\n", ui.Safe(p), ui.Safe(res.Sidecar),
					ui.Bytes(res.SidecarSize), 100*o.Overhead, parityNote(res.Parity, res.ArchiveSize))
			}
		}
		outs = append(outs, o)
	}
	if asJSON {
		if err := printJSON(w, outs); err != nil {
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

// parityNote says in words what the parity can rebuild.
func parityNote(p protect.Parity, size int64) string {
	run := p.LongestRun(size)
	return fmt.Sprintf("parity rebuilds up to %d damaged 4 KiB chunks in every %s, or one run of %s", p.ParityShards,
		ui.Bytes(int64(p.DataShards+p.ParityShards)*int64(p.ShardSize)), ui.Bytes(run))
}

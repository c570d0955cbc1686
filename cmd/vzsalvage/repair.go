package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/protect"
)

func newRepair() *cobra.Command {
	var out string
	var inPlace, force, asJSON, quiet bool
	c := &cobra.Command{
		Use:   "repair ARCHIVE [-o FIXED | --in-place]",
		Short: "Put a damaged archive back bit for bit from its sidecar",
		Long: `repair checks an archive against the sidecar protect wrote for it: every 4 KiB of the
file against its hash, and the whole against its SHA-256. Damaged chunks are rebuilt from
the sidecar's Reed-Solomon parity when the damage fits it (many small hits spread over
the file, or one run of several MiB).

  -o FIXED     writes the repaired archive to FIXED (also a partial repair, which leaves
               less damage for rescue; the sidecar is copied beside it); an existing
               FIXED is replaced only with --force, the archive itself only by --in-place
  --in-place   replaces the archive, only when the repair is complete
  neither      only checks and says what a repair would do

When the damage exceeds the parity, repair reads the archive with the sidecar and lists
exactly which clusters of which disk are damaged (with a sidecar no damage is silent);
'vzsalvage rescue' then uses the sidecar by itself.

Exit status: 0 intact or completely repaired, 1 damaged (not or partly repaired),
2 could not run (no sidecar, unreadable).`,
		Example: `  vzsalvage repair vzdump-qemu-100-2025_12_15-03_00_03.vma.zst
  vzsalvage repair vzdump-qemu-100-2025_12_15-03_00_03.vma.zst -o /srv/fixed/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst
  vzsalvage repair --in-place vzdump-qemu-100-2025_12_15-03_00_03.vma.zst`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "" && inPlace {
				return &exitError{code: ui.ExitFailed, err: errors.New("-o and --in-place exclude each other")}
			}
			if _, err := os.Stat(args[0]); err != nil {
				return &exitError{code: ui.ExitFailed, err: err}
			}
			if out != "" {
				err := checkOutputFile(out, force,
					input{args[0], "is the archive being repaired: --in-place replaces it (only when the repair is complete)"},
					input{protect.SidecarPath(args[0], sidecarDir), "is the archive's sidecar, which the repair reads"})
				if err != nil {
					return err
				}
			}
			return runRepair(cmd.OutOrStdout(), args[0], protect.RepairOptions{SidecarDir: sidecarDir, Output: out, InPlace: inPlace}, asJSON, quiet)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write the repaired archive to this file")
	c.Flags().BoolVar(&inPlace, "in-place", false, "replace the archive when the repair is complete")
	c.Flags().BoolVarP(&force, "force", "f", false, "replace an existing FIXED (never the archive or its sidecar)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return c
}

// repairOutput is repair --json.
type repairOutput struct {
	*protect.RepairResult
	DamagedClusters []protect.DamagedClusters `json:"damaged_clusters,omitempty"`
}

func runRepair(w io.Writer, path string, opt protect.RepairOptions, asJSON, quiet bool) error {
	prog := ui.NewProgress(!quiet && !asJSON)
	prog.Start("repair "+filepath.Base(path), 0)
	opt.Progress = prog.Set
	ctx, stop := interruptible()
	defer stop()
	opt.Context = ctx
	rr, err := protect.Repair(path, opt)
	prog.Done()
	if errors.Is(err, context.Canceled) {
		return &exitError{code: ui.ExitFailed, err: fmt.Errorf("interrupted: %s is as it was, nothing else was written", path)}
	}
	if err != nil {
		return &exitError{code: ui.ExitFailed, err: err}
	}
	o := repairOutput{RepairResult: rr}
	if rr.Located != nil {
		o.DamagedClusters = protect.Clusters(rr.Located)
	}
	if asJSON {
		if err := printJSON(w, o); err != nil {
			return err
		}
	} else {
		printRepair(w, o, opt)
	}
	switch {
	case rr.Intact, rr.Complete && rr.Output != "":
		return nil
	}
	return errDamaged
}

func printRepair(w io.Writer, o repairOutput, opt protect.RepairOptions) {
	rr := o.RepairResult
	p := ui.Safe(rr.Archive)
	if rr.Intact {
		ui.Fprintf(w, "%s: intact (every chunk and the SHA-256 equal the sidecar's)\n", p)
		return
	}
	bad := rr.Damage.Total(damage.Tainted)
	ui.Fprintf(w, "%s: damaged: %s in %d places", p, ui.Bytes(bad), rr.Damage.Len())
	if rr.Size != rr.Header.Archive.Size {
		ui.Fprintf(w, " (the file has %d bytes, %d when protected)", rr.Size, rr.Header.Archive.Size)
	}
	ui.Fprintf(w, "\n")
	for _, n := range rr.Notes {
		ui.Fprintf(w, "  %s\n", ui.Safe(n))
	}
	unrep := rr.Unrepairable.Total(damage.Tainted)
	switch {
	case rr.Complete && rr.Output != "":
		ui.Fprintf(w, "  repaired: %s rebuilt from parity; %s is bit for bit the original (SHA-256 %s)\n",
			ui.Bytes(rr.Rebuilt), ui.Safe(rr.Output), rr.Header.Archive.SHA256)
		return
	case rr.Complete:
		ui.Fprintf(w, "  repairable: the parity rebuilds all of it; run\n    vzsalvage repair --in-place %s\n  or -o FIXED to keep the damaged file\n", p)
		return
	}
	ui.Fprintf(w, "  beyond the parity: %s cannot be rebuilt (%s rebuilt)\n", ui.Bytes(unrep), ui.Bytes(rr.Rebuilt))
	if rr.Output != "" {
		ui.Fprintf(w, "  partly repaired archive: %s\n", ui.Safe(rr.Output))
	}
	if o.DamagedClusters == nil && rr.Located != nil {
		ui.Fprintf(w, "  no disk cluster is damaged: the damage lies outside the disks' data\n")
	}
	for _, dc := range o.DamagedClusters {
		ui.Fprintf(w, "  %s: %d damaged clusters (64 KiB): %s\n", ui.Safe(dc.Device), dc.Count, dc)
	}
	target := rr.Archive
	if rr.Output != "" {
		target = rr.Output
	}
	ui.Fprintf(w, "next: vzsalvage rescue %s -o DIR   (it uses the sidecar: every other cluster is known right)\n", ui.Safe(target))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/codec/zstd"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/protect"
)

func newRepair() *cobra.Command {
	var out string
	var copies []string
	var inPlace, force, asJSON, quiet bool
	var flipBudget time.Duration
	var flipBytes bool
	c := &cobra.Command{
		Use:   "repair ARCHIVE [--copy COPY...] [-o FIXED | --in-place]",
		Short: "Put a damaged archive back bit for bit from its sidecar or its copies",
		Long: `repair checks an archive against the sidecar protect wrote for it: every 4 KiB of the
file against its hash, and the hashes against the sidecar's SHA-256 of them (version 1
sidecars: the whole file against its SHA-256). Damaged chunks are rebuilt from
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

  --copy COPY  another copy of the same archive (on another disk, a replica; repeatable).
               With a sidecar, damaged chunks are taken from a copy whose chunk has the
               recorded hash, and the parity rebuilds the rest. Without one, the copies are
               merged where they differ: the bytes are chosen by trial decoding (does the
               zstd, gzip or lzop stream decode through that place?) and finally by the
               stream's checksum. When no place is damaged in every copy, the result is the
               original bit for bit; when the damage overlaps, repair says where, and
               'vzsalvage rescue ARCHIVE --also COPY' reads past what is left.

Without a sidecar or a copy, a zstd archive whose compressed block fails to decode is
tried with each single-bit flip of that block (the failing section of it), and one whose
chain of block headers breaks with each flip of its last headers: a flip is taken only
when the block and all after it decode and the frame's checksum matches, and no other
flip's does ("repaired at offset X, bit B"). A flip the decoder does not see (only the
checksum fails) and more than one fault are not repaired this way.

  --flip-budget D  time allowed for the flips of one block (default 60s)
  --flip-bytes     try every value of each byte, not only its single-bit flips (32 times
                   the work: a block with a long sequences section takes minutes)

Exit status: 0 intact or completely repaired, 1 damaged (not or partly repaired),
2 could not run (no sidecar and no copy, unreadable).`,
		Example: `  vzsalvage repair vzdump-qemu-100-2025_12_15-03_00_03.vma.zst
  vzsalvage repair vzdump-qemu-100-2025_12_15-03_00_03.vma.zst -o /srv/fixed/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst
  vzsalvage repair --in-place vzdump-qemu-100-2025_12_15-03_00_03.vma.zst
  vzsalvage repair vzdump-qemu-100-2025_12_15-03_00_03.vma.zst --copy /mnt/replica/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst -o /srv/fixed/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "" && inPlace {
				return &exitError{code: ui.ExitFailed, err: errors.New("-o and --in-place exclude each other")}
			}
			if _, err := os.Stat(args[0]); err != nil {
				return &exitError{code: ui.ExitFailed, err: err}
			}
			if out != "" {
				inputs := []input{
					{args[0], "is the archive being repaired: --in-place replaces it (only when the repair is complete)"},
					{protect.SidecarPath(args[0], sidecarDir), "is the archive's sidecar, which the repair reads"},
				}
				for _, c := range copies {
					inputs = append(inputs, input{c, "is a copy the repair reads"})
				}
				err := checkOutputFile(out, force, inputs...)
				if err != nil {
					return err
				}
			}
			if len(copies) == 0 && !haveSidecar(args[0]) && isZstd(args[0]) {
				return runFlipRepair(cmd.OutOrStdout(), args[0], out, inPlace, zstd.FlipOptions{Budget: flipBudget, Bytes: flipBytes}, asJSON)
			}
			return runRepair(cmd.OutOrStdout(), args[0], protect.RepairOptions{SidecarDir: sidecarDir, Output: out, InPlace: inPlace, Copies: copies}, asJSON, quiet)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write the repaired archive to this file")
	c.Flags().BoolVar(&inPlace, "in-place", false, "replace the archive when the repair is complete")
	c.Flags().BoolVarP(&force, "force", "f", false, "replace an existing FIXED (never the archive or its sidecar)")
	c.Flags().StringArrayVar(&copies, "copy", nil, "another copy of the same archive (repeatable)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	c.Flags().BoolVar(&flipBytes, "flip-bytes", false, "without a sidecar or copies: try every value of each byte, not only single-bit flips")
	c.Flags().DurationVar(&flipBudget, "flip-budget", zstd.DefaultFlipBudget, "without a sidecar or copies: time allowed for the bit flips of one block")
	return c
}

// haveSidecar reports whether the archive at path has a sidecar (or one
// that cannot be opened: repair says why).
func haveSidecar(path string) bool {
	sc, err := protect.Find(path, sidecarDir)
	if sc != nil {
		sc.Close()
	}
	return sc != nil || err != nil
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
	if rr.Merge != nil {
		printMerge(w, rr, opt)
		return
	}
	p := ui.Safe(rr.Archive)
	if rr.Intact {
		ui.Fprintf(w, "%s: intact (every chunk's hash and the archive's %s equal the sidecar's)\n", p, pinKind(rr.Header.Archive))
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
		ui.Fprintf(w, "  repaired: %s rebuilt from parity%s; %s is bit for bit the original (%s)\n",
			ui.Bytes(rr.Rebuilt), fromCopies(rr), ui.Safe(rr.Output), pinText(rr.Header.Archive))
		return
	case rr.Complete:
		ui.Fprintf(w, "  repairable: the parity rebuilds all of it; run\n    vzsalvage repair --in-place %s\n  or -o FIXED to keep the damaged file\n", p)
		return
	}
	ui.Fprintf(w, "  beyond the parity: %s cannot be rebuilt (%s rebuilt)\n", ui.Bytes(unrep), ui.Bytes(rr.Rebuilt))
	if rr.Output != "" {
		ui.Fprintf(w, "  partly repaired archive: %s\n", ui.Safe(rr.Output))
	}
	switch {
	case rr.Header.Tar != nil && rr.Located != nil:
		// a container: its damaged files
		ui.Fprintf(w, "  %d files damaged\n", len(rr.Located.DamagedFiles))
		for i, f := range rr.Located.DamagedFiles {
			if i == 20 {
				ui.Fprintf(w, "    ... %d more (vzsalvage verify --json)\n", len(rr.Located.DamagedFiles)-i)
				break
			}
			ui.Fprintf(w, "    %s: %s\n", ui.Safe(f.Path), f.State)
		}
	case o.DamagedClusters == nil && rr.Located != nil:
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

// fromCopies says how much the copies gave, or "".
func fromCopies(rr *protect.RepairResult) string {
	if rr.FromCopies == 0 {
		return ""
	}
	return fmt.Sprintf(", %s taken from the copies", ui.Bytes(rr.FromCopies))
}

// printMerge prints a repair from copies without a sidecar.
func printMerge(w io.Writer, rr *protect.RepairResult, opt protect.RepairOptions) {
	m := rr.Merge
	p := ui.Safe(rr.Archive)
	switch {
	case m.Verified && rr.Intact:
		ui.Fprintf(w, "%s: intact (its %d copies differ from it in %s; the checksum matches)\n", p, len(m.Copies)-1, ui.Bytes(m.Differing))
	case m.Verified:
		ui.Fprintf(w, "%s: damaged: %s in %d places; the copies hold the rest\n", p, ui.Bytes(rr.Damage.Total(damage.Tainted)), rr.Damage.Len())
	default:
		ui.Fprintf(w, "%s: the copies differ in %s in %d places\n", p, ui.Bytes(m.Differing), len(m.Regions))
	}
	dm := m.Damaged()
	for i, c := range m.Copies {
		if i > 0 && m.Verified && !dm[i].Empty() {
			ui.Fprintf(w, "  copy %s: damaged: %s in %d places\n", ui.Safe(c), ui.Bytes(dm[i].Total(damage.Tainted)), dm[i].Len())
		}
	}
	if m.Verified {
		switch {
		case rr.Output != "":
			ui.Fprintf(w, "  merged: %s is bit for bit the original: it decodes without a problem and its %s checksum matches (%d trial decodes; SHA-256 %s)\n",
				ui.Safe(rr.Output), m.Compression, m.Trials, m.SHA256)
		case !rr.Intact:
			ui.Fprintf(w, "  repairable: the copies make the original; run with -o FIXED or --in-place\n")
		}
		return
	}
	ui.Fprintf(w, "  not repaired: %s\n", ui.Safe(m.Why()))
	if rr.Output != "" {
		ui.Fprintf(w, "  merged archive (least damage, not verified): %s\n", ui.Safe(rr.Output))
	}
	args := ""
	for _, c := range m.Copies[1:] {
		args += " --also " + ui.Safe(c)
	}
	ui.Fprintf(w, "next: vzsalvage rescue %s%s -o DIR   (it reads past the damage and fills from the copies)\n", p, args)
}

// pinKind names the archive's pin in a sidecar: its SHA-256 (version 1) or
// the SHA-256 of its chunk hashes (version 2).
func pinKind(a protect.ArchiveInfo) string {
	if a.SHA256 != "" {
		return "SHA-256"
	}
	return "SHA-256 of the chunk hashes"
}

// pinText says how a repaired archive was proven the original: by its
// SHA-256 (a version 1 sidecar) or by every chunk's hash and the SHA-256 of
// them all (version 2).
func pinText(a protect.ArchiveInfo) string {
	if a.SHA256 != "" {
		return "SHA-256 " + a.SHA256
	}
	return "every 4 KiB chunk's xxh64 matches; SHA-256 of the chunk hashes " + a.ChunksSHA256
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/archive"
	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/repack"
)

func newRepack() *cobra.Command {
	var out, compression string
	var devices []string
	var asJSON, quiet, force bool
	c := &cobra.Command{
		Use:   "repack DIR -o vzdump-qemu-VMID-YYYY_MM_DD-HH_MM_SS.vma.zst",
		Short: "Write a rescued VM back into an archive that Proxmox restores",
		Long: `repack writes the disk images and configs of an extract or rescue directory into a
clean VMA archive, as Proxmox's own vzdump writes them, so that the VM comes back
through Proxmox's normal restore (qmrestore, or Restore in the web UI). The archive
is compressed by its name (.vma.zst, .vma.gz, .vma.lzo, or .vma for none) unless
--compress says otherwise; lzo output is stored uncompressed inside the lzop format.

The VM config gets a note in its description: that the backup was salvaged, when,
and how much of each disk was zero-filled, unverified or taken from another night
(the byte ranges stay in the directory's damage.json / report.json). Name the archive
as vzdump does, so that Proxmox lists it on the storage.

The archive is written under a temporary name and renamed when complete; an existing
file is replaced only with --force.`,
		Example: `  vzsalvage repack /srv/rescue/100 -o /var/lib/vz/dump/vzdump-qemu-100-2025_12_16-09_00_00.vma.zst
  qmrestore /var/lib/vz/dump/vzdump-qemu-100-2025_12_16-09_00_00.vma.zst 900 --storage local-lvm
  vzsalvage repack /srv/rescue/100 --disk drive-scsi0 -o vzdump-qemu-100-2025_12_16-09_00_00.vma.gz`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &exitError{code: ui.ExitFailed, err: errors.New("repack needs -o ARCHIVE")}
			}
			if err := checkOutputFile(out, force); err != nil {
				return err
			}
			kind := codec.Kind(compression)
			if compression == "" {
				kind = byName(out)
			}
			return runRepack(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], out, repack.Options{Devices: devices, Compression: kind}, asJSON, quiet)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "the archive to write")
	c.Flags().StringVar(&compression, "compress", "", "zstd, gzip, lzo or none (default: by the output's name)")
	c.Flags().StringArrayVar(&devices, "disk", nil, "a disk to include, e.g. drive-scsi0 (repeatable; default: all)")
	c.Flags().BoolVarP(&force, "force", "f", false, "replace an existing archive at -o")
	c.Flags().BoolVar(&asJSON, "json", false, "print what was written as JSON")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return c
}

// byName picks the compression an archive's name asks for.
func byName(path string) codec.Kind {
	switch archive.ParseName(path).Ext {
	case ".gz":
		return codec.Gzip
	case ".lzo":
		return codec.Lzo
	case "":
		if filepath.Ext(path) == ".vma" {
			return codec.None
		}
	}
	return codec.Zstd
}

// repackOutput is repack --json.
type repackOutput struct {
	Path    string         `json:"path"`
	Size    int64          `json:"size"`
	Devices []repackDevice `json:"devices"`
	Configs []string       `json:"configs"`
	Note    string         `json:"note"`
}

type repackDevice struct {
	Name string `json:"name"`
	ID   int    `json:"id"`
	Size int64  `json:"size"`
}

func runRepack(w, errw io.Writer, dir, out string, opt repack.Options, asJSON, quiet bool) error {
	if n := archive.ParseName(out); n.Guest != "qemu" {
		fmt.Fprintf(errw, "vzsalvage: note: %s is not named like a vzdump VM backup (vzdump-qemu-VMID-YYYY_MM_DD-HH_MM_SS.vma...): Proxmox will not list it on a storage\n", filepath.Base(out))
	}
	prog := ui.NewProgress(!quiet && !asJSON)
	prog.Start("repack", 0)
	opt.Progress = prog.Set
	ctx, stop := interruptible()
	defer stop()
	opt.Context = ctx
	res, err := repack.Repack(dir, out, opt)
	prog.Done()
	if errors.Is(err, context.Canceled) {
		return &exitError{code: ui.ExitFailed, err: fmt.Errorf("interrupted: %s was not written", out)}
	}
	if err != nil {
		return err
	}
	if asJSON {
		o := repackOutput{Path: res.Path, Size: res.Size, Configs: res.Configs, Note: res.Note}
		for _, d := range res.Devices {
			o.Devices = append(o.Devices, repackDevice{Name: d.Name, ID: int(d.ID), Size: d.Size})
		}
		return printJSON(w, o)
	}
	ui.Fprintf(w, "wrote %s (%s): %d disk(s), configs %s\n", res.Path, ui.Bytes(res.Size), len(res.Devices), strings.Join(res.Configs, ", "))
	ui.Fprintf(w, "note added to the VM config:\n%s\n", res.Note)
	return nil
}

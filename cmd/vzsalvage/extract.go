package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/ui"
)

func newExtract() *cobra.Command {
	var out string
	var asJSON, quiet bool
	var opt extract.Options
	c := &cobra.Command{
		Use:   "extract ARCHIVE -o DIR",
		Short: "Write a backup's disks, configs and damage account into a directory",
		Long: `extract reads a VM backup into DIR:
  DIR/disk-<device>.raw   each disk as a sparse raw image (e.g. disk-drive-scsi0.raw), or
                          with --format qcow2 as disk-<device>.qcow2
  DIR/qemu-server.conf    the config files stored in the backup
  DIR/damage.json         what was damaged: per archive the problems, per disk every byte
                          range that is lost or tainted (anything not listed is intact)

By default it salvages: it reads past corrupt blocks and broken extents and keeps
everything that can be trusted. --strict stops at the first problem instead.
Images are written under temporary names and renamed when complete.`,
		Example: `  vzsalvage extract vzdump-qemu-100-2025_12_15-03_00_03.vma.zst -o /srv/rescue/100
  losetup -rfP /srv/rescue/100/disk-drive-scsi0.raw   # if you want the kernel to look too`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &exitError{code: ui.ExitFailed, err: errors.New("extract needs -o DIR")}
			}
			return runExtract(cmd.OutOrStdout(), args[0], out, opt, asJSON, quiet)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "directory to write into (created if missing)")
	c.Flags().BoolVar(&opt.Strict, "strict", false, "stop at the first problem instead of salvaging")
	c.Flags().StringVar(&opt.Format, "format", "raw", "image format: raw (sparse) or qcow2 (as Proxmox's directory storages keep disks)")
	c.Flags().BoolVar(&opt.Compress, "compress", false, "with --format qcow2: compress the image's clusters (deflate, as qemu-img convert -c)")
	c.Flags().BoolVar(&opt.Force, "force", false, "overwrite existing files in DIR")
	c.Flags().BoolVar(&asJSON, "json", false, "print damage.json to stdout as well")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return c
}

func runExtract(w io.Writer, path, dir string, opt extract.Options, asJSON, quiet bool) error {
	prog := ui.NewProgress(!quiet && !asJSON)
	prog.Start("extract "+filepath.Base(path), 0)
	opt.Progress = prog.Set
	ctx, stop := interruptible()
	defer stop()
	opt.Context = ctx
	res, err := extract.Extract(path, dir, opt)
	prog.Done()
	if errors.Is(err, context.Canceled) {
		return &exitError{code: ui.ExitFailed, err: fmt.Errorf("interrupted; what the extract had written into %s was removed", dir)}
	}
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(w, res.Report); err != nil {
			return err
		}
	} else {
		printArchive(w, res.Report, false)
		for _, d := range res.Report.Devices {
			if d.Image != "" {
				ui.Fprintf(w, "  wrote %s\n", filepath.Join(dir, d.Image))
			}
		}
		if len(res.Report.Devices) > 0 {
			ui.Fprintf(w, "  damage account: %s\n", filepath.Join(dir, "damage.json"))
		}
	}
	if !res.Intact() {
		return errDamaged
	}
	return nil
}

package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/archive"
	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/payload"
	"github.com/vzsalvage/vzsalvage/vma"
)

func newInspect() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "inspect ARCHIVE",
		Short: "Show what a backup holds: guest, time, configs, disks",
		Long: `inspect reads a backup's header only (fast, whatever the archive's size) and shows
its kind (VM or container) and compression (detected from the content, not the name),
the guest id and backup time from vzdump's file name, the stored config files
(qemu-server.conf, or a container's pct.conf and pct.fw) and a VM's disks.`,
		Example: `  vzsalvage inspect /mnt/pve/usb/dump/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst
  vzsalvage inspect --json backup.vma.gz`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspect(cmd.OutOrStdout(), args[0], asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

type inspectConfig struct {
	Name string `json:"name"`
	Size int    `json:"size"`
	Data string `json:"data"`
}

type inspectOut struct {
	Path        string          `json:"path"`
	Size        int64           `json:"size"`
	Compression codec.Kind      `json:"compression"`
	Payload     string          `json:"payload"`
	Name        archive.Name    `json:"name"`
	UUID        string          `json:"uuid"`
	Ctime       int64           `json:"ctime"`
	Configs     []inspectConfig `json:"configs"`
	Devices     []vma.Device    `json:"devices"`
	Problems    []string        `json:"problems,omitempty"`
}

// payloadWords names the payloads for people.
var payloadWords = map[string]string{"vma": "VM (vma)", "tar": "container (tar)"}

func inspect(w io.Writer, path string, asJSON bool) error {
	s, err := payload.Open(path, codec.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	a := s.Archive
	dec, err := s.Decode()
	if err != nil {
		return err
	}
	info, err := s.Payload.Inspect(dec)
	if err != nil {
		return extract.NotVM(path, a, err)
	}
	out := inspectOut{Path: path, Size: a.Size, Compression: a.Compression, Payload: string(info.Kind), Name: a.Name,
		Devices: []vma.Device{}, Configs: []inspectConfig{}}
	if h := info.VMA; h != nil {
		out.UUID, out.Ctime, out.Devices = h.UUIDString(), h.Ctime.Unix(), h.Devices
	}
	for _, c := range info.Configs {
		out.Configs = append(out.Configs, inspectConfig{Name: c.Name, Size: len(c.Data), Data: string(c.Data)})
	}
	for _, p := range info.Problems {
		out.Problems = append(out.Problems, p.String())
	}
	if asJSON {
		return printJSON(w, out)
	}
	ui.Fprintf(w, "archive      %s (%s)\n", path, ui.Bytes(a.Size))
	if info.Kind == payload.Tar {
		ui.Fprintf(w, "format       container backup (tar), compression %s\n", a.Compression)
	} else {
		ui.Fprintf(w, "format       VM backup (vma), compression %s\n", a.Compression)
	}
	if a.Name.Guest != "" {
		ui.Fprintf(w, "guest        %s %d, backup of %s\n", a.Name.Guest, a.Name.VMID, a.Name.Time.Format("2006-01-02 15:04:05"))
	}
	if a.Name.Payload != "" && a.Name.Payload != string(info.Kind) {
		ui.Fprintf(w, "note         the file name says a %s backup, but its content is a %s backup (read as what it holds)\n",
			payloadWords[a.Name.Payload], payloadWords[string(info.Kind)])
	}
	if h := info.VMA; h != nil {
		ui.Fprintf(w, "uuid         %s, written %s\n", out.UUID, h.Ctime.Format("2006-01-02 15:04:05 MST"))
		for _, d := range h.Devices {
			ui.Fprintf(w, "disk %-7d %s  %s (%d bytes)\n", d.ID, ui.Safe(d.Name), ui.Bytes(d.Size), d.Size)
		}
	}
	for _, p := range out.Problems {
		ui.Fprintf(w, "problem      %s\n", ui.Safe(p))
	}
	for _, c := range info.Configs {
		ui.Fprintf(w, "\n--- %s (%d bytes) ---\n%s", ui.Safe(c.Name), len(c.Data), ui.SafeText(string(c.Data)))
		if len(c.Data) > 0 && c.Data[len(c.Data)-1] != '\n' {
			ui.Fprintf(w, "\n")
		}
	}
	return nil
}

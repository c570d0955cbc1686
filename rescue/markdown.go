package rescue

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/report"
)

// maxListed bounds the damaged files listed by name in the human report
// (report.json lists them all).
const maxListed = 200

// WriteMarkdown writes the human report: what was recovered, what was lost,
// which files are damaged and how badly, and what to do next.
func WriteMarkdown(w io.Writer, r *Report) {
	rep := r.Report
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# vzsalvage rescue report\n\n")
	p("%s\n\n", r.Summary())

	p("## Backups read\n\n")
	for i, a := range rep.Archives {
		role := "newest"
		if i > 0 {
			role = "older, used to fill gaps"
		}
		p("- `%s` (%s): **%s**, stream checksum %s", filepath.Base(a.Path), role, a.Status, a.Checksum)
		if a.ProblemCount > 0 {
			p(", %d problem(s); first: %s", a.ProblemCount, a.Problems[0])
		}
		p("\n")
		if a.Checksum == "mismatch" && a.ProblemCount == 0 {
			p("  - The checksum fails but no damage could be located: some bytes are silently wrong somewhere.\n")
		}
	}

	p("\n## Disks\n\n| disk | size | intact clusters | zero | tainted | lost | image |\n|---|---|---|---|---|---|---|\n")
	for _, d := range rep.Devices {
		c := d.Clusters
		p("| %s | %s | %d | %d | %d | %d | `disks/%s` |\n", d.Name, ui.Bytes(d.Size), c.OK, c.Zero, c.Tainted, c.Lost, d.Image)
	}
	for _, d := range rep.Devices {
		var filled, confirmed int64
		for _, s := range d.Sources {
			if s.Kind == "confirmed" {
				confirmed += s.Length
			} else {
				filled += s.Length
			}
		}
		if filled+confirmed > 0 {
			p("\n%s: %s filled from older backups (another night's content), %s of tainted data confirmed by an older backup.\n",
				d.Name, ui.Bytes(filled), ui.Bytes(confirmed))
		}
	}
	if len(r.Suspects) > 0 {
		p("\n%d cluster(s) look silently damaged: they differ from two older backups that agree, in a backup whose checksum failed (see `suspects` in report.json).\n", len(r.Suspects))
	}

	p("\n## Volumes and files\n\n| volume | type | size | files copied | damaged files | where |\n|---|---|---|---|---|---|\n")
	for _, v := range rep.Volumes {
		where := "-"
		if v.Dir != "" {
			where = "`" + v.Dir + "/`"
		}
		p("| %s | %s | %s | %d | %d | %s |\n", v.ID, orDash(v.FS), ui.Bytes(v.Size), v.Files, v.DamagedFiles, where)
	}
	for _, v := range rep.Volumes {
		if v.Error != "" {
			p("- %s: **%s**\n", v.ID, v.Error)
		}
		for _, n := range v.Notes {
			p("- %s: %s\n", v.ID, n)
		}
	}

	if len(rep.DamagedFiles) > 0 {
		p("\n## Damaged files\n\n")
		if w := r.unverified(); w != "" {
			p("Every file not listed here was copied as the backup holds it, but note: %s.\n\n", w)
		} else {
			p("Every file not listed here was copied byte-identical to the backed-up original.\n\n")
		}
		p("- **lost**: none of the content can be trusted (the copy holds what could be read);\n")
		p("- *missing bytes* are bytes the backup lost outright (zeros in the copy); the other bad bytes hold what\n  was decoded but cannot be verified, and may well be right: a file with none missing is worth a look;\n")
		p("- **partial**: some bytes are wrong (count given); for a directory: its listing may be incomplete;\n")
		p("- **mixed**: every byte is present but some come from an older backup;\n")
		p("- **metadata**: the content is intact but its attributes (or, for an empty file, its inode) may be wrong.\n\n")
		files := append([]report.DamagedFile(nil), rep.DamagedFiles...)
		sort.SliceStable(files, func(i, j int) bool { return rank(files[i].State) > rank(files[j].State) })
		p("| volume | file | state | bad bytes | missing bytes |\n|---|---|---|---|---|\n")
		for i, f := range files {
			if i == maxListed {
				p("\n... and %d more in report.json.\n", len(files)-maxListed)
				break
			}
			p("| %s | `%s` | %s | %d | %d |\n", f.Volume, strings.ReplaceAll(f.Path, "|", "\\|"), f.State, f.BadBytes, f.MissingBytes)
		}
	}

	p("\n## What to do next\n\n")
	if r.Intact() {
		p("- Everything was read intact. The files are under `files/`; the disks under `disks/` can be\n  imported into Proxmox (`qm importdisk VMID disks/disk-drive-scsi0.raw STORAGE`).\n")
		return
	}
	if w := r.unverified(); w != "" {
		p("- **Caution:** %s. Compare important files with another copy (an older backup via `--also`).\n", w)
	}
	p("- Files not listed as damaged are as the backup holds them: copy them back first (`files/<volume>/...`).\n")
	p("- For damaged files, look for another copy: an older backup (`vzsalvage rescue NEWEST --also OLDER...`\n  fills gaps from it), the application's own dumps, or replicas.\n")
	p("- The disks under `disks/` hold everything that could be read; `damage` in report.json lists the byte\n  ranges that are not right. Import them into a test VM only with that in mind.\n")
	p("- Find out why the backup was damaged (disk, RAM, NFS) before trusting the next one: `vzsalvage verify` it.\n")
}

func rank(state string) int {
	switch state {
	case "lost":
		return 3
	case "partial":
		return 2
	case "mixed":
		return 1
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

package rescue

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/report"
)

// maxListed bounds the damaged files listed by name in the human report
// (report.json lists them all).
const maxListed = 200

// maxRangesShown bounds the byte ranges shown per damaged file.
const maxRangesShown = 3

// WriteMarkdown writes the human report, meant to be read cold by the person
// who has to decide what to do: what was lost, which files, what is safe,
// where the VM config is, and what to run next. Every string from the backup
// (names, paths, labels) is escaped: it cannot forge lines or markup.
func WriteMarkdown(w io.Writer, r *Report) {
	rep := r.Report
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# vzsalvage rescue report\n\n")
	p("**%s**\n\n", md(r.Summary()))
	if e := r.endsEarly(); e != "" {
		p("> **The backup ends early.** %s\n\n", md(e))
	}

	writeInShort(p, r)
	writeBackups(p, rep)
	if len(rep.Devices) > 0 { // a container backup has none
		writeDisks(p, rep)
	}
	writeVolumes(p, rep)
	writeDamagedFiles(p, rep)
	writeFragments(p, rep)
	writeNext(p, r)
}

// writeFragments lists the content found where a container's tar headers
// were lost.
func writeFragments(p printer, rep *report.Report) {
	if len(rep.Fragments) == 0 {
		return
	}
	p("## Content without a name\n\n")
	p("Where the backup lost the tar headers of files, runs of their content still decoded right: each is in\n")
	p("`lost+found` as `@OFFSET` (its offset in the decompressed tar stream). **Unverified as files**: every byte\n")
	p("is right, but which file each run is, and whether it is the whole file and nothing more, is inferred from\n")
	p("where the damage stops and starts again; name, owner, mode and times are unknown (written 0600). Up to 511\n")
	p("zero bytes at the end, taken for tar padding, may have been the file's own.\n\n")
	p("| volume | file | size | stream offset |\n|---|---|---|---|\n")
	for i, f := range rep.Fragments {
		if i == maxListed {
			p("\n... and %d more in report.json (`fragments`).\n", len(rep.Fragments)-maxListed)
			break
		}
		p("| %s | %s | %s | %d |\n", md(f.Volume), code(f.Path), ui.Bytes(f.Size), f.StreamOffset)
	}
	p("\n")
}

type printer func(format string, args ...any)

func writeInShort(p printer, r *Report) {
	rep := r.Report
	files, damaged := 0, len(rep.DamagedFiles)
	for _, v := range rep.Volumes {
		files += v.Files
	}
	var bad, places int64
	for _, d := range rep.Devices {
		bad += d.Damage.Total(damage.Tainted)
		places += int64(d.Damage.Len())
	}
	p("## In short\n\n")
	switch {
	case container(rep):
		for _, v := range rep.Volumes {
			bad += v.DamagedBytes
		}
		if bad == 0 && r.Intact() {
			p("- **Lost:** nothing; the backup was read intact.\n")
		} else {
			p("- **Lost or unverified:** %s of the backup's data (see *Backups read* for what the damage took).\n", ui.Bytes(bad))
		}
	case bad == 0:
		p("- **Lost:** nothing; every disk was read intact.\n")
	default:
		p("- **Lost or unverified:** %s of disk data, in %d place(s) (see *Disks*).\n", ui.Bytes(bad), places)
	}
	if len(rep.Archives) > 0 && rep.Archives[0].Merge != nil {
		p("- **Copies merged:** %s.\n", md(rep.Archives[0].Merge.Note))
	}
	if len(rep.Archives) > 0 && rep.Archives[0].Redecode != nil {
		p("- **Decoded again:** %s.\n", md(rep.Archives[0].Redecode.Note))
	}
	switch {
	case files == 0:
		p("- **Files:** none could be copied (see *Volumes and files* for why).\n")
	case damaged == 0:
		p("- **Files:** all %d copied files are intact.\n", files)
	default:
		p("- **Damaged:** %d listed under *Damaged files* (with their bad byte ranges), of %d files copied.\n", damaged, files)
		p("- **Safe:** the other files are byte-identical to the backed-up originals")
		if w := r.unverified(); w != "" {
			p(", as far as this backup can tell: %s", md(w))
		}
		p(".\n")
	}
	if n := len(rep.Fragments); n > 0 {
		p("- **Without a name:** %d runs of content whose tar headers were lost are in `lost+found` as `@OFFSET`, unverified as files (see *Content without a name*).\n", n)
	}
	switch {
	case container(rep) && rep.Config != "":
		p("- **Container config:** %s (Proxmox's pct.conf from the backup: what you need to recreate the container).\n", code(rep.Config))
	case container(rep):
		p("- **Container config:** not in the backup (or not readable).\n")
	case rep.Config != "":
		p("- **VM config:** %s (Proxmox's qemu-server.conf from the backup: what you need to recreate the VM).\n", code(rep.Config))
	default:
		p("- **VM config:** not in the backup (or not readable).\n")
	}
	for _, a := range rep.AbsentDisks {
		if a.Excluded {
			p("- Disk **%s** (%s) is not in this backup: its config says `backup=0`, so vzdump left it out on purpose.\n", md(a.Key), code(a.Volume))
		} else {
			p("- **Disk %s (%s) is named in the config but missing from this backup.**\n", md(a.Key), code(a.Volume))
		}
	}
	p("\n")
}

// endsEarly says where a truncated newest backup stops and what each disk
// misses, or "".
func (r *Report) endsEarly() string {
	if len(r.Archives) == 0 || r.Archives[0].EndsEarly == nil {
		return ""
	}
	e := r.Archives[0].EndsEarly
	where := "Its data stops"
	if e.Offset >= 0 && e.Layer != "" && e.Layer != "vma" {
		where = fmt.Sprintf("Its %s stream stops being readable at byte %d of the file", e.Layer, e.Offset)
	} else if e.Offset >= 0 {
		where = fmt.Sprintf("Its data stops at byte %d of the VMA stream", e.Offset)
	}
	var parts []string
	for _, d := range r.Devices {
		if lost := d.Damage.Total(damage.Lost); lost > 0 {
			parts = append(parts, fmt.Sprintf("%s misses %s of %s", ui.Safe(d.Name), ui.Bytes(lost), ui.Bytes(d.Size)))
		}
	}
	s := where + " (the file was cut short, or damaged up to its end): everything after that is missing."
	if len(parts) > 0 {
		s += " " + strings.Join(parts, "; ") + "."
	}
	return s
}

// maxProblemsShown bounds the problems of a container backup listed in the
// human report (report.json has them all).
const maxProblemsShown = 10

func writeBackups(p printer, rep *report.Report) {
	p("## Backups read\n\n")
	for i, a := range rep.Archives {
		role := "newest"
		switch {
		case i > 0 && a.UUID != "" && a.UUID == rep.Archives[0].UUID:
			role = "a copy of the same backup, used to fill gaps"
		case i > 0:
			role = "older, used to fill gaps"
		}
		p("- %s (%s): **%s**; its own checksum: %s", code(filepath.Base(a.Path)), role, a.Status, checksumWords(a))
		switch {
		case a.ProblemCount > 1 && a.Payload == "tar":
			// they say which members the damage took whole, whose names
			// are lost with their headers
			p("; %d problem(s):\n", a.ProblemCount)
			for j, pr := range a.Problems {
				if j == maxProblemsShown {
					p("  - ... %d more in report.json\n", a.ProblemCount-j)
					break
				}
				p("  - %s\n", md(pr.String()))
			}
			continue
		case a.ProblemCount > 0:
			p("; %d problem(s), the first: %s", a.ProblemCount, md(a.Problems[0].String()))
		}
		p(".\n")
		if a.Bomb != nil {
			p("  - **A decompression bomb:** %s.\n", md(a.Bomb.String()))
		}
	}
	p("\n")
}

// checksumWords explains an archive's stream checksum state.
func checksumWords(a report.Archive) string {
	switch a.Checksum {
	case codec.ChecksumOK:
		return "ok (it confirms every byte of the stream)"
	case codec.ChecksumMismatch:
		if a.ProblemCount == 0 {
			return "**fails**, and no damage could be located: some bytes are silently wrong somewhere"
		}
		return "**fails** (as the damage found explains)"
	case codec.ChecksumAbsent:
		return "none (an uncompressed backup has no checksum)"
	}
	return "could not be checked (the damage broke the chain it covers)"
}

func writeDisks(p printer, rep *report.Report) {
	p("## Disks\n\n")
	p("A backup stores each disk in 64 KiB *clusters*. *Intact* clusters are byte-identical to the original;\n")
	p("*empty* ones hold only zeros (never written); *unverified* ones were decoded but depend on lost data\n")
	p("and may be wrong; *lost* ones are missing (zeros in the image).\n\n")
	p("| disk | size | intact | empty | unverified | lost | image |\n|---|---|---|---|---|---|---|\n")
	for _, d := range rep.Devices {
		c := d.Clusters
		p("| %s | %s | %d | %d | %d | %d | %s |\n", md(d.Name), ui.Bytes(d.Size), c.OK, c.Zero, c.Tainted, c.Lost, code(d.Path))
	}
	for _, d := range rep.Devices {
		var filled, confirmed int64
		for _, s := range d.Sources {
			if s.Kind == report.Confirmed {
				confirmed += s.Length
			} else {
				filled += s.Length
			}
		}
		if filled+confirmed > 0 {
			p("\n%s: %s filled from older backups (another night's content), %s of unverified data confirmed by an older backup.\n",
				md(d.Name), ui.Bytes(filled), ui.Bytes(confirmed))
		}
		if d.DamageMerged > 0 {
			p("\n%s: %d damage ranges merged into wider ones to keep this account small: the damage listed covers more than was measured, never less.\n", md(d.Name), d.DamageMerged)
		}
	}
	if len(rep.Suspects) > 0 {
		p("\n%d cluster(s) look silently damaged: they differ from two older backups that agree, in a backup whose checksum failed (see `suspects` in report.json).\n", len(rep.Suspects))
	}
	p("\n")
}

func writeVolumes(p printer, rep *report.Report) {
	p("## Volumes and files\n\n| volume | what it holds | size | files copied | damaged files | copied to |\n|---|---|---|---|---|---|\n")
	for _, v := range rep.Volumes {
		where := "-"
		if v.Dir != "" {
			where = code(v.Dir + "/")
		}
		p("| %s | %s | %s | %d | %d | %s |\n", md(v.ID), md(holds(v)), ui.Bytes(v.Size), v.Files, v.DamagedFiles, where)
	}
	first := true
	for _, v := range rep.Volumes {
		for _, n := range volumeNotes(v) {
			if first {
				p("\n")
				first = false
			}
			p("- %s: %s\n", md(v.ID), md(n))
		}
	}
	p("\n")
}

// holds says in words what a volume is.
func holds(v report.Volume) string {
	name := v.Label
	if name == "" {
		name = v.Name
	}
	if name != "" {
		name = "\"" + name + "\": "
	}
	switch {
	case v.Kind == "disk" && strings.HasPrefix(v.Device, "drive-efidisk"):
		return "UEFI variables (firmware settings, no files)"
	case v.Kind == "disk" && strings.HasPrefix(v.Device, "drive-tpmstate"):
		return "TPM state (no files)"
	case v.FS == "" && strings.HasPrefix(v.PartType, "E3C9E316"):
		return name + "Microsoft reserved partition (Windows keeps no files there)"
	case v.FS == "" && v.Empty:
		return name + "empty (all zeros in the backup: never written)"
	case v.FS == "" && v.DamagedBytes > 0:
		return name + "no filesystem recognised (the volume is damaged)"
	case v.FS == "":
		return name + "no filesystem recognised (raw data, or unformatted)"
	case v.FS == "swap":
		return name + "swap space (nothing to copy)"
	case v.FS == "LVM2_member":
		return name + "LVM physical volume (its logical volumes follow)"
	case v.FS == "crypto_LUKS":
		return name + "encrypted (LUKS): not readable without its key"
	case v.Kind == "tar":
		return name + "the container's files (tar)"
	}
	return name + v.FS + " filesystem"
}

// volumeNotes turns a volume's notes and error into sentences for people.
func volumeNotes(v report.Volume) []string {
	var out []string
	if v.Error != "" {
		out = append(out, "**"+v.Error+"**")
	}
	for _, n := range v.Notes {
		switch n {
		case "read as: replayed":
			n = "its journal (ext3/ext4) or log (XFS) held unfinished writes: they were applied in memory, as a mount would (the disk image is unchanged)"
		case "read as: on-disk":
			continue // the plain case: nothing to say
		}
		out = append(out, n)
	}
	return out
}

func writeDamagedFiles(p printer, rep *report.Report) {
	if len(rep.DamagedFiles) == 0 {
		return
	}
	p("## Damaged files\n\n")
	p("Each was still copied, with what could be read. *Missing* bytes are zeros in the copy; the other bad\n")
	p("bytes hold what was decoded but cannot be verified, and may well be right. States:\n\n")
	p("- **lost**: none of the content can be trusted (its inode, extent tree or directory entry is damaged);\n")
	p("- **partial**: some bytes are bad (ranges given as offsets in the file); for a directory: its listing may be incomplete;\n")
	p("- **mixed**: every byte is there, but some come from an older backup;\n")
	p("- **name-unknown**: the content is intact, but no directory names the file any more (a damaged directory): it is in `lost+found` as `#INODE`;\n")
	p("- **metadata**: the content is intact, its name or attributes may not be (a name taken back from an older copy of its directory, in the journal or an older backup, says so in report.json).\n\n")
	files := append([]report.DamagedFile(nil), rep.DamagedFiles...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].State.Rank() > files[j].State.Rank() })
	p("| volume | file | size | state | bad bytes | of them missing | where in the file |\n|---|---|---|---|---|---|---|\n")
	for i, f := range files {
		if i == maxListed {
			p("\n... and %d more in report.json (`damaged_files`).\n", len(files)-maxListed)
			break
		}
		share := ""
		if f.Size > 0 {
			share = fmt.Sprintf(" (%.0f %%)", 100*float64(f.BadBytes)/float64(f.Size))
		}
		p("| %s | %s | %s | %s | %s%s | %s | %s |\n", md(f.Volume), code(f.Path), ui.Bytes(f.Size), f.State,
			ui.Bytes(f.BadBytes), share, ui.Bytes(f.MissingBytes), ranges(f.Ranges))
	}
	p("\n")
}

// ranges shows the first few bad ranges of a file.
func ranges(rs []damage.Range) string {
	var s []string
	for i, r := range rs {
		if i == maxRangesShown {
			s = append(s, fmt.Sprintf("+%d more", len(rs)-i))
			break
		}
		x := fmt.Sprintf("%d–%d", r.Off, r.End())
		if r.State == damage.Lost {
			x += " missing"
		}
		s = append(s, x)
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func writeNext(p printer, r *Report) {
	rep := r.Report
	n := 0
	step := func(format string, args ...any) {
		n++
		p("%d. "+format+"\n", append([]any{n}, args...)...)
	}
	p("## What to do next\n\n")
	if r.Intact() {
		step("Everything was read intact: the files are under `files/<volume>/`.")
	} else {
		step("Copy the files not listed as damaged back first: they are under `files/<volume>/`.")
		step("For damaged files, look for another copy: an older backup (`vzsalvage rescue NEWEST --also OLDER...`\n   fills gaps from it), the application's own dumps, or replicas.")
		for _, a := range rep.Archives {
			if a.MayBeFlip() {
				step("If %s was hit by one flipped bit (a block that fails to decode, the rest intact),\n   %s may put it back bit for bit (it tries each flip against the archive's checksum): then rescue the fixed copy.",
					code(filepath.Base(a.Path)), code("vzsalvage repair "+a.Path+" -o FIXED.vma.zst"))
			}
		}
	}
	if container(rep) {
		step("%s", containerBack(r))
	} else {
		step("%s", vmBack(r))
	}
	if r.Intact() {
		step("Keep checking new backups the day they are written: `vzsalvage verify`.")
	} else {
		step("Find out why the backup was damaged (disk, RAM, NFS) before trusting the next one: run\n   `vzsalvage verify` on new backups, and keep more than one night.")
	}
}

// container reports whether the rescue is of a container backup.
func container(rep *report.Report) bool {
	return len(rep.Archives) > 0 && rep.Archives[0].Payload == "tar"
}

// containerBack says how to bring a rescued container back into Proxmox.
func containerBack(r *Report) string {
	if r.Intact() {
		return fmt.Sprintf("To bring the container back into Proxmox as it was, restore the backup itself: %s.",
			code("pct restore 900 "+r.Archives[0].Path+" --storage local-lvm"))
	}
	return fmt.Sprintf("To bring the container back into Proxmox: create a container (say 900) with the settings of %s\n"+
		"   (or %s an older backup of it), stop it, and copy the files in: %s, then\n   %s, then %s.",
		orText(code(r.Config), "the old config"), code("pct restore 900"), code("pct mount 900"),
		code("rsync -aHAX --numeric-ids files/rootfs/ /var/lib/lxc/900/rootfs/"), code("pct unmount 900"))
}

// vmBack says how to bring a rescued VM back into Proxmox.
func vmBack(r *Report) string {
	rep := r.Report
	disk, key := "disks/disk-drive-scsi0.raw", "scsi0"
	for _, d := range rep.Devices {
		k := strings.TrimPrefix(d.Name, "drive-")
		if d.Path != "" && !strings.HasPrefix(k, "efidisk") && !strings.HasPrefix(k, "tpmstate") && fs.ValidName(k) {
			disk, key = d.Path, k
			break
		}
	}
	back := fmt.Sprintf("To bring the VM back into Proxmox: create a VM (say 900) with the settings of %s, then import each\n"+
		"   disk image into a storage and attach it, e.g. %s (`qm importdisk` on\n   older versions) and %s.",
		orText(code(rep.Config), "the old config"), code("qm disk import 900 "+disk+" local-lvm"), code("qm set 900 --"+key+" local-lvm:vm-900-disk-0"))
	if !r.Intact() {
		back += " The images hold zeros where data was lost:\n   boot such a VM as a test first, and run the guest's fsck."
	}
	return back
}

func orText(s, alt string) string {
	if s == "" || s == "-" {
		return alt
	}
	return s
}

// md escapes a string for Markdown text: controls shown as escapes
// (ui.Safe), and the characters that make markup, tables or HTML
// backslash-escaped.
func md(s string) string {
	s = ui.Safe(s)
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune("\\`*_[]<>|#!~", c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// code shows a string (a path, a name) as Markdown code, in a code span
// whose fence is longer than any run of backticks in it; controls are shown
// as escapes and | escaped for tables.
func code(s string) string {
	if s == "" {
		return "-"
	}
	s = strings.ReplaceAll(ui.Safe(s), "|", `\|`)
	fence, run := "`", 0
	for _, c := range s {
		if c == '`' {
			run++
			if run >= len(fence) {
				fence += "`"
			}
		} else {
			run = 0
		}
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

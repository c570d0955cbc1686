package doctor

import (
	"fmt"
	"regexp"
	"strings"
)

// advice writes the title, facts and known fixes of a kernel finding.
type advice struct {
	kp      KernelParams
	current bool // the lines are from the running kernel's current boot
	ctrls   []Controller
	usb     map[string]*usbPort
}

// Fixes shared by several findings.
const (
	fixVerifyBackups = "Check that the newest backups of the guests on it can be read end to end now, not on the night you need them: vzsalvage verify ARCHIVE."
	fixCopyOff       = "Copy what matters off this disk while it still answers."
)

func (a advice) explain(g *group) (title string, detail, fixes []string) {
	s := g.subject
	switch g.kind {
	case "nvme":
		return a.nvme(g)
	case "io-error":
		if removableDrive(s) {
			return s + ": I/O errors on a floppy or optical drive (routine when it is empty)", nil, nil
		}
		health := "Read the disk's own health record: smartctl -a /dev/" + s + " (media errors, reallocated or pending sectors)."
		if strings.HasPrefix(s, "dm-") || strings.HasPrefix(s, "md") || strings.HasPrefix(s, "loop") {
			health = "Find the disk under it (lsblk -s /dev/" + s + ") and read its health record: smartctl -a /dev/DISK (media errors, reallocated or pending sectors)."
		}
		return s + ": the disk failed to read or write data", nil, []string{
			fixCopyOff,
			health,
			"For a SATA or USB disk, reseat or replace the cable and try another port; errors that stay mean the disk is failing: replace it.",
			fixVerifyBackups,
		}
	case "ata":
		return s + ": SATA errors (failed commands, link resets)", nil, []string{
			"UNC (uncorrectable) means sectors that can no longer be read: the disk is failing; copy what matters off it and replace it.",
			"Link resets without UNC are often the cable, the port or the power: reseat or replace the SATA cable.",
			"Look at smartctl -a for the disk on this port (reallocated, pending and offline-uncorrectable sectors).",
		}
	case "ext4", "xfs", "btrfs":
		return a.filesystem(g)
	case "mce":
		return "machine-check errors from the CPU (memory, cache or bus)", nil, a.memoryFixes(g)
	case "edac":
		total := g.count("corrected") + g.count("uncorrected")
		return fmt.Sprintf("%s: %d memory error(s) detected by ECC (EDAC)", s, total), nil, a.memoryFixes(g)
	case "usb":
		return a.usbPort(g)
	case "uas":
		return "a USB disk stopped answering commands (UAS aborts and resets)", nil, usbFixes(nil)
	case "usb-host":
		return s + ": the USB host controller died; every USB disk on it was lost", nil, []string{
			"Everything that was being written to a USB disk at that moment is incomplete: check the backups made then.",
			"Often power or the controller's firmware: a powered hub, another controller (a PCIe USB card), a BIOS update.",
		}
	case "nfs", "cifs":
		what := "NFS"
		if g.kind == "cifs" {
			what = "SMB/CIFS"
		}
		return fmt.Sprintf("%s server %s stopped responding", what, s), nil, []string{
			"Writes to it stalled. With a soft mount the writer gets I/O errors after the timeout and what it wrote may be incomplete; with a hard mount it waits, and the host seems to freeze.",
			"Check the server's own kernel log too: in the story the backups sat on a USB disk attached to the NFS server, whose resets the Proxmox host never sees.",
			"Check the backups written while this happened: vzsalvage verify ARCHIVE.",
		}
	case "hung-task":
		return "processes hung for minutes waiting in the kernel: the host was freezing", nil, []string{
			"Tasks blocked in the kernel for minutes are what a frozen host looks like from inside; the cause is almost always the storage under them: see the disk, NVMe and network-storage findings.",
		}
	case "pcie":
		if g.sev == Info {
			return s + ": corrected PCIe errors", nil, []string{
				"Corrected errors cost retries, not data. On a link to an NVMe drive they are often PCIe power management (ASPM): pcie_aspm=off on the kernel command line usually stops them; reseating the card or M.2 drive may too.",
			}
		}
		return s + ": uncorrected PCIe errors", nil, []string{
			"Uncorrected PCIe errors lose transfers: reseat the card or M.2 drive, try another slot, update the BIOS and the device's firmware.",
		}
	}
	return s + ": " + g.kind, nil, nil
}

// nvme explains a controller that timed out, reset or disappeared, with
// the power-saving workaround from the story, honestly hedged.
func (a advice) nvme(g *group) (string, []string, []string) {
	s := g.subject
	if g.sev < Critical {
		if g.has("I/O timeout, completion polled") {
			return s + ": NVMe commands completed late (lost interrupts)", nil, []string{
				"Occasional polled completions are harmless; many of them point at interrupt routing (try a newer kernel or BIOS) or at a drive about to stop answering.",
			}
		}
		return s + ": NVMe controller messages", nil, nil
	}
	title := s + ": the NVMe drive stopped answering"
	switch {
	case g.has("removed") || g.has("namespace vanished"):
		title += " and was removed: it is gone until the next reboot"
	case g.has("controller is down") || g.has("controller reset") || g.has("I/O timeout, reset"):
		title += " and was reset"
	default:
		title += " (I/O timeouts)"
	}
	var detail []string
	if c := controller(a.ctrls, s); c != nil && c.Model != "" {
		detail = append(detail, fmt.Sprintf("drive: %s, firmware %s", c.Model, orUnknown(c.Firmware)))
	}
	detail = append(detail, "power saving now: "+a.kp.describe())
	var fixes []string
	fw := "Update the SSD's firmware (the vendor's tool, or fwupdmgr), the BIOS and the kernel"
	swap := "one reader with the same freezes on a Samsung 980 Pro tried the power-saving parameters, the BIOS power settings, another M.2 slot and new firmware, and only swapping the SSD for another model stopped them: some drive and firmware combinations do not work well with Linux"
	switch {
	case a.kp.Workaround() && a.current:
		fixes = append(fixes,
			"The usual workaround (NVMe and PCIe power saving off) is already active, and the drive still stopped answering in this boot: power saving is not the cause here.",
			fw+"; if that does not help, replace the drive: "+swap+".")
	case a.kp.Workaround():
		fixes = append(fixes,
			fmt.Sprintf("The usual workaround (NVMe and PCIe power saving off) is active now; these lines are from an earlier boot or a saved log. %s If they come back with it active, power saving is not the cause.", a.kp.upSince()),
			fw+"; if that does not help, replace the drive: "+swap+".")
	default:
		fixes = append(fixes, a.kp.workaroundSteps(),
			"It may not help. "+fw+". If the drive still stops answering, replace it: "+swap+".")
	}
	fixes = append(fixes, "Until then the drive can stop at any moment, and forced restarts damage what the guests were writing: "+strings.ToLower(fixCopyOff[:1])+fixCopyOff[1:]+" "+fixVerifyBackups)
	return title, detail, fixes
}

func (a advice) filesystem(g *group) (string, []string, []string) {
	s := g.subject
	fixes := []string{"Look for disk errors on the device under it first (above): a filesystem error is usually the consequence of one, and repairing a filesystem on a failing disk makes it worse."}
	switch g.kind {
	case "ext4":
		fixes = append(fixes, "Copy off what matters, then unmount it and run e2fsck -f /dev/"+s+" (from a rescue system for the root filesystem).")
		if g.has("remounted read-only") {
			return s + ": ext4 found damage and switched the filesystem to read-only", nil, fixes
		}
		return s + ": ext4 filesystem errors", nil, fixes
	case "xfs":
		fixes = append(fixes, "Copy off what matters, then unmount it and run xfs_repair -n /dev/"+s+" to see the damage, and xfs_repair /dev/"+s+" to fix it.")
		if g.has("filesystem shut down") {
			return s + ": XFS found damage or an I/O error and shut the filesystem down", nil, fixes
		}
		return s + ": XFS metadata corruption or I/O errors", nil, fixes
	}
	fixes = append(fixes, "btrfs scrub start MOUNTPOINT re-reads everything and repairs from a second copy where there is one (RAID1, DUP metadata); btrfs device stats MOUNTPOINT shows the counters; a checksum error with a single copy means that file's bytes are wrong.")
	return s + ": btrfs checksum or I/O errors", nil, fixes
}

func (a advice) memoryFixes(g *group) []string {
	var fixes []string
	if g.sev >= Critical {
		fixes = append(fixes,
			"Uncorrected errors mean bytes in memory were wrong: backups written since then may hold wrong data although vzdump reported success. vzsalvage verify ARCHIVE on each of them.",
			"Test the memory (memtest86+, from the Proxmox installer's boot menu) and replace the DIMM the lines name.")
	} else {
		fixes = append(fixes, "ECC corrected these, so no data was lost yet, but a DIMM that keeps producing corrected errors tends to fail: note which one the lines name and replace it if the count grows (rasdaemon's ras-mc-ctl --summary keeps the counts).")
	}
	return append(fixes, "Without ECC memory none of this is ever logged: bad RAM shows up only as damaged data (and damaged backups).")
}

// usbPort explains resets and disconnects of one USB port's device. A
// device the log names and does not show as storage (a keyboard, a UPS)
// is only info.
func (a advice) usbPort(g *group) (string, []string, []string) {
	u := a.usb[g.subject]
	name := "USB device " + g.subject
	if u != nil && u.product != "" {
		name += " (" + u.product + ")"
	}
	if u != nil && u.storage {
		name = strings.Replace(name, "USB device", "USB disk", 1)
	}
	resets := g.count("reset")
	var title string
	switch {
	case resets > 0:
		title = fmt.Sprintf("%s was reset %d time(s)", name, resets)
	case g.has("enumeration error"):
		title = name + " failed to connect (enumeration errors)"
	default:
		title = fmt.Sprintf("%s was disconnected %d time(s)", name, g.count("disconnected"))
	}
	switch {
	case u != nil && u.storage:
		return title, nil, usbFixes(u)
	case u != nil && u.vid != "":
		g.sev = Info
		return title, []string{"Not a disk, as far as this log shows: a reset of a keyboard, a hub or a UPS is harmless to backups."}, nil
	}
	return title, []string{"This log does not say what the device is (it was connected before the log begins): if it is a disk, take this as a warning."}, usbFixes(u)
}

func usbFixes(u *usbPort) []string {
	quirk := "usb-storage.quirks=VID:PID:u (VID:PID from lsusb)"
	if u != nil && u.vid != "" {
		quirk = fmt.Sprintf("usb-storage.quirks=%s:%s:u", u.vid, u.pid)
	}
	return []string{
		"A USB disk that resets under load loses or damages what it was writing: a classic cause of backups that are reported fine and do not restore.",
		"Give it its own power (a powered hub or the enclosure's power supply), another cable, and a port on the board itself rather than the front panel.",
		"Many USB-SATA bridges misbehave with UAS; turning UAS off for the enclosure often stops the resets, at some speed cost: add " + quirk + " to the kernel command line.",
		"Verify the backups written to it: vzsalvage verify ARCHIVE.",
	}
}

var partition = regexp.MustCompile(`^(nvme\d+n\d+)p\d+$|^((?:sd|hd|vd|xvd)[a-z]+)\d+$`)

// baseDevice strips a partition number: sda1 -> sda, nvme0n1p2 -> nvme0n1.
func baseDevice(dev string) string {
	if m := partition.FindStringSubmatch(dev); m != nil {
		return m[1] + m[2]
	}
	return dev
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

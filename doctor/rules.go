package doctor

import (
	"regexp"
	"strconv"
	"strings"
)

// A rule recognises one kind of kernel message. key is a literal that the
// message must contain before the expression is tried (most lines match
// no rule, and a substring test is cheap).
type rule struct {
	kind string
	key  string
	re   *regexp.Regexp
	// event builds the event from the submatches; ok false rejects the line.
	event func(m []string) (ev matched, ok bool)
}

// matched is what a rule makes of one line.
type matched struct {
	subject string
	what    string
	sev     Severity
	n       int // occurrences the line stands for (EDAC counts), at least 1
}

// fixed returns an event builder with a constant label and severity and
// the subject from submatch subj (0: none).
func fixed(what string, sev Severity, subj int) func(m []string) (matched, bool) {
	return func(m []string) (matched, bool) {
		s := ""
		if subj > 0 {
			s = m[subj]
		}
		return matched{subject: s, what: what, sev: sev}, true
	}
}

var rules = []rule{
	// NVMe controllers that stop answering: the story's first sign.
	{"nvme", "timeout", regexp.MustCompile(`^nvme (nvme\d+): I/O\b.*\btimeout, (aborting|reset controller)`), func(m []string) (matched, bool) {
		return matched{subject: m[1], what: "I/O timeout, " + m[2], sev: Critical}, true
	}},
	{"nvme", "timeout", regexp.MustCompile(`^nvme (nvme\d+): I/O\b.*\btimeout, completion polled`), fixed("I/O timeout, completion polled (an interrupt was lost)", Warning, 1)},
	{"nvme", "Abort status", regexp.MustCompile(`^nvme (nvme\d+): Abort status: `), fixed("abort of a timed-out command", Warning, 1)},
	{"nvme", "controller is down", regexp.MustCompile(`^nvme (nvme\d+): controller is down; will reset`), fixed("controller is down; will reset", Critical, 1)},
	{"nvme", "Device not ready", regexp.MustCompile(`^nvme (nvme\d+): Device not ready; aborting`), fixed("device not ready after reset", Critical, 1)},
	{"nvme", "failure", regexp.MustCompile(`^nvme (nvme\d+): (?:Removing after probe failure|Disabling device after reset failure)`), fixed("removed after a failed reset (gone until reboot)", Critical, 1)},
	{"nvme", "faulty power saving", regexp.MustCompile(`^nvme (nvme\d+): Does your device have a faulty power saving mode enabled`), fixed("kernel asks: faulty power saving mode?", Critical, 1)},
	{"nvme", "default_ps_max_latency_us=0", regexp.MustCompile(`^nvme (nvme\d+): Try "nvme_core\.default_ps_max_latency_us=0`), fixed("kernel suggests nvme_core.default_ps_max_latency_us=0 pcie_aspm=off", Critical, 1)},
	{"nvme", "resetting controller", regexp.MustCompile(`^nvme (nvme\d+): resetting controller`), fixed("controller reset", Warning, 1)},
	{"nvme", "APST", regexp.MustCompile(`^nvme (nvme\d+): failed to set APST feature`), fixed("failed to set power-state transitions (APST)", Info, 1)},
	{"nvme", "capacity change", regexp.MustCompile(`^(nvme\d+)n\d+: detected capacity change from \d+ to 0$`), fixed("namespace vanished (capacity 0)", Critical, 1)},

	// Block-layer and SCSI errors: data that could not be read or written.
	{"io-error", ", dev ", regexp.MustCompile(`^(?:(?:blk_update_request|print_req_error|end_request): )?(I/O error|critical medium error|critical target error|recoverable transport error|critical nexus error|critical space allocation|timeout|protection error), dev ([\w.-]+), sector \d+`), func(m []string) (matched, bool) {
		sev := Critical
		if m[1] == "recoverable transport error" {
			sev = Warning
		}
		if removableDrive(m[2]) {
			sev = Info
		}
		return matched{subject: baseDevice(m[2]), what: m[1], sev: sev}, true
	}},
	{"io-error", "@ LBA", regexp.MustCompile(`^(nvme\d+n\d+): \S.*?\(0x[0-9a-f]+\) @ LBA \d+, \d+ blocks, (.+?) \(sct`), func(m []string) (matched, bool) {
		return matched{subject: m[1], what: "NVMe command failed: " + m[2], sev: Critical}, true
	}},
	{"io-error", "Buffer I/O error", regexp.MustCompile(`^Buffer I/O error on dev(?:ice)? ([\w.-]+), logical block \d+(?:, (.+))?`), func(m []string) (matched, bool) {
		what := "Buffer I/O error"
		if m[2] != "" {
			what += ", " + m[2]
		}
		sev := Critical
		if removableDrive(m[1]) {
			sev = Info
		}
		return matched{subject: baseDevice(m[1]), what: what, sev: sev}, true
	}},
	{"io-error", "Sense Key", regexp.MustCompile(`^sd [\d:]+: \[(\w+)\] (?:tag#\d+ )?Sense Key : (Medium Error|Hardware Error)`), func(m []string) (matched, bool) {
		return matched{subject: m[1], what: "SCSI sense: " + m[2], sev: Critical}, true
	}},
	{"io-error", "Add. Sense", regexp.MustCompile(`^sd [\d:]+: \[(\w+)\] (?:tag#\d+ )?Add\. Sense: (Unrecovered read error.*|.*[Ww]rite error.*)`), func(m []string) (matched, bool) {
		return matched{subject: m[1], what: "SCSI: " + m[2], sev: Critical}, true
	}},
	{"io-error", "FAILED Result", regexp.MustCompile(`^sd [\d:]+: \[(\w+)\] (?:tag#\d+ )?FAILED Result: hostbyte=(\w+)`), func(m []string) (matched, bool) {
		return matched{subject: m[1], what: "SCSI command failed (" + m[2] + ")", sev: Warning}, true
	}},
	{"ata", "UNC", regexp.MustCompile(`^(ata\d+)(?:\.\d+)?: error: \{[^}]*\bUNC\b`), fixed("uncorrectable read error (UNC)", Critical, 1)},
	{"ata", "exception Emask", regexp.MustCompile(`^(ata\d+)(?:\.\d+)?: exception Emask`), fixed("command exception", Warning, 1)},
	{"ata", "failed command", regexp.MustCompile(`^(ata\d+)(?:\.\d+)?: failed command: `), fixed("failed command", Warning, 1)},
	{"ata", "hard resetting link", regexp.MustCompile(`^(ata\d+): hard resetting link`), fixed("link reset", Warning, 1)},
	{"ata", "slow to respond", regexp.MustCompile(`^(ata\d+): link is slow to respond`), fixed("link slow to respond", Warning, 1)},

	// Filesystems that found damage or gave up.
	{"ext4", "EXT4-fs error", regexp.MustCompile(`^EXT4-fs error \(device ([^)]+)\)`), fixed("EXT4-fs error", Critical, 1)},
	{"ext4", "Remounting filesystem read-only", regexp.MustCompile(`^EXT4-fs \(([^)]+)\): Remounting filesystem read-only`), fixed("remounted read-only", Critical, 1)},
	{"ext4", "I/O error", regexp.MustCompile(`^EXT4-fs warning \(device ([^)]+)\): ext4_end_bio:\d+: I/O error`), fixed("write failed (I/O error), data lost", Critical, 1)},
	{"ext4", "superblock", regexp.MustCompile(`^EXT4-fs \(([^)]+)\): (?:I/O error while writing superblock|previous I/O error to superblock detected)`), fixed("superblock I/O error", Critical, 1)},
	{"ext4", "error count since last fsck", regexp.MustCompile(`^EXT4-fs \(([^)]+)\): error count since last fsck: \d+`), fixed("errors recorded since the last fsck", Warning, 1)},
	{"ext4", "mounting fs with errors", regexp.MustCompile(`^EXT4-fs \(([^)]+)\): (?:warning: )?mounting fs with errors`), fixed("mounted with errors recorded (e2fsck recommended)", Warning, 1)},
	{"ext4", "Aborting journal", regexp.MustCompile(`^Aborting journal on device ([\w.-]+?)-\d+\.`), fixed("journal aborted", Critical, 1)},
	{"ext4", "JBD2: Detected IO errors", regexp.MustCompile(`^JBD2: Detected IO errors while flushing file data on ([\w.-]+?)-\d+`), fixed("journal: I/O errors while flushing data", Critical, 1)},
	{"xfs", "XFS (", regexp.MustCompile(`^XFS \(([^)]+)\): (Metadata corruption detected|Metadata CRC error detected|Corruption of in-memory data detected|Corruption detected|Corruption warning|Internal error|metadata I/O error|log I/O error|Log I/O Error|Filesystem has been shut down|xfs_do_force_shutdown|Unmount and run xfs_repair|Please unmount the filesystem and rectify|Please umount the filesystem and rectify|Failing async write)`), func(m []string) (matched, bool) {
		return matched{subject: m[1], what: xfsWhat(m[2]), sev: Critical}, true
	}},
	{"btrfs", "BTRFS", regexp.MustCompile(`^BTRFS(?: (?:warning|error|critical|info))?:? ?(?:error )?\(device ([^) ]+)(?: state \w+)?\)(?: in [^:]*)?:? (.*)`), btrfsEvent},

	// Memory and CPU errors: bytes changed before they reached the backup.
	{"mce", "Machine Check", regexp.MustCompile(`^mce: \[Hardware Error\]: CPU \d+: Machine Check(?: Exception)?: \w+ Bank \d+: ([0-9a-f]{1,16})\b`), func(m []string) (matched, bool) {
		st, err := strconv.ParseUint(m[1], 16, 64)
		if err == nil && st&(1<<61) != 0 { // MCi_STATUS.UC
			return matched{what: "uncorrected machine check", sev: Critical}, true
		}
		return matched{what: "corrected machine check", sev: Warning}, true
	}},
	{"mce", "Machine check events logged", regexp.MustCompile(`^mce: \[Hardware Error\]: Machine check events logged`), fixed("machine check events logged", Warning, 0)},
	{"mce", "CMCI storm", regexp.MustCompile(`^mce: (?:\[Hardware Error\]: )?CMCI storm detected`), fixed("storm of corrected errors (CMCI)", Warning, 0)},
	{"mce", "achine check", regexp.MustCompile(`(?:Machine check: Processor context corrupt|Kernel panic - not syncing: Fatal [Mm]achine check)`), fixed("fatal machine check", Critical, 0)},
	{"mce", "event severity", regexp.MustCompile(`^(?:\{\d+\})?\[Hardware Error\]: event severity: (corrected|recoverable|fatal)`), func(m []string) (matched, bool) {
		sev := Critical
		if m[1] == "corrected" {
			sev = Warning
		}
		return matched{what: "firmware-reported hardware error, " + m[1], sev: sev}, true
	}},
	{"edac", "EDAC", regexp.MustCompile(`^EDAC (?:[\w-]+ )?(MC\d+): (?:(\d+) )?(CE|UE)\b`), func(m []string) (matched, bool) {
		n, _ := strconv.Atoi(m[2])
		if m[3] == "UE" {
			return matched{subject: m[1], what: "uncorrected memory error (UE)", sev: Critical, n: n}, true
		}
		return matched{subject: m[1], what: "corrected memory error (CE)", sev: Warning, n: n}, true
	}},

	// USB disks: resets and disconnects under load damage what they write.
	{"usb", "USB device number", regexp.MustCompile(`^usb (\d+-[\d.]+): reset .*USB device number \d+`), fixed("reset", Warning, 1)},
	{"usb", "USB disconnect", regexp.MustCompile(`^usb (\d+-[\d.]+): USB disconnect, device number \d+`), fixed("disconnected", Info, 1)},
	{"usb", ", error -", regexp.MustCompile(`^usb (\d+-[\d.]+): device (?:descriptor read/\w+|not accepting address \d+), error -\d+`), fixed("enumeration error (cable or power)", Warning, 1)},
	{"uas", "uas_eh_abort_handler", regexp.MustCompile(`^sd [\d:]+: \[(\w+)\] tag#\d+ uas_eh_abort_handler`), fixed("UAS command aborted", Warning, 0)},
	{"uas", "uas_eh_device_reset_handler", regexp.MustCompile(`^scsi host\d+: uas_eh_device_reset_handler (start|success|FAILED)`), func(m []string) (matched, bool) {
		if m[1] == "FAILED" {
			return matched{what: "UAS device reset failed", sev: Critical}, true
		}
		return matched{what: "UAS device reset", sev: Warning}, true
	}},
	{"usb-host", "xhci", regexp.MustCompile(`^xhci_hcd ([\w:.]+): (?:xHCI host controller not responding, assume dead|HC died; cleaning up)`), fixed("USB host controller died", Critical, 1)},

	// Network storages that stop answering.
	{"nfs", "nfs: server", regexp.MustCompile(`^nfs: server (\S+) not responding, still trying`), fixed("not responding, still trying", Warning, 1)},
	{"nfs", "nfs: server", regexp.MustCompile(`^nfs: server (\S+) not responding, timed out`), fixed("not responding, timed out (I/O errors returned to the writer)", Critical, 1)},
	{"nfs", "nfs: server", regexp.MustCompile(`^nfs: server (\S+) OK`), fixed("responding again", Info, 1)},
	{"cifs", "has not responded", regexp.MustCompile(`^CIFS:? VFS: (?:\\\\|Server )(\S+?) has not responded in \d+ seconds`), fixed("not responding, reconnecting", Warning, 1)},

	// What a frozen host looks like from inside.
	{"hung-task", "blocked for more than", regexp.MustCompile(`^INFO: task \S+?:\d+ blocked for more than (\d+) seconds`), func(m []string) (matched, bool) {
		return matched{what: "task blocked for more than " + m[1] + " seconds", sev: Warning}, true
	}},

	// PCIe link errors (often with NVMe power management).
	{"pcie", "PCIe Bus Error", regexp.MustCompile(`^(?:\S+ )?([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]): (?:AER: )?PCIe Bus Error: severity=([^,]+), type=([^,]+)`), func(m []string) (matched, bool) {
		sev := Info
		switch {
		case strings.Contains(m[2], "Fatal") && !strings.Contains(m[2], "Non-Fatal"):
			sev = Critical
		case strings.HasPrefix(m[2], "Uncorrect"):
			sev = Warning
		}
		return matched{subject: m[1], what: "PCIe " + strings.ToLower(m[2]) + " error (" + m[3] + ")", sev: sev}, true
	}},
}

// removableDrive reports whether a block device is a floppy or optical
// drive, whose I/O errors on an empty drive are routine.
func removableDrive(dev string) bool {
	return strings.HasPrefix(dev, "fd") || strings.HasPrefix(dev, "sr")
}

func xfsWhat(s string) string {
	switch {
	case strings.HasPrefix(s, "Please u"), strings.HasPrefix(s, "Unmount"):
		return "asks to unmount and repair"
	case s == "xfs_do_force_shutdown", s == "Filesystem has been shut down":
		return "filesystem shut down"
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// btrfsEvent classifies a BTRFS message; ordinary ones are not events.
func btrfsEvent(m []string) (matched, bool) {
	msg := m[2]
	for _, c := range []struct {
		key, what string
		sev       Severity
	}{
		{"csum failed", "data checksum failed", Critical},
		{"checksum verify failed", "metadata checksum failed", Critical},
		{"parent transid verify failed", "metadata from the wrong generation (lost writes)", Critical},
		{"errs: wr", "device error counters not zero", Warning},
		{"unable to fixup", "error could not be repaired", Critical},
		{"forced readonly", "forced read-only", Critical},
		{"IO failure", "I/O failure", Critical},
		{"bad tree block", "bad tree block", Critical},
		{"read error corrected", "read error repaired from another copy", Warning},
		{"fixed up error", "error repaired from another copy", Warning},
	} {
		if strings.Contains(msg, c.key) {
			return matched{subject: m[1], what: c.what, sev: c.sev}, true
		}
	}
	return matched{}, false
}

// USB facts that name a port's device; they make no finding themselves.
var (
	usbIDs     = regexp.MustCompile(`^usb (\d+-[\d.]+): New USB device found, idVendor=([0-9a-f]{4}), idProduct=([0-9a-f]{4})`)
	usbProduct = regexp.MustCompile(`^usb (\d+-[\d.]+): Product: (.+)`)
	usbStorage = regexp.MustCompile(`^usb-storage (\d+-[\d.]+):\d+\.\d+: USB Mass Storage device detected`)
	// A SCSI host of the UAS or usb-storage driver belongs to the device
	// announced just before it (UAS devices are never named as storage).
	usbSCSIHost = regexp.MustCompile(`^scsi host\d+: (?:uas|usb-storage)\b`)
)

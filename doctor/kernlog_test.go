package doctor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// scanFile reads a saved kernel log of testdata/kernlog and returns its
// findings, for a host whose power-saving settings are kp.
func scanFile(t *testing.T, name string, kp KernelParams) ([]Finding, *logScan) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "kernlog", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := scanLog(f, LogSummary{Source: name})
	return kernelFindings([]*logScan{s}, kp, nil), s
}

func TestSplitLine(t *testing.T) {
	for _, c := range []struct{ line, stamp, msg string }{
		{"Dec 15 03:12:45 pve kernel: nvme nvme0: I/O timeout, aborting", "Dec 15 03:12:45", "nvme nvme0: I/O timeout, aborting"},
		{"Dec  5 03:12:45.123456 pve kernel: usb 2-1: reset", "Dec  5 03:12:45", "usb 2-1: reset"},
		{"2025-12-15T03:12:45+0800 pve kernel: nfs: server x OK", "2025-12-15T03:12:45+0800", "nfs: server x OK"},
		{"2025-12-15T03:12:45.123456+08:00 pve kernel: [  123.456789] EXT4-fs error (device dm-1): x", "2025-12-15T03:12:45+08:00", "EXT4-fs error (device dm-1): x"},
		{"[  123.456789] nvme nvme0: I/O 1 QID 2 timeout, aborting", "123 s after boot", "nvme nvme0: I/O 1 QID 2 timeout, aborting"},
		{"[Mon Dec 15 03:12:45 2025] usb 2-1: USB disconnect, device number 2", "Mon Dec 15 03:12:45 2025", "usb 2-1: USB disconnect, device number 2"},
		{"2025-12-15T03:12:45,123456+08:00 nvme nvme0: I/O 1 QID 2 timeout, aborting", "2025-12-15T03:12:45+08:00", "nvme nvme0: I/O 1 QID 2 timeout, aborting"},
		{"kern  :err   : [  123.456789] Buffer I/O error on dev sdb1, logical block 8, async page read", "123 s after boot", "Buffer I/O error on dev sdb1, logical block 8, async page read"},
		{"[  123.456789] pve kernel: nfs: server x OK", "123 s after boot", "nfs: server x OK"},
		{"nvme nvme0: I/O timeout, aborting", "", "nvme nvme0: I/O timeout, aborting"},
	} {
		stamp, msg, ok := splitLine(c.line)
		if !ok || stamp != c.stamp || msg != c.msg {
			t.Errorf("%q:\n got %q %q %v\nwant %q %q", c.line, stamp, msg, ok, c.stamp, c.msg)
		}
	}
	for _, l := range []string{"-- Boot 7f3c0e4b2a9d4c1e8f6a5b4c3d2e1f00 --", "", "Nov  2 04:21:40 pve smartd[1203]: Device: /dev/sdc [SAT], 8 Currently unreadable (pending) sectors"} {
		if _, _, ok := splitLine(l); ok {
			t.Errorf("%q taken for a kernel message", l)
		}
	}
}

// The story's own line, as the post quotes it and as the journal shows it.
func TestStoryLine(t *testing.T) {
	for _, line := range []string{"nvme nvme0: I/O timeout, aborting", "Dec 15 03:12:45 pve kernel: nvme nvme0: I/O timeout, aborting"} {
		s := scanLog(strings.NewReader(line+"\n"), LogSummary{})
		fs := kernelFindings([]*logScan{s}, KernelParams{}, nil)
		assertFindings(t, fs, want{Critical, "kernel.nvme", "nvme0"})
		wantEvents(t, fs[0], map[string]int{"I/O timeout, aborting": 1})
	}
}

func TestKernelLogStory(t *testing.T) {
	fs, s := scanFile(t, "story-journal.txt", KernelParams{})
	assertFindings(t, fs,
		want{Critical, "kernel.nvme", "nvme0"},
		want{Critical, "kernel.io-error", "nvme0n1"},
		want{Critical, "kernel.io-error", "dm-1"},
		want{Critical, "kernel.ext4", "dm-1"},
		want{Warning, "kernel.hung-task", ""},
	)
	nv := find(t, fs, "kernel.nvme", "nvme0")
	wantEvents(t, nv, map[string]int{"I/O timeout, aborting": 4, "I/O timeout, reset controller": 2, "controller is down; will reset": 1,
		"kernel suggests nvme_core.default_ps_max_latency_us=0 pcie_aspm=off": 1, "removed after a failed reset (gone until reboot)": 1})
	if e := nv.Events[0]; e.First != "Dec 15 00:43:02" || e.Last != "Dec 15 00:43:02" {
		t.Errorf("first event: %+v", e)
	}
	if nv.Evidence[0] != "Dec 15 00:43:02 pve kernel: nvme nvme0: I/O timeout, aborting" {
		t.Errorf("evidence: %q", nv.Evidence)
	}
	if len(nv.Evidence) > maxEvidence {
		t.Errorf("%d evidence lines", len(nv.Evidence))
	}
	if !strings.Contains(nv.Title, "removed") {
		t.Errorf("title %q", nv.Title)
	}
	wantEvents(t, find(t, fs, "kernel.ext4", "dm-1"), map[string]int{"EXT4-fs error": 2, "remounted read-only": 1, "journal aborted": 1})
	wantEvents(t, find(t, fs, "kernel.hung-task", ""), map[string]int{"task blocked for more than 122 seconds": 3})
	if s.sum.Lines != 36 || s.sum.First != "Dec 15 00:41:07" || s.sum.Last != "Dec 15 00:45:06" {
		t.Errorf("summary %+v", s.sum)
	}
}

func TestKernelLogNVMeDmesg(t *testing.T) {
	fs, _ := scanFile(t, "nvme-dmesg.txt", KernelParams{})
	assertFindings(t, fs,
		want{Critical, "kernel.nvme", "nvme0"},
		want{Critical, "kernel.io-error", "nvme0n1"},
		want{Critical, "kernel.xfs", "nvme0n1p3"},
		want{Warning, "kernel.nvme", "nvme1"},
		want{Critical, "kernel.io-error", "nvme1n1"},
		want{Critical, "kernel.nvme", "nvme2"},
		want{Info, "kernel.pcie", "0000:04:00.0"},
	)
	wantEvents(t, find(t, fs, "kernel.nvme", "nvme0"), map[string]int{"I/O timeout, aborting": 3, "I/O timeout, reset controller": 2, "device not ready after reset": 1,
		"removed after a failed reset (gone until reboot)": 1, "namespace vanished (capacity 0)": 1, "abort of a timed-out command": 1})
	if e := find(t, fs, "kernel.nvme", "nvme0").Events[0]; e.First != "9131 s after boot" {
		t.Errorf("dmesg stamp %+v", e)
	}
	wantEvents(t, find(t, fs, "kernel.io-error", "nvme0n1"), map[string]int{"I/O error": 1, "Buffer I/O error, lost async page write": 1})
	wantEvents(t, find(t, fs, "kernel.io-error", "nvme1n1"), map[string]int{"NVMe command failed: I/O Error": 1, "critical medium error": 1})
	wantEvents(t, find(t, fs, "kernel.xfs", "nvme0n1p3"), map[string]int{"log I/O error": 1, "filesystem shut down": 1, "asks to unmount and repair": 1})
	wantEvents(t, find(t, fs, "kernel.nvme", "nvme2"), map[string]int{"I/O timeout, aborting": 1})
}

func TestKernelLogSATAFilesystems(t *testing.T) {
	fs, s := scanFile(t, "sata-fs-kern.log", KernelParams{})
	assertFindings(t, fs,
		want{Critical, "kernel.ata", "ata3"},
		want{Critical, "kernel.io-error", "sdc"},
		want{Critical, "kernel.ext4", "sdc1"},
		want{Critical, "kernel.btrfs", "sdd1"},
		want{Critical, "kernel.xfs", "sde1"},
	)
	wantEvents(t, find(t, fs, "kernel.ata", "ata3"), map[string]int{"uncorrectable read error (UNC)": 1, "link reset": 1, "failed command": 1})
	wantEvents(t, find(t, fs, "kernel.io-error", "sdc"), map[string]int{"SCSI sense: Medium Error": 1, "critical medium error": 1, "SCSI: Unrecovered read error - auto reallocate failed": 1})
	wantEvents(t, find(t, fs, "kernel.ext4", "sdc1"), map[string]int{"EXT4-fs error": 1, "errors recorded since the last fsck": 1})
	wantEvents(t, find(t, fs, "kernel.btrfs", "sdd1"), map[string]int{"data checksum failed": 2, "device error counters not zero": 2})
	wantEvents(t, find(t, fs, "kernel.xfs", "sde1"), map[string]int{"metadata corruption detected": 1, "asks to unmount and repair": 1})
	if s.sum.Lines != 29 || s.sum.Messages != 28 { // smartd's line is not the kernel's
		t.Errorf("summary %+v", s.sum)
	}
	if !strings.Contains(fixesText(find(t, fs, "kernel.xfs", "sde1")), "xfs_repair -n /dev/sde1") {
		t.Error("xfs fix")
	}
}

func TestKernelLogMemory(t *testing.T) {
	fs, _ := scanFile(t, "edac-mce-journal.txt", KernelParams{})
	assertFindings(t, fs,
		want{Critical, "kernel.mce", ""},
		want{Critical, "kernel.edac", "MC1"},
		want{Warning, "kernel.edac", "MC0"},
		want{Warning, "kernel.edac", "MC2"},
	)
	wantEvents(t, find(t, fs, "kernel.edac", "MC0"), map[string]int{"corrected memory error (CE)": 4})
	wantEvents(t, find(t, fs, "kernel.mce", ""), map[string]int{"corrected machine check": 1, "uncorrected machine check": 1, "machine check events logged": 1, "firmware-reported hardware error, corrected": 1})
	if !strings.Contains(fixesText(find(t, fs, "kernel.edac", "MC1")), "memtest86+") {
		t.Error("UE fix")
	}
	if strings.Contains(fixesText(find(t, fs, "kernel.edac", "MC0")), "memtest86+") {
		t.Error("CE is not told to run memtest")
	}
}

func TestKernelLogUSBDisk(t *testing.T) {
	fs, _ := scanFile(t, "usb-disk-dmesg-T.txt", KernelParams{})
	assertFindings(t, fs,
		want{Critical, "kernel.io-error", "sdb"},
		want{Critical, "kernel.ext4", "sdb1"},
		want{Critical, "kernel.usb-host", "0000:00:14.0"},
		want{Warning, "kernel.uas", ""},
		want{Warning, "kernel.usb", "2-1"},
		want{Warning, "kernel.usb", "1-1.2"},
		want{Info, "kernel.usb", "1-4"}, // a keyboard
	)
	u := find(t, fs, "kernel.usb", "2-1")
	wantEvents(t, u, map[string]int{"reset": 2, "disconnected": 1})
	if !strings.Contains(u.Title, "USB disk 2-1 (ASM1153E)") || !strings.Contains(fixesText(u), "usb-storage.quirks=174c:55aa:u") {
		t.Errorf("2-1: %s", fixesText(u))
	}
	if !strings.Contains(find(t, fs, "kernel.usb", "1-1.2").Title, "USB disk 1-1.2 (Expansion)") {
		t.Error("usb-storage disk not named")
	}
	wantEvents(t, find(t, fs, "kernel.uas", ""), map[string]int{"UAS command aborted": 3, "UAS device reset": 4})
	wantEvents(t, find(t, fs, "kernel.io-error", "sdb"), map[string]int{"I/O error": 1, "Buffer I/O error, lost async page write": 1, "SCSI command failed (DID_NO_CONNECT)": 1})
	if k := find(t, fs, "kernel.usb", "1-4"); len(k.Fixes) != 0 {
		t.Errorf("keyboard given disk fixes: %v", k.Fixes)
	}
}

func TestKernelLogNetworkAndMisc(t *testing.T) {
	fs, _ := scanFile(t, "misc-journal-iso.txt", KernelParams{})
	assertFindings(t, fs,
		want{Critical, "kernel.nfs", "192.168.1.20"},
		want{Warning, "kernel.cifs", "192.168.1.30"},
		want{Warning, "kernel.hung-task", ""},
		want{Warning, "kernel.pcie", "0000:03:00.0"},
		want{Warning, "kernel.mce", ""},
	)
	n := find(t, fs, "kernel.nfs", "192.168.1.20")
	wantEvents(t, n, map[string]int{"not responding, still trying": 2, "not responding, timed out (I/O errors returned to the writer)": 1, "responding again": 2})
	if n.Events[0].First != "2025-12-13T03:09:44+0800" {
		t.Errorf("nfs first %+v", n.Events[0])
	}
}

// On a clean boot, nothing is a warning: lookalike lines (EDAC and mce
// initialisation, clean XFS and btrfs mounts, a floppy's I/O error, a UPS
// unplugged) stay quiet or info.
func TestKernelLogClean(t *testing.T) {
	fs, _ := scanFile(t, "clean-dmesg.txt", KernelParams{})
	assertFindings(t, fs,
		want{Info, "kernel.io-error", "fd0"},
		want{Info, "kernel.usb", "1-3"},
	)
}

func TestNVMeAdviceFollowsTheWorkaround(t *testing.T) {
	log := "nvme nvme0: I/O 448 QID 2 timeout, aborting\nnvme nvme0: I/O 448 QID 2 timeout, reset controller\n"
	fixes := func(kp KernelParams, current bool) string {
		s := scanLog(strings.NewReader(log), LogSummary{})
		s.current = current
		return fixesText(kernelFindings([]*logScan{s}, kp, nil)[0])
	}
	off := KernelParams{PSMaxLatencyUs: "100000"}
	txt := fixes(off, true)
	for _, w := range []string{`GRUB_CMDLINE_LINUX_DEFAULT="quiet nvme_core.default_ps_max_latency_us=0 pcie_aspm=off"`, "update-grub", "It may not help", "swapping the SSD", "vzsalvage verify"} {
		if !strings.Contains(txt, w) {
			t.Errorf("without the workaround, fixes lack %q:\n%s", w, txt)
		}
	}
	if strings.Contains(txt, "proxmox-boot-tool") {
		t.Error("proxmox-boot-tool without it")
	}
	half := KernelParams{PSMaxLatencyUs: "0", BootTool: true}
	txt = fixes(half, true)
	if !strings.Contains(txt, "Add pcie_aspm=off to") || !strings.Contains(txt, "proxmox-boot-tool refresh") || !strings.Contains(txt, "/etc/kernel/cmdline") {
		t.Errorf("half the workaround on a proxmox-boot-tool host:\n%s", txt)
	}
	on := KernelParams{PSMaxLatencyUs: "0", ASPM: "off", Uptime: 7200}
	txt = fixes(on, true)
	if !strings.Contains(txt, "already active") || !strings.Contains(txt, "power saving is not the cause") || strings.Contains(txt, "update-grub") {
		t.Errorf("workaround active, timeouts in this boot:\n%s", txt)
	}
	txt = fixes(on, false)
	if !strings.Contains(txt, "active now") || !strings.Contains(txt, "up 2 h 0 min") {
		t.Errorf("workaround active, timeouts in a saved log:\n%s", txt)
	}
}

// A log longer than any bound stays bounded in memory: long lines are cut,
// groups and events capped.
func TestKernelLogBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("nvme nvme0: I/O 1 QID 1 timeout, aborting " + strings.Repeat("x", 100000) + "\n")
	for i := range maxGroups + 50 {
		b.WriteString("nfs: server host" + strings.Repeat("1", i%7) + string(rune('a'+i%26)) + strconv.Itoa(i) + " not responding, still trying\n")
	}
	s := scanLog(strings.NewReader(b.String()), LogSummary{})
	if len(s.groups) != maxGroups {
		t.Errorf("%d groups", len(s.groups))
	}
	if l := len(s.groups[0].events[0].firstLine); l > maxEvidenceLineLen+4 {
		t.Errorf("evidence line of %d bytes", l)
	}
}

func FuzzScanLog(f *testing.F) {
	ents, _ := os.ReadDir(filepath.Join("testdata", "kernlog"))
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("testdata", "kernlog", e.Name())); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("EDAC MC0: 99999999999999999999 CE x\nmce: [Hardware Error]: CPU 1: Machine Check: 0 Bank 1: ffffffffffffffffff\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := scanLog(strings.NewReader(string(b)), LogSummary{})
		for _, f := range kernelFindings([]*logScan{s}, KernelParams{}, nil) {
			if f.Title == "" || len(f.Evidence) > maxEvidence {
				t.Fatalf("finding %+v", f)
			}
		}
	})
}

// BenchmarkScanLog reads a mostly quiet boot log, the common case, with a
// few failures mixed in.
func BenchmarkScanLog(b *testing.B) {
	clean, _ := os.ReadFile(filepath.Join("testdata", "kernlog", "clean-dmesg.txt"))
	story, _ := os.ReadFile(filepath.Join("testdata", "kernlog", "story-journal.txt"))
	log := strings.Repeat(string(clean), 100) + string(story)
	b.SetBytes(int64(len(log)))
	for b.Loop() {
		scanLog(strings.NewReader(log), LogSummary{})
	}
}

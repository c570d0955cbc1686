package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/doctor"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// The story's host, the morning after: the NVMe timeouts in its kern.log
// make it critical (exit 1), with the workaround and its hedges.
func TestDoctorStoryHost(t *testing.T) {
	root := filepath.Join(testutil.Root(), "doctor", "testdata", "story-host")
	code, out, errs := vz("doctor", "--root", root)
	if code != 1 || errs != "" {
		t.Fatalf("exit %d: %s\n%s", code, errs, out)
	}
	for _, w := range []string{
		"vzsalvage doctor: pve,",
		"CRITICAL nvme0: the NVMe drive stopped answering and was removed",
		"2025-12-15T00:43:02.118310+08:00 pve kernel: nvme nvme0: I/O timeout, aborting",
		`GRUB_CMDLINE_LINUX_DEFAULT="quiet nvme_core.default_ps_max_latency_us=0 pcie_aspm=off"`,
		"swapping the SSD",
		"WARNING storage nfs_usb_4t: NFS mounted soft",
		"not protected by vzsalvage (no sidecar)",
		"SMART skipped (no command is run on a --root tree)",
	} {
		if flat := strings.Join(strings.Fields(out), " "); !strings.Contains(flat, w) { // lines are wrapped
			t.Errorf("output lacks %q", w)
		}
	}
	code, out, _ = vz("doctor", "--json", "--root", root)
	var rep doctor.Report
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.Status != "critical" || rep.Findings[0].Kind != "kernel.nvme" {
		t.Fatalf("--json: exit %d %.400s", code, out)
	}
}

// A host with nothing wrong exits 0; a saved log named with --kernel-log
// replaces the tree's.
func TestDoctorCleanHostAndSavedLog(t *testing.T) {
	root := t.TempDir()
	name := "vzdump-qemu-100-" + time.Now().Add(-3*time.Hour).Format("2006_01_02-15_04_05") + ".vma.zst"
	for p, c := range map[string]string{
		"etc/pve/storage.cfg":          "dir: local\n\tpath /var/lib/vz\n\tcontent backup\n",
		"etc/pve/qemu-server/100.conf": "name: web\n",
		"proc/self/mountinfo":          "28 1 252:1 / / rw,relatime shared:1 - ext4 /dev/mapper/pve-root rw\n",
		"var/lib/vz/dump/" + name:      "",
		"var/log/kern.log":             "2025-12-16T00:00:01+01:00 pve kernel: EXT4-fs (dm-1): re-mounted r/w. Quota mode: none.\n",
	} {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := vz("doctor", "--root", root)
	if code != 0 || !strings.Contains(out, "0 critical, 0 warning(s)") {
		t.Fatalf("exit %d: %s\n%s", code, errs, out)
	}
	saved := filepath.Join(testutil.Root(), "doctor", "testdata", "kernlog", "edac-mce-journal.txt")
	code, out, _ = vz("doctor", "--root", root, "--kernel-log", saved)
	if code != 1 || !strings.Contains(out, "MC1: 1 memory error(s) detected by ECC (EDAC)") || strings.Contains(out, "var/log/kern.log") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestDoctorCouldNotRun(t *testing.T) {
	if code, _, errs := vz("doctor", "--root", filepath.Join(t.TempDir(), "nothing")); code != 2 || !strings.Contains(errs, "--root must be a directory") {
		t.Errorf("missing root: %d %s", code, errs)
	}
	if code, _, errs := vz("doctor", "--root", t.TempDir(), "--kernel-log", "/nonexistent/kern.log"); code != 2 || !strings.Contains(errs, "kernel log") {
		t.Errorf("missing kernel log: %d %s", code, errs)
	}
	if code, out, _ := vz("doctor", "--help"); code != 0 || !strings.Contains(out, "nvme_core/parameters/default_ps_max_latency_us") || !strings.Contains(out, "Exit status: 0 nothing critical") {
		t.Errorf("help: %d\n%s", code, out)
	}
}

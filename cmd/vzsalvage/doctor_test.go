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
		if !strings.Contains(flat(out), w) {
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

// What protect's sidecar says reaches the doctor: intact when written,
// changed after a byte flipped, repairable once scrub has looked.
func TestDoctorReadsSidecars(t *testing.T) {
	root := t.TempDir()
	dump := filepath.Join(root, "var", "lib", "vz", "dump")
	for p, c := range map[string]string{
		"etc/pve/storage.cfg":          "dir: local\n\tpath /var/lib/vz\n\tcontent backup\n",
		"etc/pve/qemu-server/100.conf": "name: web\n",
		"proc/self/mountinfo":          "28 1 252:1 / / rw,relatime shared:1 - ext4 /dev/mapper/pve-root rw\n",
	} {
		p = filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(dump, 0o755)
	arc := filepath.Join(dump, "vzdump-qemu-100-"+time.Now().Add(-2*time.Hour).Format("2006_01_02-15_04_05")+".vma.zst")
	if err := os.Rename(smallArchive(t, t.TempDir()), arc); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := vz("protect", "-q", arc); code != 0 {
		t.Fatalf("protect: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ := vz("doctor", "--root", root)
	if code != 0 || !strings.Contains(flat(out), "protected, verified intact when written") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	b, _ := os.ReadFile(arc)
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(arc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// a change is seen by size and time: within the same second as
	// protect, only a later time shows it
	later := time.Now().Add(time.Minute)
	os.Chtimes(arc, later, later)
	_, out, _ = vz("doctor", "--root", root)
	if !strings.Contains(flat(out), "WARNING VM 100: the newest backup on storage local changed since it was protected") {
		t.Fatalf("after a flipped bit:\n%s", out)
	}
	vz("scrub", "-q", dump)
	code, out, _ = vz("doctor", "--root", root, "--json")
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("exit %d %v", code, err)
	}
	var kinds []string
	for _, f := range rep.Findings {
		kinds = append(kinds, f.Kind)
	}
	if p := rep.Storages[0].Guests[0].Newest.Protection; p.Verdict != doctor.VerdictRepairable || p.Checked.IsZero() || !strings.Contains(strings.Join(kinds, " "), "backup.repairable") {
		t.Errorf("after scrub: %+v %v", p, kinds)
	}
}

// flat undoes the human output's wrapping.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

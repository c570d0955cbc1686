package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/vma"
)

// sample returns the path of the damaged sample archive the project ships.
func sample() string {
	return filepath.Join(testutil.Root(), "sample", "vzdump-qemu-100-2025_12_15-03_00_03.vma.zst")
}

// TestRescueForceKeepsUserFiles: --force replaces an earlier rescue's
// outputs, never a user's own files/ or disks/.
func TestRescueForceKeepsUserFiles(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "files", "my-notes.txt")
	os.MkdirAll(filepath.Dir(mine), 0o755)
	os.WriteFile(mine, []byte("mine"), 0o644)
	code, _, errs := vz("rescue", "-q", "--force", sample(), "-o", dir)
	if code != 2 || !strings.Contains(errs, "not replacing") {
		t.Errorf("rescue --force into a user's directory: exit %d, %q", code, errs)
	}
	if b, err := os.ReadFile(mine); err != nil || string(b) != "mine" {
		t.Fatalf("the user's file is gone: %v", err)
	}

	// An earlier rescue's directory: --force replaces its outputs and keeps
	// anything else the user put there.
	dir = t.TempDir()
	if code, _, errs := vz("rescue", "-q", sample(), "-o", dir); code != 1 {
		t.Fatalf("rescue: exit %d %s", code, errs)
	}
	note := filepath.Join(dir, "NOTES")
	os.WriteFile(note, []byte("mine"), 0o644)
	if code, _, errs := vz("rescue", "-q", sample(), "-o", dir); code != 2 || !strings.Contains(errs, "--force") {
		t.Errorf("rescue into a used directory without --force: exit %d %q", code, errs)
	}
	if code, _, errs := vz("rescue", "-q", "--force", sample(), "-o", dir); code != 1 {
		t.Errorf("rescue --force over an earlier rescue: exit %d %q", code, errs)
	}
	if _, err := os.Stat(note); err != nil {
		t.Errorf("the user's note is gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.md")); err != nil {
		t.Error(err)
	}
}

// writeVMA writes an uncompressed VMA archive with the given devices (one
// cluster of data each) and qemu-server.conf.
func writeVMA(t *testing.T, path string, conf string, devs ...vma.Device) {
	t.Helper()
	h := &vma.Header{Ctime: time.Unix(1734000000, 0), Devices: devs,
		Configs: []vma.Config{{Name: "qemu-server.conf", Data: []byte(conf)}}}
	sum := sha256.Sum256([]byte(path))
	copy(h.UUID[:], sum[:])
	var b bytes.Buffer
	w, err := vma.NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		for c := uint32(0); int64(c)*65536 < d.Size; c++ {
			if err := w.WriteCluster(d.ID, c, bytes.Repeat([]byte{byte(c + 1)}, 65536)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAlsoRefusesAnotherGuest: --also with another VM's backup is refused
// with a clear error before any heavy work; --other-guest allows it.
func TestAlsoRefusesAnotherGuest(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(sample())
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "vzdump-qemu-200-2025_12_14-03_00_02.vma.zst")
	os.WriteFile(other, b, 0o644)
	out := filepath.Join(dir, "out")
	code, _, errs := vz("rescue", "-q", sample(), "--also", other, "-o", out)
	if code != 2 || !strings.Contains(errs, "another guest") || !strings.Contains(errs, "qemu 200") || !strings.Contains(errs, "--other-guest") {
		t.Errorf("another VMID: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("the refused rescue created %s", out)
	}

	// Names that say nothing: the configs' SMBIOS uuids and the disks decide.
	a, c, d := filepath.Join(dir, "a.vma"), filepath.Join(dir, "c.vma"), filepath.Join(dir, "d.vma")
	disk := vma.Device{ID: 1, Name: "drive-scsi0", Size: 4 << 16}
	writeVMA(t, a, "name: a\nsmbios1: uuid=11111111-1111-1111-1111-111111111111\n", disk)
	writeVMA(t, c, "name: c\nsmbios1: uuid=22222222-2222-2222-2222-222222222222\n", disk)
	writeVMA(t, d, "name: a\n", vma.Device{ID: 1, Name: "drive-virtio0", Size: 4 << 16})
	for _, older := range []string{c, d} {
		code, _, errs := vz("rescue", "-q", a, "--also", older, "-o", out)
		if code != 2 || !strings.Contains(errs, "another guest") {
			t.Errorf("%s: exit %d, %q", older, code, errs)
		}
	}
	if code, _, errs := vz("rescue", "-q", "--other-guest", a, "--also", c, "-o", out); code == 2 {
		t.Errorf("--other-guest: exit %d, %q", code, errs)
	}
}

// TestLsCpArchiveLeaveNothing: ls and cp of an archive work without a
// writable home or a cache flag, leave nothing behind, and exit 1 for a
// damaged backup; cp never replaces an existing file and says so (exit 2).
func TestLsCpArchiveLeaveNothing(t *testing.T) {
	home, tmp := t.TempDir(), t.TempDir()
	os.Chmod(home, 0o555)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("TMPDIR", tmp)
	code, out, errs := vz("ls", "-q", sample())
	if code != 1 || !strings.Contains(out, "drive-scsi0-p3") || !strings.Contains(errs, "damaged") {
		t.Errorf("ls of the damaged sample: exit %d\n%s%s", code, out, errs)
	}
	dest := t.TempDir()
	code, out, errs = vz("cp", "-q", sample(), "drive-scsi0-p3:/etc/hostname", dest)
	if code != 0 || !strings.Contains(out, "copied 1 file,") {
		t.Errorf("cp: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = vz("cp", "-q", sample(), "drive-scsi0-p3:/etc/hostname", dest)
	if code != 2 || out != "" || !strings.Contains(errs, "already exists") || !strings.Contains(errs, "--force") {
		t.Errorf("cp onto an existing file: exit %d\n%s%s", code, out, errs)
	}
	os.WriteFile(filepath.Join(dest, "hostname"), []byte("old"), 0o644)
	code, out, errs = vz("cp", "-q", "--force", sample(), "drive-scsi0-p3:/etc/hostname", dest)
	if b, _ := os.ReadFile(filepath.Join(dest, "hostname")); code != 0 || string(b) == "old" {
		t.Errorf("cp --force: exit %d, %q\n%s%s", code, b, out, errs)
	}
	for _, d := range []string{home, tmp} {
		if ents, _ := os.ReadDir(d); len(ents) > 0 {
			t.Errorf("%s holds %d entries after ls and cp", d, len(ents))
		}
	}
}

// TestMain lets a test run the command in a child process (for signals):
// VZSALVAGE_TEST_ARGS holds its arguments, one per line.
func TestMain(m *testing.M) {
	if args := os.Getenv("VZSALVAGE_TEST_ARGS"); args != "" {
		os.Exit(run(strings.Split(args, "\n"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestSIGTERMLeavesNoHalfRescue sends SIGTERM to rescues at several
// moments: each either finishes with its report or removes what it wrote;
// DIR never holds a half-done rescue.
func TestSIGTERMLeavesNoHalfRescue(t *testing.T) {
	dir := t.TempDir()
	arc := filepath.Join(dir, "vzdump-qemu-100-2025_12_15-03_00_03.vma")
	// 160 MiB of incompressible clusters: long enough to be caught reading.
	bigVMA(t, arc, 160)
	for i, delay := range []time.Duration{30 * time.Millisecond, 120 * time.Millisecond, 400 * time.Millisecond} {
		out := filepath.Join(dir, fmt.Sprint("out", i))
		code, errs := sigterm(t, delay, "rescue", "-q", arc, "-o", out)
		_, rerr := os.Stat(filepath.Join(out, "report.md"))
		_, derr := os.Stat(out)
		switch {
		case code == 2 && os.IsNotExist(derr) && strings.Contains(errs, "was removed"):
			t.Logf("SIGTERM after %v: interrupted, cleaned up", delay)
		case code == 0 || code == 1 && rerr == nil:
			t.Logf("SIGTERM after %v: finished first (exit %d)", delay, code)
		case code == -1 && os.IsNotExist(derr):
			t.Logf("SIGTERM after %v: killed before it began", delay)
		default:
			ents, _ := os.ReadDir(out)
			t.Errorf("SIGTERM after %v: exit %d, %d entries left, stderr %q", delay, code, len(ents), errs)
		}
	}
}

// sigterm runs vzsalvage with args in a subprocess, sends it SIGTERM after
// delay and returns its exit code (-1: killed by the signal) and stderr.
func sigterm(t *testing.T, delay time.Duration, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VZSALVAGE_TEST_ARGS="+strings.Join(args, "\n"))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	return cmd.ProcessState.ExitCode(), errb.String()
}

// bigVMA writes a VMA of one disk of mib MiB of incompressible clusters.
func bigVMA(t *testing.T, arc string, mib int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	h := &vma.Header{Ctime: time.Unix(1734000000, 0), Devices: []vma.Device{{ID: 1, Name: "drive-scsi0", Size: mib << 20}}}
	f, err := os.Create(arc)
	if err != nil {
		t.Fatal(err)
	}
	w, err := vma.NewWriter(f, h)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for c := uint32(0); c < uint32(mib)<<4; c++ {
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
		}
		if err := w.WriteCluster(1, c, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestNoSpaceLeavesNothing: a rescue into a filesystem too small for it
// fails with one clear line (exit 2) and removes what it wrote, so the
// disk is not left full. Needs root for a small tmpfs.
func TestNoSpaceLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	out := filepath.Join(mnt, "rescue")
	code, stdout, errs := vz("rescue", "-q", sample(), "-o", out)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if code != 2 || len(lines) != 1 || !strings.Contains(errs, "no space left") || !strings.Contains(errs, "removed") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, errs)
	}
	if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
		t.Errorf("%d entries left on the full filesystem", len(ents))
	}
}

// TestSampleReportReadsCold: the sample rescue's report.md answers, without
// anything else to read: what was lost, which files, what is safe, what to
// run next, and where the VM config is.
func TestSampleReportReadsCold(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := vz("rescue", "-q", sample(), "-o", dir); code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{
		"**Lost or unverified:** 2.4 MiB of disk data",                              // what was lost
		"`/srv/vocab/words.csv` | 3.3 MiB | partial",                                // which files, how badly
		"1010688–1276928 missing",                                                   // where in the file
		"**Safe:** the other files are byte-identical",                              // what is safe
		"**VM config:** `disks/qemu-server.conf`",                                   // where the config is
		"Disk scsi1 (`local-lvm:vm-100-disk-1`) is named in the config but missing", // absent disk
		"\"EFI\": empty (all zeros in the backup",                                   // a partition without a filesystem
		"qm disk import 900 disks/disk-drive-scsi0.raw local-lvm",                   // the way back into Proxmox
		"A backup stores each disk in 64 KiB *clusters*",                            // the jargon explained
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if n := strings.Count(md, "silent damage"); n > 1 {
		t.Errorf("the checksum caveat appears %d times", n)
	}
	if strings.Contains(md, "read as: on-disk") {
		t.Error("report.md says 'read as: on-disk'")
	}
	rep, err := report.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Devices[1].Path != "disks/disk-drive-scsi0.raw" || rep.Config != "disks/qemu-server.conf" {
		t.Errorf("report.json paths: %q %q", rep.Devices[1].Path, rep.Config)
	}
}

// TestTruncatedHeadline: for a cut archive the first thing said is that it
// ends early, where, and what each disk misses.
func TestTruncatedHeadline(t *testing.T) {
	b, err := os.ReadFile(sample())
	if err != nil {
		t.Fatal(err)
	}
	arc := filepath.Join(t.TempDir(), filepath.Base(sample()))
	os.WriteFile(arc, b[:1200000], 0o644)
	dir := t.TempDir()
	code, out, errs := vz("rescue", "-q", arc, "-o", dir)
	if code != 1 || !strings.HasPrefix(out, "damaged: the backup ends early;") {
		t.Fatalf("exit %d: %q %q", code, out, errs)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !regexp.MustCompile(`> \*\*The backup ends early.\*\* Its zstd stream stops being readable at byte \d+ of the file.*drive-scsi0 misses [0-9.]+ MiB of 64.0 MiB`).Match(md) {
		t.Errorf("report.md does not lead with the truncation:\n%s", md[:min(len(md), 800)])
	}
	rep, _ := report.ReadFile(filepath.Join(dir, "report.json"))
	if rep == nil || rep.Archives[0].EndsEarly == nil || rep.Archives[0].EndsEarly.Kind != damage.Truncated {
		t.Errorf("report.json lacks ends_early")
	}
}

// TestQcow2Output: extract and rescue write qcow2 images that qemu-img
// accepts and finds identical to the raw ones, compressed or not; ls and
// cp read the directory back.
func TestQcow2Output(t *testing.T) {
	qimg := testutil.RequireTool(t, "qemu-img")
	raw := t.TempDir()
	if code, _, errs := vz("extract", "-q", sample(), "-o", raw); code != 1 {
		t.Fatalf("extract: exit %d %s", code, errs)
	}
	for _, compress := range []bool{false, true} {
		dir := t.TempDir()
		args := []string{"extract", "-q", "--format", "qcow2", sample(), "-o", dir}
		if compress {
			args = append(args, "--compress")
		}
		if code, _, errs := vz(args...); code != 1 {
			t.Fatalf("%v: exit %d %s", args, code, errs)
		}
		for _, dev := range []string{"drive-scsi0", "drive-efidisk0"} {
			q := filepath.Join(dir, "disk-"+dev+".qcow2")
			if out, err := exec.Command(qimg, "check", q).CombinedOutput(); err != nil {
				t.Errorf("qemu-img check %s: %v\n%s", q, err, out)
			}
			if out, err := exec.Command(qimg, "compare", "-f", "qcow2", "-F", "raw", q, filepath.Join(raw, "disk-"+dev+".raw")).CombinedOutput(); err != nil {
				t.Errorf("qemu-img compare %s: %v\n%s", q, err, out)
			}
		}
		if code, out, _ := vz("ls", dir, "drive-scsi0-p3:/etc"); code != 0 || !strings.Contains(out, "hostname") {
			t.Errorf("ls of a qcow2 extract: exit %d\n%s", code, out)
		}
	}
	dir := t.TempDir()
	if code, _, errs := vz("rescue", "-q", "--format", "qcow2", sample(), "-o", dir); code != 1 {
		t.Fatalf("rescue --format qcow2: exit %d %s", code, errs)
	}
	q := filepath.Join(dir, "disks", "disk-drive-scsi0.qcow2")
	if out, err := exec.Command(qimg, "compare", "-f", "qcow2", "-F", "raw", q, filepath.Join(raw, "disk-drive-scsi0.raw")).CombinedOutput(); err != nil {
		t.Errorf("qemu-img compare of the rescue's image: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "disks", "disk-drive-scsi0.raw")); err == nil {
		t.Error("the raw image is left beside the qcow2 one")
	}
	if code, out, _ := vz("ls", dir); code != 1 || !strings.Contains(out, "drive-scsi0-p3") {
		t.Errorf("ls of a qcow2 rescue: exit %d\n%s", code, out)
	}
}

// TestDetectByContent: what a file is comes from its content, and the
// commands say it: random bytes named .vma.zst are not a backup; a
// container backup renamed .vma.zst is read as one (and inspect says the
// name disagrees); a plain .tar is a container, not a raw disk image.
func TestDetectByContent(t *testing.T) {
	tarTool := testutil.RequireTool(t, "tar")
	zstdTool := testutil.RequireTool(t, "zstd")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "etc", "vzdump"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "vzdump", "pct.conf"), []byte("arch: amd64\nhostname: ct\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("ct\n"), 0o644)
	plain := filepath.Join(dir, "plain.tar")
	if out, err := exec.Command(tarTool, "cf", plain, "-C", root, "./etc/vzdump/pct.conf", "./etc/hostname").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	renamed := filepath.Join(dir, "vzdump-qemu-100-2025_01_01-00_00_00.vma.zst")
	if out, err := exec.Command(zstdTool, "-q", plain, "-o", renamed).CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v %s", err, out)
	}
	random := filepath.Join(dir, "vzdump-qemu-101-2025_01_01-00_00_00.vma.zst")
	rb := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range rb {
		rb[i] = byte(rng.Uint32())
	}
	os.WriteFile(random, rb, 0o644)

	if code, _, errs := vz("verify", "-q", random); code != 2 || !strings.Contains(errs, "not a vzdump") || !strings.Contains(errs, "neither compressed") {
		t.Errorf("random bytes: exit %d %q", code, errs)
	}
	code, out, _ := vz("inspect", renamed)
	if code != 0 || !strings.Contains(out, "container backup (tar)") || !strings.Contains(out, "file name says a VM (vma) backup") || !strings.Contains(out, "pct.conf") {
		t.Errorf("renamed container: exit %d\n%s", code, out)
	}
	code, out, _ = vz("ls", "-q", plain)
	if code != 0 || !strings.Contains(out, "rootfs") || !strings.Contains(out, "tar") {
		t.Errorf("plain .tar: exit %d\n%s", code, out)
	}
}

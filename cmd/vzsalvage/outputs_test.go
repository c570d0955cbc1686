package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/vma"
)

// protectedArchive writes a small uncompressed VM archive in dir, protects
// it and damages one 4 KiB chunk that its parity rebuilds; it returns the
// archive's path and its original bytes.
func protectedArchive(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	arc := filepath.Join(dir, "vzdump-qemu-100-2025_12_15-03_00_03.vma")
	writeVMA(t, arc, "name: a\n", vma.Device{ID: 1, Name: "drive-scsi0", Size: 8 << 16})
	if code, out, errs := vz("protect", "-q", arc); code != 0 {
		t.Fatalf("protect: exit %d %s%s", code, out, errs)
	}
	orig, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(orig)
	copy(b[len(b)/2:], bytes.Repeat([]byte("X"), 100))
	if err := os.WriteFile(arc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return arc, orig
}

// TestRepairOutputLosesNothing: repair -o never replaces the archive it
// repairs, its sidecar or any other existing file (unless --force), and
// says so in one line; a directory or a missing parent is refused before
// any work, naming the path given (not a temporary name).
func TestRepairOutputLosesNothing(t *testing.T) {
	dir := t.TempDir()
	arc, orig := protectedArchive(t, dir)
	damaged, _ := os.ReadFile(arc)
	sidecar, _ := os.ReadFile(arc + ".vzsalvage")
	other := filepath.Join(dir, "mine.vma")
	os.WriteFile(other, []byte("mine"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	for _, tc := range []struct {
		out, want string
	}{
		{arc, "--in-place"},
		{arc + ".vzsalvage", "sidecar"},
		{filepath.Join(dir, ".", filepath.Base(arc)), "--in-place"},
		{other, "--force"},
		{filepath.Join(dir, "sub"), "is a directory"},
		{filepath.Join(dir, "nope", "x.vma"), "does not exist"},
	} {
		code, _, errs := vz("repair", "-q", arc, "-o", tc.out)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != 2 || len(lines) != 1 || !strings.HasPrefix(errs, "vzsalvage: ") || !strings.Contains(errs, tc.want) || strings.Contains(errs, ".tmp") {
			t.Errorf("repair -o %s: exit %d, stderr %q (want %q)", tc.out, code, errs, tc.want)
		}
	}
	for p, want := range map[string][]byte{arc: damaged, arc + ".vzsalvage": sidecar, other: []byte("mine")} {
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
			t.Errorf("%s was changed", p)
		}
	}
	if code, _, errs := vz("repair", "-q", "--force", arc, "-o", other); code != 0 {
		t.Fatalf("repair --force -o: exit %d %s", code, errs)
	}
	if got, _ := os.ReadFile(other); !bytes.Equal(got, orig) {
		t.Error("repair --force -o: not the original")
	}
}

// TestRepackOutputLosesNothing: repack -o never replaces an existing file
// (the damaged original in the dump directory, say) unless --force.
func TestRepackOutputLosesNothing(t *testing.T) {
	dir := t.TempDir()
	arc := filepath.Join(dir, "vzdump-qemu-100-2025_12_15-03_00_03.vma")
	writeVMA(t, arc, "name: a\n", vma.Device{ID: 1, Name: "drive-scsi0", Size: 2 << 16})
	ex := filepath.Join(dir, "ex")
	if code, _, errs := vz("extract", "-q", arc, "-o", ex); code != 0 {
		t.Fatalf("extract: exit %d %s", code, errs)
	}
	before, _ := os.ReadFile(arc)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	for _, tc := range []struct {
		out, want string
	}{
		{arc, "--force"},
		{filepath.Join(dir, "sub"), "is a directory"},
		{filepath.Join(dir, "nope", filepath.Base(arc)), "does not exist"},
	} {
		code, _, errs := vz("repack", "-q", ex, "-o", tc.out)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(errs, tc.want) || strings.Contains(errs, ".partial") || strings.Contains(errs, ".tmp") {
			t.Errorf("repack -o %s: exit %d, stderr %q (want %q)", tc.out, code, errs, tc.want)
		}
	}
	if got, _ := os.ReadFile(arc); !bytes.Equal(got, before) {
		t.Fatal("repack replaced the existing archive")
	}
	if code, _, errs := vz("repack", "-q", "--force", ex, "-o", arc); code != 0 {
		t.Fatalf("repack --force: exit %d %s", code, errs)
	}
}

// TestOutputErrorsNameTheTarget: an output that cannot be written is named
// as the user gave it, never by its temporary name; on a full filesystem
// nothing is left behind.
func TestOutputErrorsNameTheTarget(t *testing.T) {
	dir := t.TempDir()
	arc := filepath.Join(dir, "vzdump-qemu-100-2025_12_15-03_00_03.vma")
	writeVMA(t, arc, "name: a\n", vma.Device{ID: 1, Name: "drive-scsi0", Size: 4 << 16})
	nope := filepath.Join(dir, "nope")
	for _, args := range [][]string{
		{"protect", "-q", "--sidecar-dir", nope, arc},
		{"scrub", "-q", "--state", filepath.Join(nope, "state"), dir},
		{"scrub", "-q", "--metrics", filepath.Join(nope, "m.prom"), dir},
	} {
		code, _, errs := vz(args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(errs, "cannot write "+nope) || strings.Contains(errs, ".tmp") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}

	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	ex := filepath.Join(dir, "ex")
	if code, _, errs := vz("extract", "-q", arc, "-o", ex); code != 0 {
		t.Fatalf("extract: exit %d %s", code, errs)
	}
	out := filepath.Join(mnt, filepath.Base(arc))
	for _, args := range [][]string{
		{"repack", "-q", ex, "-o", out},
		{"protect", "-q", "--sidecar-dir", mnt, arc},
	} {
		code, _, errs := vz(args...)
		if code != 2 || !strings.Contains(errs, "cannot write "+mnt) || !strings.Contains(errs, "no space left") || strings.Contains(errs, ".tmp") {
			t.Errorf("%q on a full filesystem: exit %d, stderr %q", args, code, errs)
		}
		if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
			t.Errorf("%q left %d entries on the full filesystem", args, len(ents))
		}
	}
}

// TestScrubJSONStaysJSON: with --json, stdout holds only the JSON, also
// when an alert cannot be delivered (that is said on stderr).
func TestScrubJSONStaysJSON(t *testing.T) {
	dir := t.TempDir()
	protectedArchive(t, dir) // damaged: scrub alerts
	code, out, errs := vz("scrub", "-q", "--json", "--webhook", "http://127.0.0.1:1/", dir)
	var checks []map[string]any
	if err := json.Unmarshal([]byte(out), &checks); err != nil || len(checks) != 1 {
		t.Errorf("stdout is not the checks as JSON (%v):\n%s", err, out)
	}
	if code != 2 || !strings.HasPrefix(errs, "vzsalvage: alert not delivered") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

// TestJSONKeys: repair --json and repack --json name their fields as every
// other --json output does (lower case, words joined by _).
func TestJSONKeys(t *testing.T) {
	dir := t.TempDir()
	arc, _ := protectedArchive(t, dir)
	ex := filepath.Join(dir, "ex")
	vz("extract", "-q", "--no-sidecar", arc, "-o", ex)
	for _, args := range [][]string{
		{"repair", "--json", arc},
		{"repack", "--json", ex, "-o", filepath.Join(dir, "vzdump-qemu-100-2025_12_16-03_00_03.vma.zst")},
	} {
		_, out, errs := vz(args...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%q: %v %s", args, err, errs)
		}
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, x := range v {
					if k != strings.ToLower(k) {
						t.Errorf("%s --json: key %q", args[0], k)
					}
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(v)
	}
}

// TestJSONSaysWhyItFailed: with --json, a command that could not run
// still prints JSON holding the reason (exit 2), and the one line on
// stderr.
func TestJSONSaysWhyItFailed(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.vma")
	os.WriteFile(junk, bytes.Repeat([]byte("not a backup "), 1000), 0o644)
	nope := filepath.Join(dir, "nope")
	for _, args := range [][]string{
		{"inspect", "--json", junk},
		{"verify", "--json", junk},
		{"extract", "--json", junk, "-o", filepath.Join(dir, "x")},
		{"rescue", "--json", junk, "-o", filepath.Join(dir, "r")},
		{"ls", "--json", nope},
		{"repair", "--json", junk},
		{"protect", "--json", junk},
		{"repack", "--json", nope, "-o", filepath.Join(dir, "vzdump-qemu-100-2025_12_16-03_00_03.vma.zst")},
		{"scrub", "--json", nope},
		{"doctor", "--json", "--root", nope},
	} {
		code, out, errs := vz(args...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil || code != 2 || !strings.HasPrefix(errs, "vzsalvage: ") {
			t.Errorf("%q: exit %d, stdout %q (%v), stderr %q", args, code, out, err, errs)
			continue
		}
		reason := strings.TrimSpace(strings.TrimPrefix(errs, "vzsalvage: "))
		if !strings.Contains(out, reason[:min(len(reason), 20)]) {
			t.Errorf("%q: the JSON does not hold the reason %q:\n%s", args, reason, out)
		}
	}
}

// TestFailedStartLeavesNothing: extract and rescue of an archive that is
// missing, a directory or junk leave no output directory behind, and a
// rescue that never started does not say it removed one.
func TestFailedStartLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.vma")
	os.WriteFile(junk, bytes.Repeat([]byte("junk"), 1000), 0o644)
	for _, in := range []string{filepath.Join(dir, "nope.vma"), t.TempDir(), junk} {
		for _, cmd := range []string{"extract", "rescue"} {
			out := filepath.Join(dir, "out")
			code, _, errs := vz(cmd, "-q", in, "-o", out)
			if _, err := os.Stat(out); code != 2 || !os.IsNotExist(err) {
				t.Errorf("%s %s: exit %d, %s left: %v", cmd, in, code, out, err)
			}
			if in != junk && strings.Contains(errs, "removed") {
				t.Errorf("%s %s: %q", cmd, in, errs)
			}
		}
	}
}

// TestLsBackupNameJunkContent: a file named like a backup whose content is
// no backup (damaged at its start, or random) is not listed as a raw disk
// with exit 0.
func TestLsBackupNameJunkContent(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "vzdump-qemu-100-2025_12_15-03_00_03.vma.zst")
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	os.WriteFile(junk, b, 0o644)
	for _, args := range [][]string{{"ls", junk}, {"cp", junk, "drive-scsi0:/etc/fstab", dir}} {
		code, _, errs := vz(args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(errs, "named like a vzdump backup") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}

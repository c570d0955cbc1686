package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/report"
)

// vz runs the command line and returns its exit status and output.
func vz(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// fixture copies the real Proxmox archive under a vzdump name.
func fixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(testutil.Fixture(t, "pve-real-truncated.vma.gz"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "vzdump-qemu-100-2021_10_31-11_43_42.vma.gz")
	if err := os.WriteFile(p, b, 0o444); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInspectRealArchive(t *testing.T) {
	code, out, errs := vz("inspect", fixture(t))
	if code != 0 || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"compression gzip", "qemu 100, backup of 2021-10-31 11:43:42", "drive-scsi0  10.0 GiB (10737418240 bytes)",
		"04fc12eb-0fed-4322-9aaa-f4e412f68096", "--- qemu-server.conf (417 bytes) ---", "#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = vz("inspect", "--json", fixture(t))
	var js map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || js["compression"] != "gzip" {
		t.Fatalf("inspect --json: %d %s", code, out)
	}
}

func TestVerifyRealArchive(t *testing.T) {
	code, out, _ := vz("verify", "-q", fixture(t))
	if code != 1 || !strings.Contains(out, "detected missing cluster 23 for stream drive-scsi0") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out, _ = vz("verify", "--json", fixture(t))
	var rep report.Report
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.Archives[0].Status != "damaged" {
		t.Fatalf("verify --json: exit %d %s", code, out)
	}
}

func TestExtractRealArchive(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := vz("extract", "-q", fixture(t), "-o", dir)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	f, err := os.Open(filepath.Join(dir, "disk-drive-scsi0.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, 136*65536); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != "5b9280e7cc6a7f33438ba3b686bd87cd7b6e14dfcffedc73a388dd3dcfd93f19" {
		t.Errorf("first 136 clusters: %s", got)
	}
	rep, err := report.ReadFile(filepath.Join(dir, "damage.json"))
	if err != nil || rep.Devices[0].Clusters.Lost != 163840-116 {
		t.Fatalf("damage.json: %v %+v", err, rep)
	}
	// a second extract refuses to overwrite, --force does
	if code, _, errs := vz("extract", "-q", fixture(t), "-o", dir); code != 2 || !strings.Contains(errs, "--force") {
		t.Errorf("second extract: exit %d %s", code, errs)
	}
	if code, _, _ := vz("extract", "-q", "--force", fixture(t), "-o", dir); code != 1 {
		t.Errorf("extract --force: exit %d", code)
	}
}

// TestBadInput: one clear line on stderr and exit 2, never a panic.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	garbage := bytes.Repeat([]byte("not a backup at all "), 5000)
	hdr, _ := os.ReadFile(testutil.Fixture(t, "pve-real-truncated.vma.gz"))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"missing file", []string{"verify", filepath.Join(dir, "nope.vma")}},
		{"empty file", []string{"verify", write("empty.vma", nil)}},
		{"garbage", []string{"verify", write("garbage.vma", garbage)}},
		{"garbage inspect", []string{"inspect", write("garbage2.vma", garbage)}},
		{"gzip of garbage", []string{"extract", write("g.vma.gz", hdr[:30]), "-o", filepath.Join(dir, "o")}},
		{"no args", []string{"verify"}},
		{"unknown flag", []string{"verify", "--nope", "x"}},
		{"extract without -o", []string{"extract", "x.vma"}},
		{"unknown command", []string{"frobnicate"}},
	} {
		code, _, errs := vz(tc.args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "vzsalvage: ") {
			t.Errorf("%s: exit %d, stderr %q", tc.name, code, errs)
		}
	}
}

func TestHelpTeaches(t *testing.T) {
	for _, cmd := range []string{"inspect", "verify", "extract", "ls", "cp", "rescue"} {
		code, out, _ := vz(cmd, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, out)
		}
	}
}

// TestSampleRescue runs the README's first command on the shipped sample.
func TestSampleRescue(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := vz("rescue", "-q", filepath.Join(testutil.Root(), "sample", "vzdump-qemu-100-2025_12_15-03_00_03.vma.zst"), "-o", dir)
	if code != 1 || !strings.HasPrefix(out, "damaged: ") {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	rep, err := report.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, f := range rep.DamagedFiles {
		listed[f.Path] = true
	}
	sums, err := os.ReadFile(filepath.Join(testutil.Root(), "sample", "original.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	same, total := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		want, name, _ := strings.Cut(line, "  ")
		name = strings.TrimPrefix(name, ".")
		total++
		b, err := os.ReadFile(filepath.Join(dir, "files", "drive-scsi0-p3", name))
		got := sha256.Sum256(b)
		if err == nil && hex.EncodeToString(got[:]) == want {
			same++
		} else if !listed[name] {
			t.Errorf("%s differs but is not listed as damaged", name)
		}
	}
	t.Logf("sample: %d of %d files identical", same, total)
}

// TestLsCpRealExt4 lists and copies a tree out of an ext4 root made by
// mke2fs -d, from a raw image: content, modes, symlinks and hard links.
func TestLsCpRealExt4(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	testimg.Tree(t, src, testimg.TreeOptions{Files: 60, Seed: 9})
	img := filepath.Join(dir, "vm.raw")
	testimg.GPTExt4(t, img, 48<<20, src)
	code, out, errs := vz("ls", img)
	if code != 0 || !strings.Contains(out, "vm-p3") || !strings.Contains(out, "ext4") {
		t.Fatalf("ls: %d %s %s", code, out, errs)
	}
	code, out, _ = vz("ls", img, "vm-p3:/")
	if code != 0 || !strings.Contains(out, "link-short -> ") || !strings.Contains(out, "lost+found") {
		t.Fatalf("ls vm-p3:/: %d\n%s", code, out)
	}
	dest := filepath.Join(dir, "out")
	if code, _, errs := vz("cp", "-r", "-q", img, "vm-p3:/", dest); code != 0 {
		t.Fatalf("cp -r: %d %s", code, errs)
	}
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		got, err := os.Lstat(filepath.Join(dest, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if got.Mode() != info.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, got.Mode(), info.Mode())
		}
		switch {
		case info.Mode().IsRegular():
			a, _ := os.ReadFile(p)
			b, _ := os.ReadFile(filepath.Join(dest, rel))
			if !bytes.Equal(a, b) {
				t.Errorf("%s: content differs", rel)
			}
		case info.Mode()&os.ModeSymlink != 0:
			a, _ := os.Readlink(p)
			b, _ := os.Readlink(filepath.Join(dest, rel))
			if a != b {
				t.Errorf("%s: link %q, want %q", rel, b, a)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(filepath.Join(dest, "hardlink-to-2"))
	files := testimg.Tree(t, t.TempDir(), testimg.TreeOptions{Files: 60, Seed: 9})
	b, _ := os.Stat(filepath.Join(dest, files[2]))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Errorf("hard link not kept")
	}
}

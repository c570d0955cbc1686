package doctor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func smartFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "smart", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSmartctl(t *testing.T) {
	d, err := parseSmartctl("/dev/nvme0", smartFile(t, "smartctl-nvme-ok.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Model != "Samsung SSD 980 PRO 1TB" || d.Firmware != "5B2QGXA7" || !*d.Passed || *d.CriticalWarning != 0 || *d.PercentUsed != 3 ||
		*d.MediaErrors != 0 || *d.UnsafeShutdowns != 61 || *d.TempC != 45 || *d.PowerOnHours != 9123 || *d.SpareThreshold != 10 {
		t.Errorf("%+v", d)
	}
	assertFindings(t, healthFindings([]DiskHealth{d}), want{Info, "smart.summary", "nvme0"})

	d, err = parseSmartctl("/dev/nvme1", smartFile(t, "smartctl-nvme-failing.json"))
	if err != nil {
		t.Fatal(err)
	}
	fs := healthFindings([]DiskHealth{d})
	assertFindings(t, fs,
		want{Critical, "smart.failed", "nvme1"},
		want{Critical, "smart.critical-warning", "nvme1"},
		want{Warning, "smart.media-errors", "nvme1"},
		want{Warning, "smart.wear", "nvme1"},
		want{Info, "smart.summary", "nvme1"},
	)
	if cw := find(t, fs, "smart.critical-warning", "nvme1"); !strings.Contains(cw.Title, "0x04: reliability degraded by media errors") {
		t.Errorf("%q", cw.Title)
	}

	d, err = parseSmartctl("/dev/sdc", smartFile(t, "smartctl-sata-pending.json"))
	if err != nil {
		t.Fatal(err)
	}
	if *d.Pending != 8 || *d.Reallocated != 0 || *d.OfflineUncorrectable != 0 || *d.TempC != 36 {
		t.Errorf("%+v", d)
	}
	fs = healthFindings([]DiskHealth{d})
	assertFindings(t, fs, want{Warning, "smart.sectors", "sdc"}, want{Info, "smart.summary", "sdc"})
	if !strings.Contains(fs[0].Title, "8 sectors pending reallocation") {
		t.Errorf("%q", fs[0].Title)
	}

	_, err = parseSmartctl("/dev/nvme0", smartFile(t, "smartctl-permission.json"))
	if err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("permission: %v", err)
	}
	if _, err := parseSmartctl("/dev/x", []byte("smartctl: not json")); err == nil {
		t.Error("not JSON accepted")
	}
}

func TestParseNvmeSmartLog(t *testing.T) {
	d, err := parseNvmeSmartLog("/dev/nvme0", smartFile(t, "nvme-cli-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if *d.TempC != 45 || *d.PercentUsed != 2 || *d.UnsafeShutdowns != 38 || !*d.Passed {
		t.Errorf("%+v", d)
	}
	// nvme-cli 2.x with --verbose: the critical warning is an object
	d, err = parseNvmeSmartLog("/dev/nvme0", smartFile(t, "nvme-cli-2-verbose.json"))
	if err != nil {
		t.Fatal(err)
	}
	fs := healthFindings([]DiskHealth{d})
	assertFindings(t, fs,
		want{Critical, "smart.failed", "nvme0"},
		want{Critical, "smart.critical-warning", "nvme0"},
		want{Warning, "smart.media-errors", "nvme0"},
		want{Warning, "smart.wear", "nvme0"},
		want{Info, "smart.summary", "nvme0"},
	)
	if !strings.Contains(find(t, fs, "smart.critical-warning", "nvme0").Title, "available spare below threshold") {
		t.Error(fs)
	}
	if _, err := parseNvmeSmartLog("/dev/nvme0", []byte(`{"temperature": 300}`)); err == nil {
		t.Error("a log without critical_warning accepted")
	}
}

func TestFlexInt(t *testing.T) {
	for in, w := range map[string]int64{`12`: 12, `"12"`: 12, `1.2e+07`: 12000000, `{"value": 3}`: 3, `{"Value": 4}`: 4} {
		var f flexInt
		if err := f.UnmarshalJSON([]byte(in)); err != nil || f.v == nil || *f.v != w {
			t.Errorf("%s: %v %v", in, f.v, err)
		}
	}
	for _, in := range []string{`null`, `"x"`, `{}`, `1e300`} {
		var f flexInt
		if err := f.UnmarshalJSON([]byte(in)); err != nil || f.v != nil {
			t.Errorf("%s: %v %v", in, f.v, err)
		}
	}
}

// readHealth asks smartctl first, falls back to nvme-cli for NVMe drives,
// and parses smartctl's JSON even when its exit status is non-zero.
func TestReadHealthCommands(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"sys/class/nvme/nvme0/model": "Samsung SSD 980 PRO 1TB\n", "sys/class/nvme/nvme0/state": "live\n",
		"sys/block/sdc/removable": "0\n", "sys/block/sr0/removable": "1\n", "sys/block/sdz/removable": "1\n",
	})
	var asked []string
	smartctl := runFunc(func(name string, args []string) ([]byte, error) {
		asked = append(asked, name+" "+strings.Join(args, " "))
		switch {
		case name == "smartctl" && args[len(args)-1] == "/dev/nvme0":
			return smartFile(t, "smartctl-nvme-failing.json"), errors.New("exit status 88")
		case name == "smartctl" && args[len(args)-1] == "/dev/sdc":
			return smartFile(t, "smartctl-sata-pending.json"), errors.New("exit status 64")
		}
		return nil, ErrNotInstalled
	})
	r := run(t, root, at("2025-12-16 09:00"), smartctl, Options{})
	if len(r.Disks) != 2 || r.Disks[0].Device != "/dev/nvme0" || r.Disks[1].Device != "/dev/sdc" {
		t.Fatalf("disks %+v (asked %q)", r.Disks, asked)
	}
	find(t, r.Findings, "smart.critical-warning", "nvme0")
	find(t, r.Findings, "smart.sectors", "sdc")

	nvmecli := runFunc(func(name string, args []string) ([]byte, error) {
		if name == "nvme" {
			return smartFile(t, "nvme-cli-1.json"), nil
		}
		return nil, ErrNotInstalled
	})
	r = run(t, root, at("2025-12-16 09:00"), nvmecli, Options{})
	if len(r.Disks) != 1 || r.Disks[0].Source != "nvme smart-log -o json" {
		t.Fatalf("disks %+v", r.Disks)
	}
	if c := r.Checks[len(r.Checks)-2]; c.Name != "SMART" || !strings.Contains(c.Note, "smartctl is not installed") {
		t.Errorf("check %+v", c)
	}
}

func FuzzParseSmart(f *testing.F) {
	for _, n := range []string{"smartctl-nvme-ok.json", "smartctl-sata-pending.json", "nvme-cli-2-verbose.json"} {
		f.Add(smartFile(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseSmartctl("/dev/x", b); err == nil {
			healthFindings([]DiskHealth{d})
		}
		if d, err := parseNvmeSmartLog("/dev/x", b); err == nil {
			healthFindings([]DiskHealth{d})
		}
	})
}

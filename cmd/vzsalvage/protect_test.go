package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/protect/alert"
)

// smallArchive builds a small VM archive with the real tools (sgdisk,
// mke2fs -d from a seeded tree, zstd) in dir.
func smallArchive(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	testimg.Tree(t, src, testimg.TreeOptions{Files: 120, Seed: 5})
	disk := filepath.Join(dir, "root.raw")
	testimg.GPTExt4(t, disk, 40<<20, src)
	arc := testimg.BuildArchive(t, dir, []testimg.Disk{{Name: "drive-scsi0", Path: disk}}, ".zst", 3)
	os.RemoveAll(src)
	os.Remove(disk)
	return arc
}

// webhook records the alerts POSTed to it.
type webhook struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []alert.Message
}

func newWebhook(t *testing.T) *webhook {
	wh := &webhook{}
	wh.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m alert.Message
		json.NewDecoder(r.Body).Decode(&m)
		wh.mu.Lock()
		wh.msgs = append(wh.msgs, m)
		wh.mu.Unlock()
	}))
	t.Cleanup(wh.Close)
	return wh
}

func TestProtectAndRepairCommands(t *testing.T) {
	dir := t.TempDir()
	arc := smallArchive(t, dir)
	code, out, errs := vz("protect", "-q", arc)
	if code != 0 || !strings.Contains(out, "intact; sidecar "+arc+".vzsalvage") {
		t.Fatalf("protect: exit %d\n%s%s", code, out, errs)
	}
	orig, _ := os.ReadFile(arc)
	b := append([]byte(nil), orig...)
	for i := len(b) / 2; i < len(b)/2+65536; i++ { // 64 KiB
		b[i] = byte(i * 13)
	}
	os.WriteFile(arc, b, 0o644)
	code, out, _ = vz("repair", "-q", arc)
	if code != 1 || !strings.Contains(out, "repairable") {
		t.Fatalf("repair (check): exit %d\n%s", code, out)
	}
	fixed := filepath.Join(dir, "fixed.vma.zst")
	code, out, _ = vz("repair", "-q", arc, "-o", fixed)
	got, _ := os.ReadFile(fixed)
	if code != 0 || string(got) != string(orig) {
		t.Fatalf("repair -o: exit %d, identical %v\n%s", code, string(got) == string(orig), out)
	}
	// a damaged archive gets no sidecar
	other := filepath.Join(dir, "vzdump-qemu-101-2025_12_15-03_00_03.vma.zst")
	os.WriteFile(other, b, 0o644)
	code, out, _ = vz("protect", "-q", other)
	if _, err := os.Stat(other + ".vzsalvage"); code != 1 || err == nil || !strings.Contains(out, "no sidecar written") {
		t.Fatalf("protect of a damaged archive: exit %d, sidecar %v\n%s", code, err == nil, out)
	}
}

// TestVzdumpHook runs the hook as vzdump does: phase, mode and VMID as
// arguments, TARGET, DUMPDIR, VMTYPE, HOSTNAME, LOGFILE in the environment.
func TestVzdumpHook(t *testing.T) {
	dir := t.TempDir()
	arc := smallArchive(t, dir)
	wh := newWebhook(t)
	conf := filepath.Join(dir, "alerts.conf")
	os.WriteFile(conf, []byte("webhook_url = "+wh.URL+"\non_success = true\n"), 0o600)
	t.Setenv("DUMPDIR", dir)
	t.Setenv("STOREID", "local")
	t.Setenv("VMTYPE", "qemu")
	t.Setenv("HOSTNAME", "web1")
	t.Setenv("TARGET", arc)
	for _, phase := range []string{"job-init", "job-start", "backup-start", "pre-stop", "post-restart"} {
		if code, out, errs := vz("vzdump-hook", "--alert-config", conf, phase, "snapshot", "100"); code != 0 || out != "" {
			t.Fatalf("%s: exit %d %q %q", phase, code, out, errs)
		}
	}
	code, out, errs := vz("vzdump-hook", "--alert-config", conf, "backup-end", "snapshot", "100")
	if code != 0 || !strings.Contains(out, "verified intact; sidecar") {
		t.Fatalf("backup-end: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(arc + ".vzsalvage"); err != nil {
		t.Fatal(err)
	}
	// a damaged new backup: alert, exit 0 (someone was told)
	b, _ := os.ReadFile(arc)
	b[len(b)/2] ^= 0xff
	bad := filepath.Join(dir, "vzdump-qemu-100-2025_12_16-03_00_03.vma.zst")
	os.WriteFile(bad, b, 0o644)
	t.Setenv("TARGET", bad)
	code, out, _ = vz("vzdump-hook", "--alert-config", conf, "backup-end", "snapshot", "100")
	if code != 0 || !strings.Contains(out, "ERROR: the new backup of qemu 100 (web1) is damaged") || !strings.Contains(out, "alert sent (damaged)") {
		t.Fatalf("damaged backup-end: exit %d\n%s", code, out)
	}
	wh.mu.Lock()
	if len(wh.msgs) != 2 || wh.msgs[0].Status != "ok" || wh.msgs[1].Status != "damaged" || wh.msgs[1].Archive != bad ||
		wh.msgs[1].VMID != 100 || !strings.Contains(wh.msgs[1].Next, "vzsalvage rescue "+bad) {
		t.Fatalf("webhook got %+v", wh.msgs)
	}
	wh.mu.Unlock()
	// --fail-backup makes vzdump count it failed; so does having nobody to tell
	if code, _, _ = vz("vzdump-hook", "--alert-config", conf, "--fail-backup", "backup-end", "snapshot", "100"); code != 1 {
		t.Fatalf("--fail-backup: exit %d", code)
	}
	empty := filepath.Join(dir, "empty.conf")
	os.WriteFile(empty, nil, 0o600)
	if code, out, _ = vz("vzdump-hook", "--alert-config", empty, "backup-end", "snapshot", "100"); code != 1 || !strings.Contains(out, "no alert configured") {
		t.Fatalf("no alert: exit %d\n%s", code, out)
	}
	// an alert that cannot be delivered: exit 2, said clearly
	os.WriteFile(empty, []byte("webhook_url = http://127.0.0.1:1/\ntimeout = 2s\n"), 0o600)
	if code, out, _ = vz("vzdump-hook", "--alert-config", empty, "backup-end", "snapshot", "100"); code != 2 || !strings.Contains(out, "alert not delivered") {
		t.Fatalf("undeliverable: exit %d\n%s", code, out)
	}
	// containers are protected too (the pinned container backup, GNU tar
	// with vzdump's flags and zstd)
	t.Setenv("VMTYPE", "lxc")
	ct := filepath.Join(dir, "vzdump-lxc-200-2025_12_15-03_00_03.tar.zst")
	b, err := os.ReadFile("../../rescue/testdata/vzdump-lxc-101-2025_12_15-03_00_03.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(ct, b, 0o644)
	t.Setenv("TARGET", ct)
	if code, out, _ = vz("vzdump-hook", "--alert-config", conf, "backup-end", "snapshot", "200"); code != 0 || !strings.Contains(out, "verified intact; sidecar") {
		t.Fatalf("lxc: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(ct + ".vzsalvage"); err != nil {
		t.Fatal(err)
	}
	// vzdump's own failures are passed on
	if code, _, _ = vz("vzdump-hook", "--alert-config", conf, "backup-abort", "snapshot", "200"); code != 0 {
		t.Fatalf("backup-abort: exit %d", code)
	}
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if last := wh.msgs[len(wh.msgs)-1]; last.Status != "failed" || last.VMID != 200 {
		t.Fatalf("backup-abort alert %+v", last)
	}
}

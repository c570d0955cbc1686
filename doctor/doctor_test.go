package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// storyHost is testdata/story-host, copied with the modification times
// vzdump and protect would have left: the host of the story on the
// morning after, with its NVMe log in /var/log/kern.log.
func storyHost(t *testing.T) string {
	t.Helper()
	root := copyTree(t, filepath.Join("testdata", "story-host"))
	dump := filepath.Join(root, "mnt/pve/nfs_usb_4t/dump")
	for name, when := range map[string]string{
		"vzdump-qemu-100-2025_12_13-03_00_02.vma.zst":           "2025-12-13 03:09",
		"vzdump-qemu-100-2025_12_14-03_00_02.vma.zst":           "2025-12-14 03:09",
		"vzdump-qemu-100-2025_12_15-03_00_03.vma.zst":           "2025-12-15 03:09",
		"vzdump-qemu-100-2025_12_13-03_00_02.vma.zst.vzsalvage": "2025-12-13 03:40",
		"vzdump-qemu-101-2025_12_15-03_06_41.vma.dat":           "2025-12-15 03:10",
	} {
		touch(t, filepath.Join(dump, name), at(when))
	}
	return root
}

func TestStoryHost(t *testing.T) {
	r := run(t, storyHost(t), at("2025-12-16 09:00"), nil, Options{})
	assertFindings(t, r.Findings,
		want{Critical, "kernel.nvme", "nvme0"},
		want{Critical, "kernel.io-error", "nvme0n1"},
		want{Critical, "kernel.ext4", "dm-1"},
		want{Warning, "kernel.hung-task", ""},
		want{Warning, "storage.soft-mount", "storage nfs_usb_4t"},
		want{Warning, "backup.unfinished", "storage nfs_usb_4t"},
		want{Warning, "backup.old", "CT 105"},
		want{Warning, "guest.no-backup", "VM 101"},
		want{Warning, "guest.no-backup", "CT 106"},
		want{Info, "host.nvme-power", ""},
		want{Info, "nvme.drive", "nvme0"},
		want{Info, "storage.summary", "storage local"},
		want{Info, "storage.summary", "storage nfs_usb_4t"},
		want{Info, "backup.unprotected", ""},
	)
	if r.Status != "critical" || r.Highest() != Critical || r.Hostname != "pve" {
		t.Errorf("status %s, host %q", r.Status, r.Hostname)
	}
	for i := 1; i < len(r.Findings); i++ {
		if r.Findings[i].Severity > r.Findings[i-1].Severity {
			t.Fatalf("findings not ranked: %v before %v", r.Findings[i-1].Severity, r.Findings[i].Severity)
		}
	}
	nv := find(t, r.Findings, "kernel.nvme", "nvme0")
	txt := fixesText(nv)
	for _, w := range []string{"drive: Samsung SSD 980 PRO 1TB, firmware 5B2QGXA7", "nvme_core.default_ps_max_latency_us=100000 (NVMe APST on)",
		"pcie_aspm not set (policy default)", "update-grub", "swapping the SSD"} {
		if !strings.Contains(txt, w) {
			t.Errorf("nvme finding lacks %q:\n%s", w, txt)
		}
	}
	if k := r.Kernel; k.Cmdline != "BOOT_IMAGE=/boot/vmlinuz-6.8.12-4-pve root=/dev/mapper/pve-root ro quiet" || k.PSMaxLatencyUs != "100000" || k.Workaround() || k.Uptime != 7384.21 {
		t.Errorf("kernel %+v", k)
	}
	if c := r.NVMe; len(c) != 1 || c[0].Model != "Samsung SSD 980 PRO 1TB" || *c[0].TempC != 48.85 || c[0].State != "live" {
		t.Errorf("nvme %+v", c)
	}
	soft := find(t, r.Findings, "storage.soft-mount", "storage nfs_usb_4t")
	if !strings.Contains(soft.Detail[0], "timeo=150") || !strings.Contains(fixesText(soft), "umount /mnt/pve/nfs_usb_4t") {
		t.Errorf("%+v", soft)
	}
	old := find(t, r.Findings, "backup.old", "CT 105")
	if !strings.Contains(old.Title, "16 d 6 h old (2025-11-30 02:00)") {
		t.Errorf("%q", old.Title)
	}
	sum := find(t, r.Findings, "storage.summary", "storage nfs_usb_4t")
	if !strings.Contains(sum.Title, "192.168.1.20:/mnt/usb4t at /mnt/pve/nfs_usb_4t/dump): 3 backup(s) of 1 guest(s), 1.0 TiB free of 4.0 TiB") ||
		!strings.Contains(sum.Detail[0], "VM 100: newest 2025-12-15 03:00:03 (29 h 59 min ago), 0 B, 3 kept; not protected by vzsalvage (no sidecar)") ||
		!strings.Contains(strings.Join(sum.Detail, "\n"), "backup-5d1e0c3a-7b21 (03:00)") ||
		!strings.Contains(strings.Join(sum.Detail, "\n"), "export with async") {
		t.Errorf("%s\n%s", sum.Title, strings.Join(sum.Detail, "\n"))
	}
	if un := find(t, r.Findings, "backup.unfinished", "storage nfs_usb_4t"); !strings.Contains(un.Title, "vzdump-qemu-101-2025_12_15-03_06_41.vma.dat") {
		t.Errorf("%q", un.Title)
	}
	if !strings.Contains(find(t, r.Findings, "storage.summary", "storage local").Detail[1], "system disk") {
		t.Error("local storage on the system disk not said")
	}
	if len(r.Storages) != 2 || r.Storages[1].Mounted == nil || !*r.Storages[1].Mounted || r.Storages[1].Mount.FSType != "nfs4" {
		t.Errorf("storages %+v", r.Storages)
	}

	// The same morning, three hours after the night's backup: VM 100 is
	// not old, and its sidecar is read.
	root := storyHost(t)
	touch(t, filepath.Join(root, "mnt/pve/nfs_usb_4t/dump/vzdump-qemu-100-2025_12_13-03_00_02.vma.zst.vzsalvage"), at("2025-12-13 03:40"))
	writeTree(t, root, map[string]string{"mnt/pve/nfs_usb_4t/dump/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst.vzsalvage": ""})
	touch(t, filepath.Join(root, "mnt/pve/nfs_usb_4t/dump/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst.vzsalvage"), at("2025-12-15 03:41"))
	r = run(t, root, at("2025-12-15 06:00"), nil, Options{})
	sum = find(t, r.Findings, "storage.summary", "storage nfs_usb_4t")
	if !strings.Contains(sum.Detail[0], "protected (sidecar present, dated 2025-12-15 03:41)") {
		t.Errorf("%q", sum.Detail[0])
	}
	if u := find(t, r.Findings, "backup.unprotected", ""); u.Title != "1 of 2 newest backups are not protected by vzsalvage (no sidecar)" {
		t.Errorf("%q", u.Title)
	}
}

// A sidecar can be looked up in --sidecar-dir, and a verdict that the lead
// wires in later makes a damaged newest backup critical.
func TestProtectionHook(t *testing.T) {
	root := storyHost(t)
	writeTree(t, root, map[string]string{"srv/sidecars/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst.vzsalvage": ""})
	r := run(t, root, at("2025-12-16 09:00"), nil, Options{SidecarDir: "/srv/sidecars"})
	if d := find(t, r.Findings, "storage.summary", "storage nfs_usb_4t").Detail[0]; !strings.Contains(d, "protected (sidecar present") {
		t.Errorf("%q", d)
	}
	for _, c := range []struct {
		verdict, kind string
		sev           Severity
		says          string
	}{
		{VerdictDamaged, "backup.damaged", Critical, "DAMAGED at its last check (2025-12-16 02:00): 3 chunks beyond the parity"},
		{VerdictRepairable, "backup.repairable", Warning, "damaged at its last check (2025-12-16 02:00), repairable from its sidecar"},
		{VerdictChanged, "backup.changed", Warning, "changed since it was protected (2025-12-15 03:41)"},
		{VerdictUnreadable, "backup.sidecar-unreadable", Warning, "sidecar unreadable"},
	} {
		prot := func(path string) Protection {
			p := Protection{Sidecar: path + ".vzsalvage", Present: c.verdict != VerdictUnreadable, Date: at("2025-12-15 03:41"), Verdict: c.verdict}
			if c.verdict == VerdictDamaged || c.verdict == VerdictRepairable {
				p.Checked, p.Detail = at("2025-12-16 02:00"), "3 chunks beyond the parity"
			}
			return p
		}
		r = run(t, root, at("2025-12-16 09:00"), nil, Options{Protection: prot})
		f := find(t, r.Findings, c.kind, "VM 100")
		if f.Severity != c.sev || !strings.Contains(f.Evidence[0], c.says) {
			t.Errorf("%s: %+v", c.verdict, f)
		}
	}
	intact := func(path string) Protection {
		return Protection{Present: true, Date: at("2025-12-15 03:41"), Checked: at("2025-12-16 02:00"), Verdict: VerdictIntact}
	}
	r = run(t, root, at("2025-12-16 09:00"), nil, Options{Protection: intact})
	if d := find(t, r.Findings, "storage.summary", "storage nfs_usb_4t").Detail[0]; !strings.Contains(d, "protected, intact at its last check (2025-12-16 02:00)") {
		t.Errorf("%q", d)
	}
}

// A healthy host: the workaround on, the NFS storage mounted hard, every
// guest backed up last night and protected, a clean kernel log. Nothing
// above info.
func TestCleanHost(t *testing.T) {
	root := t.TempDir()
	now := at("2025-12-16 09:00")
	files := map[string]string{
		"etc/hostname":                 "pve2\n",
		"etc/pve/storage.cfg":          "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl\n\nnfs: nas\n\texport /volume1/pve\n\tpath /mnt/pve/nas\n\tserver 10.0.0.5\n\tcontent backup\n\toptions vers=4.2\n",
		"etc/pve/qemu-server/100.conf": "name: web\n",
		"etc/pve/lxc/200.conf":         "hostname: dns\n",
		"proc/cmdline":                 "BOOT_IMAGE=/boot/vmlinuz-6.8.12-4-pve root=/dev/mapper/pve-root ro quiet nvme_core.default_ps_max_latency_us=0 pcie_aspm=off\n",
		"proc/self/mountinfo":          "28 1 252:1 / / rw,relatime shared:1 - ext4 /dev/mapper/pve-root rw,errors=remount-ro\n112 28 0:52 / /mnt/pve/nas rw,relatime shared:61 - nfs4 10.0.0.5:/volume1/pve rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.2,local_lock=none,addr=10.0.0.5\n",
		"sys/module/nvme_core/parameters/default_ps_max_latency_us":              "0\n",
		"sys/class/nvme/nvme0/model":                                             "KINGSTON SNV2S1000G\n",
		"sys/class/nvme/nvme0/firmware_rev":                                      "SBM02103\n",
		"sys/class/nvme/nvme0/state":                                             "live\n",
		"var/log/kern.log":                                                       "2025-12-16T00:00:01+01:00 pve2 kernel: nvme nvme0: 8/0/0 default/read/poll queues\n",
		"mnt/pve/nas/dump/vzdump-qemu-100-2025_12_15-23_00_01.vma.zst":           "x",
		"mnt/pve/nas/dump/vzdump-lxc-200-2025_12_15-23_04_12.tar.zst":            "y",
		"mnt/pve/nas/dump/vzdump-qemu-100-2025_12_15-23_00_01.vma.zst.vzsalvage": "",
		"mnt/pve/nas/dump/vzdump-lxc-200-2025_12_15-23_04_12.tar.zst.vzsalvage":  "",
	}
	writeTree(t, root, files)
	r := run(t, root, now, nil, Options{})
	assertFindings(t, r.Findings,
		want{Info, "host.nvme-power", ""},
		want{Info, "nvme.drive", "nvme0"},
		want{Info, "storage.summary", "storage nas"},
	)
	if r.Status != "ok" || !r.Kernel.Workaround() {
		t.Errorf("status %s, kernel %+v", r.Status, r.Kernel)
	}
	if d := find(t, r.Findings, "host.nvme-power", "").Detail[1]; !strings.Contains(d, "workaround") || !strings.Contains(d, "is active") {
		t.Errorf("%q", d)
	}
	var buf bytes.Buffer
	r.WriteText(&buf)
	if !strings.Contains(buf.String(), "0 critical, 0 warning(s), 3 info") {
		t.Error(buf.String())
	}
	b, err := json.Marshal(r)
	var back Report
	if err != nil || json.Unmarshal(b, &back) != nil || back.Status != "ok" || back.Findings[0].Severity != Info || back.Storages[0].Guests[1].Guest != "lxc" {
		t.Errorf("JSON round trip: %v %s", err, b)
	}
}

// Storages that are not there, full, read-only, on USB, over UDP; a
// Backup Server; a job that names a storage nobody defined; vzdump.conf's
// dumpdir; a storage for another node.
func TestStorageProblems(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"etc/hostname": "pve1\n",
		"etc/pve/storage.cfg": `dir: local
	path /var/lib/vz
	content iso,vztmpl,backup

nfs: gone
	export /export/pve
	path /mnt/pve/gone
	server 10.0.0.9
	content backup

dir: usbdisk
	path /mnt/usb
	content backup
	is_mountpoint yes

dir: bare
	path /mnt/backup
	content backup

cifs: smb
	path /mnt/pve/smb
	server 10.0.0.7
	share backups
	content backup

nfs: udp
	export /x
	path /mnt/pve/udp
	server 10.0.0.8
	content backup

dir: usb2
	path /srv/usb2
	content backup,images

dir: old
	path /mnt/old
	content backup
	disable

nfs: other
	export /y
	path /mnt/pve/other
	server 10.0.0.10
	content backup
	nodes pve2,pve3

pbs: pbs1
	datastore store1
	server 10.0.0.20
	content backup
	fingerprint aa:bb
	username root@pam
`,
		"etc/pve/jobs.cfg": "vzdump: backup-1\n\tschedule sun 01:00\n\tstorage offsite\n\tall 1\n",
		"etc/vzdump.conf":  "dumpdir: /srv/dumps\n",
		"proc/self/mountinfo": `28 1 252:1 / / rw,relatime shared:1 - ext4 /dev/mapper/pve-root rw
90 28 0:60 / /mnt/pve/smb ro,relatime shared:70 - cifs //10.0.0.7/backups ro,vers=3.1.1,cache=strict,soft,nounix,serverino,mapposix
91 28 0:61 / /mnt/pve/udp rw,relatime shared:71 - nfs 10.0.0.8:/x rw,vers=3,rsize=32768,wsize=32768,namlen=255,hard,proto=udp,timeo=11,retrans=3,sec=sys
92 28 8:17 / /srv/usb2 rw,relatime shared:72 - ext4 /dev/sdb1 rw
`,
		"sys/class/block/sdb1":                                      "->../../devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1",
		"etc/pve/qemu-server/100.conf":                              "name: a\n",
		"srv/usb2/dump/vzdump-qemu-100-2025_12_16-01_00_00.vma.zst": strings.Repeat("z", 5000),
		"srv/usb2/dump/vzdump-lxc-200-2025_12_16-01_10_00.tar.zst":  strings.Repeat("z", 2000),
		"srv/dumps/vzdump-qemu-100-2025_12_15-01_00_00.vma":         strings.Repeat("v", 3000),
		"srv/dumps/vzdump-qemu-100-2025_12_15-01_00_00.log":         "INFO: Finished Backup of VM 100\n",
	})
	h := &Host{Root: root, Now: func() time.Time { return at("2025-12-16 09:00") }, Location: time.UTC,
		Statfs: func(p string) (Space, error) {
			if strings.HasSuffix(p, "/srv/usb2/dump") {
				return Space{Total: 1 << 30, Free: 4000}, nil // the last backup (5000 B) does not fit
			}
			return Space{Total: 1 << 30, Free: 1000}, nil // not even 3000 B fits
		}}
	r, err := Run(context.Background(), h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	assertFindings(t, r.Findings,
		want{Info, "storage.summary", "storage local"},
		want{Critical, "storage.not-mounted", "storage gone"},
		want{Info, "storage.summary", "storage gone"},
		want{Critical, "storage.not-mounted", "storage usbdisk"},
		want{Info, "storage.summary", "storage usbdisk"},
		want{Warning, "storage.on-root", "storage bare"},
		want{Info, "storage.summary", "storage bare"},
		want{Critical, "storage.read-only", "storage smb"},
		want{Info, "storage.summary", "storage smb"},
		want{Warning, "storage.nfs-udp", "storage udp"},
		want{Info, "storage.summary", "storage udp"},
		want{Warning, "storage.space", "storage usb2"},
		want{Info, "storage.summary", "storage usb2"},
		want{Info, "storage.disabled", "storage old"},
		want{Critical, "storage.space", "dumpdir /srv/dumps"},
		want{Info, "storage.summary", "dumpdir /srv/dumps"},
		want{Info, "storage.pbs", "storage pbs1"},
		want{Warning, "storage.job-target-missing", "job backup-1"},
		want{Info, "backup.unprotected", ""},
	)
	if d := strings.Join(find(t, r.Findings, "storage.summary", "storage usb2").Detail, "\n"); !strings.Contains(d, "On a USB disk (sdb1)") {
		t.Errorf("usb2: %s", d)
	}
	if sp := find(t, r.Findings, "storage.space", "storage usb2"); !strings.Contains(sp.Title, "the next backup of VM 100 (4.9 KiB last time) may not fit") {
		t.Errorf("%q", sp.Title)
	}
	for _, s := range r.Storages {
		if s.ID == "other" {
			t.Error("a storage of other nodes was checked")
		}
	}
}

// The running host: the journal of this boot and the previous one, dmesg
// when there is no journal, and a clear note when neither can be read.
func TestKernelLogFromCommands(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"proc/cmdline": "quiet nvme_core.default_ps_max_latency_us=0 pcie_aspm=off\n",
		"proc/uptime":  "3600.5 100.0\n",
	})
	journal := map[string]string{
		"0":  "2025-12-16T08:00:01+0100 pve kernel: nvme nvme0: I/O 12 QID 3 timeout, aborting\n",
		"-1": "2025-12-15T03:12:45+0100 pve kernel: nvme nvme0: I/O timeout, aborting\n2025-12-15T03:12:50+0100 pve kernel: usb 2-1: reset high-speed USB device number 2 using xhci_hcd\n",
	}
	var calls []string
	runner := runFunc(func(name string, args []string) ([]byte, error) {
		calls = append(calls, name+" "+strings.Join(args, " "))
		if name == "journalctl" {
			return []byte(journal[args[len(args)-1]]), nil
		}
		return nil, ErrNotInstalled
	})
	r := run(t, root, at("2025-12-16 09:00"), runner, Options{})
	assertFindings(t, r.Findings,
		want{Critical, "kernel.nvme", "nvme0"},
		want{Critical, "kernel.nvme", "nvme0"},
		want{Warning, "kernel.usb", "2-1"},
		want{Info, "host.nvme-power", ""},
	)
	if calls[0] != "journalctl -k -q --no-pager -o short-iso -n 300000 -b 0" || calls[1] != "journalctl -k -q --no-pager -o short-iso -n 300000 -b -1" {
		t.Errorf("calls %q", calls)
	}
	var this, prev Finding
	for _, f := range r.Findings {
		if f.Kind == "kernel.nvme" && strings.HasSuffix(f.Title, "(previous boot)") {
			prev = f
		} else if f.Kind == "kernel.nvme" {
			this = f
		}
	}
	if !strings.Contains(fixesText(this), "already active") || !strings.Contains(fixesText(prev), "active now") || !strings.Contains(fixesText(prev), "up 1 h 0 min") {
		t.Errorf("this boot:\n%s\nprevious boot:\n%s", fixesText(this), fixesText(prev))
	}
	if len(r.KernelLogs) != 2 || r.KernelLogs[1].Boot != "previous boot" {
		t.Errorf("%+v", r.KernelLogs)
	}

	dmesgOnly := runFunc(func(name string, args []string) ([]byte, error) {
		switch name {
		case "journalctl":
			return nil, errors.New("journalctl: exit status 1: No journal files were found.")
		case "dmesg":
			return []byte("[    3.911876] blk_update_request: I/O error, dev sda, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n"), nil
		}
		return nil, ErrNotInstalled
	})
	r = run(t, root, at("2025-12-16 09:00"), dmesgOnly, Options{})
	if len(r.KernelLogs) != 1 || r.KernelLogs[0].Source != "dmesg" {
		t.Errorf("%+v", r.KernelLogs)
	}
	find(t, r.Findings, "kernel.io-error", "sda")

	r = run(t, root, at("2025-12-16 09:00"), noCommands, Options{})
	if c := r.Checks[0]; c.Status != "failed" || !strings.Contains(c.Note, "journalctl not installed") || !strings.Contains(c.Note, "--kernel-log") {
		t.Errorf("%+v", c)
	}
}

func TestControllerStates(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"sys/class/nvme/nvme0/state": "dead\n", "sys/class/nvme/nvme0/model": "X\n",
		"sys/class/nvme/nvme1/state": "live\n", "sys/class/nvme/nvme1/device/hwmon/hwmon3/temp1_input": "74850\n",
		"sys/class/nvme/nvme10/state":       "resetting\n",
		"sys/class/nvme/nvme-fabrics/state": "x\n",
	})
	r := run(t, root, at("2025-12-16 09:00"), nil, Options{})
	assertFindings(t, r.Findings,
		want{Critical, "nvme.state", "nvme0"},
		want{Warning, "nvme.temperature", "nvme1"},
		want{Warning, "nvme.state", "nvme10"},
		want{Info, "nvme.drive", "nvme0"},
		want{Info, "nvme.drive", "nvme1"},
		want{Info, "nvme.drive", "nvme10"},
		want{Info, "host.nvme-power", ""},
	)
	if r.NVMe[2].Name != "nvme10" {
		t.Errorf("order %+v", r.NVMe)
	}
}

func TestCouldNotRun(t *testing.T) {
	h := &Host{Root: filepath.Join(t.TempDir(), "missing")}
	if _, err := Run(context.Background(), h, Options{}); !errors.Is(err, ErrNoRoot) {
		t.Errorf("missing root: %v", err)
	}
	h = &Host{Root: t.TempDir()}
	if _, err := Run(context.Background(), h, Options{KernelLogs: []string{"/nonexistent/kern.log"}}); err == nil {
		t.Error("a missing --kernel-log accepted")
	}
}

func TestMountinfo(t *testing.T) {
	ms := parseMountinfo("36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
		"37 35 98:1 / /mnt rw shared:2 - nfs4 srv:/x rw,soft\n38 35 98:2 / /mnt rw - nfs4 srv:/y rw,hard\nbroken line\n")
	if len(ms) != 3 || ms[0].Point != "/mnt/with space" || ms[0].Options != "rw,noatime,errors=continue" || ms[0].FSType != "ext3" {
		t.Fatalf("%+v", ms)
	}
	if m, ok := covering(ms, "/mnt/pve/x"); !ok || m.Source != "srv:/y" {
		t.Errorf("the last mount over /mnt wins: %+v", m)
	}
	if _, ok := covering(ms, "/srv"); ok {
		t.Error("no / mounted, yet /srv is covered")
	}
	if _, soft := ms[1].option("soft"); !soft {
		t.Error("soft")
	}
	pm := parseProcMounts("192.168.1.20:/mnt/usb4t /mnt/pve/nfs_usb_4t nfs4 rw,relatime,vers=4.2,soft 0 0\n")
	if len(pm) != 1 || pm[0].FSType != "nfs4" {
		t.Errorf("%+v", pm)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add("36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n", "/mnt/parent/x")
	f.Add("1 2 3 4 \\0 \\777 - - -", "/")
	f.Fuzz(func(t *testing.T, s, p string) {
		ms := parseMountinfo(s)
		covering(ms, p)
		covering(parseProcMounts(s), p)
	})
}

// A storage whose server hangs blocks stat and statfs; the doctor says so
// after its timeout instead of hanging with it.
func TestHungStorage(t *testing.T) {
	root := storyHost(t)
	release := make(chan struct{})
	defer close(release)
	h := &Host{Root: root, Now: func() time.Time { return at("2025-12-16 09:00") }, Location: time.UTC, ProbeTimeout: 100 * time.Millisecond,
		Statfs: func(p string) (Space, error) {
			if strings.Contains(p, "nfs_usb_4t") {
				<-release
			}
			return Space{Total: 1 << 40, Free: 1 << 39}, nil
		}}
	start := time.Now()
	r, err := Run(context.Background(), h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	f := find(t, r.Findings, "storage.not-responding", "storage nfs_usb_4t")
	if f.Severity != Critical || !strings.Contains(f.Title, "did not answer within 100ms") {
		t.Errorf("%+v", f)
	}
	// VM 100's backups were not seen; the finding says where it did not look
	if f := find(t, r.Findings, "guest.no-backup", "VM 100"); !strings.Contains(f.Title, "not read: nfs_usb_4t") {
		t.Errorf("%q", f.Title)
	}
}

package doctor

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vzsalvage/vzsalvage/archive"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/pve"
)

// StorageStatus is one place vzdump writes backups to, as the doctor
// found it.
type StorageStatus struct {
	// ID is the storage's id in storage.cfg, or "dumpdir" for vzdump.conf's.
	ID       string `json:"id"`
	Type     string `json:"type"`
	DumpDir  string `json:"dump_dir,omitempty"`
	Remote   string `json:"remote,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
	// Mount is the filesystem that holds DumpDir.
	Mount *Mount `json:"mount,omitempty"`
	// Mounted says whether a storage that must be a mount of its own
	// (nfs, cifs, a dir with is_mountpoint) is mounted; nil for others.
	Mounted *bool          `json:"mounted,omitempty"`
	Space   *Space         `json:"space,omitempty"`
	Jobs    []string       `json:"jobs,omitempty"`
	Guests  []GuestBackups `json:"guests,omitempty"`
	// Unfinished lists vzdump's temporary files (.dat) left behind.
	Unfinished []string `json:"unfinished,omitempty"`
	// Error says why the dump directory could not be listed.
	Error string `json:"error,omitempty"`
}

// GuestBackups is what a storage holds of one guest.
type GuestBackups struct {
	Guest  string `json:"guest"` // "qemu" or "lxc"
	VMID   int    `json:"vmid"`
	Count  int    `json:"count"`
	Newest Backup `json:"newest"`
}

// Backup is one vzdump archive.
type Backup struct {
	Path       string     `json:"path"`
	Time       time.Time  `json:"time"`
	Size       int64      `json:"size"`
	AgeHours   float64    `json:"age_hours"`
	Protection Protection `json:"protection"`
}

func (g GuestBackups) label() string { return guestLabel(g.Guest, g.VMID) }

func guestLabel(guest string, id int) string {
	if guest == "lxc" {
		return fmt.Sprintf("CT %d", id)
	}
	return fmt.Sprintf("VM %d", id)
}

// target is a directory vzdump writes to, with the storage it belongs to.
type target struct {
	st      pve.Storage
	dumpDir string
}

// checkStorages reads storage.cfg, vzdump.conf and jobs.cfg, and checks
// every place backups go to.
func checkStorages(h *Host, opt Options, r *Report) []Finding {
	cfg, err := h.read("/etc/pve/storage.cfg")
	if err != nil {
		r.check("backup storages", "skipped", "no /etc/pve/storage.cfg: not a Proxmox VE host, or /etc/pve is not mounted (pve-cluster not running)")
		return nil
	}
	b, _ := h.read("/etc/vzdump.conf")
	conf := pve.ParseVzdumpConf(b)
	b, _ = h.read("/etc/pve/jobs.cfg")
	jobs := pve.ParseJobs(b)
	storages := pve.ParseStorageConfig(cfg)
	mounts, haveMounts := readMounts(h)
	var out []Finding

	node := r.Hostname
	byID := map[string]bool{}
	var targets []target
	var pbs []pve.Storage
	for _, s := range storages {
		byID[s.ID] = true
		if !s.HasContent("backup") || !s.OnNode(node) {
			continue
		}
		switch {
		case s.Type == "pbs":
			pbs = append(pbs, s)
		case s.FileBased():
			targets = append(targets, target{st: s, dumpDir: s.DumpDir()})
		default:
			out = append(out, Finding{Severity: Info, Kind: "storage.unsupported", Subject: "storage " + s.ID,
				Title: fmt.Sprintf("storage %s (%s) holds backups in a way the doctor does not read", s.ID, s.Type)})
		}
	}
	if conf.DumpDir != "" {
		targets = append(targets, target{st: pve.Storage{ID: "dumpdir", Type: "dir"}, dumpDir: path.Clean(conf.DumpDir)})
	}
	jobsTo, jf := jobsByStorage(jobs, conf, byID)
	out = append(out, jf...)
	for _, s := range pbs {
		r.Storages = append(r.Storages, StorageStatus{ID: s.ID, Type: s.Type, Remote: s.Server + " datastore " + s.Datastore, Disabled: s.Disabled})
		out = append(out, Finding{Severity: Info, Kind: "storage.pbs", Subject: "storage " + s.ID,
			Title: fmt.Sprintf("storage %s is a Proxmox Backup Server (%s, datastore %s): not read here", s.ID, s.Server, s.Datastore),
			Fixes: []string{"Schedule verify jobs on the Backup Server itself: they are what tells you its backups can be restored."}})
	}
	if len(targets) == 0 && len(pbs) == 0 {
		out = append(out, Finding{Severity: Warning, Kind: "storage.none", Title: "no storage on this host is set up to hold backups (content backup)"})
	}

	newest := map[string]Backup{} // per guest, across storages
	seen := map[string]bool{}
	var unread []string // storages whose backups could not be listed
	unprotected, total := 0, 0
	for _, t := range targets {
		if seen[t.dumpDir] {
			continue
		}
		seen[t.dumpDir] = true
		st, fs := checkTarget(h, t, jobsTo[t.st.ID], mounts, haveMounts, opt.Protection)
		out = append(out, fs...)
		for _, g := range st.Guests {
			k := g.label()
			if n, ok := newest[k]; !ok || g.Newest.Time.After(n.Time) {
				newest[k] = g.Newest
			}
			total++
			if !g.Newest.Protection.Present {
				unprotected++
			}
			if f, ok := protectionFinding(g, st.ID); ok {
				out = append(out, f)
			}
		}
		if st.Error != "" && st.Error != "no such directory" {
			unread = append(unread, st.ID)
		}
		r.Storages = append(r.Storages, st)
	}
	out = append(out, ageFindings(newest, h, opt)...)
	out = append(out, missingGuests(h, newest, len(pbs) > 0, unread)...)
	if unprotected > 0 {
		f := Finding{Severity: Info, Kind: "backup.unprotected",
			Title: fmt.Sprintf("%d of %d newest backups are not protected by vzsalvage (no sidecar)", unprotected, total),
			Fixes: []string{"A backup that was never read back is a hope, not a backup: in the story, three nightly backups were all damaged and nobody knew until the restore. vzsalvage protect ARCHIVE checks one end to end and writes a sidecar that later locates and repairs damage."}}
		if strings.Contains(conf.Script, "vzsalvage") {
			f.Detail = []string{"vzdump's hook is set up (script: " + conf.Script + " in /etc/vzdump.conf): backups are protected as they are written; these are older, or their protection failed (see the hook's alerts)."}
		} else {
			f.Fixes = append(f.Fixes, "Let vzdump do it for every new backup: add the line script: /usr/lib/vzsalvage/vzdump-hook to /etc/vzdump.conf (vzsalvage vzdump-hook --help shows the two-line set-up).")
		}
		out = append(out, f)
	}
	r.check("backup storages", "ran", fmt.Sprintf("%d file storage(s), %d Backup Server(s)", len(seen), len(pbs)))
	return out
}

// protectionFinding reports a newest backup whose sidecar says it is
// damaged, changed or unreadable.
func protectionFinding(g GuestBackups, storage string) (Finding, bool) {
	k, p := g.label(), g.Newest.Protection
	f := Finding{Subject: k, Evidence: []string{g.Newest.Path + ": " + p.String()}}
	newBackup := "Make a new backup now (vzdump " + strconv.Itoa(g.VMID) + ")"
	switch p.Verdict {
	case VerdictDamaged:
		f.Severity, f.Kind = Critical, "backup.damaged"
		f.Title = fmt.Sprintf("%s: the newest backup on storage %s was found damaged beyond what its sidecar repairs", k, storage)
		f.Fixes = []string{newBackup + ", and find out why it was damaged (the kernel-log findings: disk, memory and USB errors); vzsalvage repair and rescue get back what can be.",
			"vzsalvage repair " + g.Newest.Path + " names every damaged cluster; vzsalvage rescue gets back everything else."}
	case VerdictRepairable:
		f.Severity, f.Kind = Warning, "backup.repairable"
		f.Title = fmt.Sprintf("%s: the newest backup on storage %s is damaged; its sidecar can rebuild it", k, storage)
		f.Fixes = []string{"vzsalvage repair --in-place " + g.Newest.Path + ", then find out why it was damaged (the kernel-log findings: disk, memory and USB errors)."}
	case VerdictChanged:
		f.Severity, f.Kind = Warning, "backup.changed"
		f.Title = fmt.Sprintf("%s: the newest backup on storage %s changed since it was protected", k, storage)
		f.Fixes = []string{"Check it against its sidecar: vzsalvage scrub " + path.Dir(g.Newest.Path) + " (an archive should never change once written)."}
	case VerdictUnreadable:
		f.Severity, f.Kind = Warning, "backup.sidecar-unreadable"
		f.Title = fmt.Sprintf("%s: the sidecar of the newest backup on storage %s cannot be read", k, storage)
		f.Fixes = []string{"The sidecar itself is damaged: check the archive with vzsalvage verify " + g.Newest.Path + " and protect it again."}
	default:
		return Finding{}, false
	}
	return f, true
}

// jobsByStorage describes the backup jobs by the storage they write to,
// and warns of jobs whose storage is not defined.
func jobsByStorage(jobs []pve.BackupJob, conf pve.VzdumpConf, defined map[string]bool) (map[string][]string, []Finding) {
	to := map[string][]string{}
	var out []Finding
	for _, j := range jobs {
		sid := j.Storage
		if sid == "" {
			sid = conf.Storage
		}
		if sid == "" {
			sid = "local"
		}
		if !defined[sid] {
			out = append(out, Finding{Severity: Warning, Kind: "storage.job-target-missing", Subject: "job " + j.ID,
				Title: fmt.Sprintf("backup job %s writes to storage %s, which storage.cfg does not define: the job fails", j.ID, sid)})
			continue
		}
		desc := j.ID
		if j.Schedule != "" {
			desc += " (" + j.Schedule + ")"
		}
		if !j.Enabled {
			desc += " (disabled)"
		}
		to[sid] = append(to[sid], desc)
	}
	return to, out
}

// expectedMount says where a storage's own mount must be and of which
// filesystem types; "" when it needs none.
func expectedMount(s pve.Storage) (string, []string) {
	switch s.Type {
	case "nfs":
		return s.Path, []string{"nfs", "nfs4"}
	case "cifs":
		return s.Path, []string{"cifs", "smb3"}
	case "cephfs":
		return s.Path, []string{"ceph", "fuse.ceph-fuse"}
	case "glusterfs":
		return s.Path, []string{"fuse.glusterfs"}
	case "dir":
		switch v := s.IsMountpoint; {
		case v == "yes" || v == "1" || v == "on" || v == "true":
			return s.Path, nil
		case strings.HasPrefix(v, "/"):
			return path.Clean(v), nil
		}
	}
	return "", nil
}

// checkTarget checks one dump directory: its mount, its options, its free
// space and its backups.
func checkTarget(h *Host, t target, jobs []string, mounts []Mount, haveMounts bool, prot ProtectionFunc) (StorageStatus, []Finding) {
	s := t.st
	st := StorageStatus{ID: s.ID, Type: s.Type, DumpDir: t.dumpDir, Disabled: s.Disabled, Jobs: jobs}
	subject := "storage " + s.ID
	if s.ID == "dumpdir" {
		subject = "dumpdir " + t.dumpDir
	}
	switch s.Type {
	case "nfs":
		st.Remote = s.Server + ":" + s.Export
	case "cifs":
		st.Remote = "//" + s.Server + "/" + s.Share
	}
	var out []Finding
	add := func(sev Severity, kind, title string, evidence []string, fixes ...string) {
		out = append(out, Finding{Severity: sev, Kind: kind, Subject: subject, Title: subject + ": " + title, Evidence: evidence, Fixes: fixes})
	}
	if s.Disabled {
		add(Info, "storage.disabled", "disabled in storage.cfg: not checked", nil)
		return st, out
	}
	var detail []string
	if haveMounts {
		if m, ok := covering(mounts, t.dumpDir); ok {
			st.Mount = &m
		}
	}
	mountLine := func() []string {
		if st.Mount == nil {
			return nil
		}
		return []string{fmt.Sprintf("%s on %s type %s (%s)", st.Mount.Source, st.Mount.Point, st.Mount.FSType, st.Mount.Options)}
	}
	if point, types := expectedMount(s); point != "" && haveMounts {
		ok := st.Mount != nil && st.Mount.Point == point && (types == nil || contains(types, st.Mount.FSType))
		st.Mounted = &ok
		if !ok {
			what := fmt.Sprintf("not mounted at %s: backups to it fail, and what is there cannot be restored", point)
			fix := "Proxmox mounts it by itself when it can: check that the server answers (ping, showmount -e SERVER) and the network, then pvesm status."
			if s.Type == "dir" {
				what = fmt.Sprintf("not mounted at %s (is_mountpoint): vzdump refuses to back up to it", point)
				fix = "Mount the disk (check that it is connected and that /etc/fstab or its systemd mount unit names it correctly), then pvesm status."
			}
			add(Critical, "storage.not-mounted", what, mountLine(), fix)
		}
	} else if s.Type == "dir" && st.Mount != nil && st.Mount.Point == "/" && (strings.HasPrefix(t.dumpDir, "/mnt/") || strings.HasPrefix(t.dumpDir, "/media/")) {
		add(Warning, "storage.on-root", "its directory is on the system disk; if a disk was meant to be mounted there, it is not, and backups fill the system disk instead", mountLine(),
			"If a disk belongs there, mount it and tell Proxmox so it never writes to the bare directory: pvesm set "+s.ID+" --is_mountpoint yes.")
	}
	if m := st.Mount; m != nil && (st.Mounted == nil || *st.Mounted) {
		if _, ro := m.option("ro"); ro {
			add(Critical, "storage.read-only", "mounted read-only: no backup can be written", mountLine(),
				"A filesystem that turned read-only by itself found errors: see the kernel-log findings before remounting it.")
		}
		out = append(out, mountRisks(s, *m, subject, mountLine())...)
		if m.Point == "/" {
			detail = append(detail, "On the host's system disk: these backups do not survive the loss of that disk.")
		}
		if usb := usbDisk(h, m.Source); usb != "" {
			detail = append(detail, "On a USB disk ("+usb+"): USB disks reset and disconnect under load; check the kernel-log findings for it.")
		}
		if s.Type == "nfs" {
			detail = append(detail, "The export's own options are not visible from here: an export with async (in /etc/exports on the server) acknowledges writes before they reach the server's disk, so a server crash, or a reset of a USB disk attached to it, loses the newest backup silently. Export with sync, and read the server's kernel log too.")
		}
	}

	d, answered := probeDir(h, t.dumpDir, prot)
	switch {
	case !answered:
		st.Error = fmt.Sprintf("no answer within %s", h.ProbeTimeout)
		add(Critical, "storage.not-responding", fmt.Sprintf("its directory did not answer within %s: the server or the disk under it hangs", h.ProbeTimeout), mountLine(),
			"A hung NFS server or a dying disk blocks every program that touches it, vzdump included: check the server or the disk (see the kernel-log findings).")
	case d.missing != "":
		st.Error = d.missing
	default:
		st.Space, st.Guests = d.space, d.guests
		if d.listErr != nil {
			st.Error = d.listErr.Error()
			add(Warning, "storage.unreadable", "its backups could not be listed: "+d.listErr.Error(), nil, "Run the doctor as root.")
		}
		for _, u := range d.unfinished {
			st.Unfinished = append(st.Unfinished, u.Path)
			add(Warning, "backup.unfinished", fmt.Sprintf("a backup that never finished was left behind (%s, %s)", filepath.Base(u.Path), ui.Bytes(u.Size)),
				[]string{fmt.Sprintf("%s: last written %s", u.Path, u.Time.Format("2006-01-02 15:04"))},
				"vzdump deletes its temporary .dat file when a backup fails; one left behind means vzdump itself was stopped (a host that froze or was reset). Make a new backup, then delete the file.")
		}
	}
	out = append(out, spaceFindings(st, subject)...)
	out = append(out, summaryFinding(st, subject, detail))
	return st, out
}

// dirProbe is what was found in a dump directory.
type dirProbe struct {
	missing    string // why there is no directory to read, or ""
	space      *Space
	guests     []GuestBackups
	unfinished []listed
	listErr    error
}

// probeDir measures and lists a dump directory, giving up after
// h.ProbeTimeout: a hung NFS server or a dying disk blocks stat and
// readdir for minutes, and the doctor must report that rather than hang
// with it. answered is false when it gave up (the probe is left blocked).
func probeDir(h *Host, dir string, prot ProtectionFunc) (d dirProbe, answered bool) {
	ch := make(chan dirProbe, 1)
	go func() {
		var d dirProbe
		fi, err := os.Stat(h.path(dir))
		switch {
		case err != nil && os.IsNotExist(err), err == nil && !fi.IsDir():
			d.missing = "no such directory"
		case err != nil:
			d.missing = err.Error()
		default:
			if sp, err := h.Statfs(h.path(dir)); err == nil {
				d.space = &sp
			}
			d.guests, d.unfinished, d.listErr = listBackups(h, dir, prot)
		}
		ch <- d
	}()
	select {
	case d := <-ch:
		return d, true
	case <-time.After(h.ProbeTimeout):
		return dirProbe{}, false
	}
}

// mountRisks reports the mount options of a network storage that risk
// losing writes.
func mountRisks(s pve.Storage, m Mount, subject string, ev []string) []Finding {
	var out []Finding
	if m.FSType != "nfs" && m.FSType != "nfs4" {
		return nil
	}
	opts := "the options line of storage " + s.ID + " in /etc/pve/storage.cfg (pvesm set " + s.ID + " --options ...)"
	_, soft := m.option("soft")
	_, softerr := m.option("softerr")
	if soft || softerr {
		timeo, _ := m.option("timeo")
		retrans, _ := m.option("retrans")
		out = append(out, Finding{Severity: Warning, Kind: "storage.soft-mount", Subject: subject,
			Title:    subject + ": NFS mounted soft: a stalled server makes writes fail after a timeout, and nfs(5) warns this can corrupt data silently",
			Detail:   []string{fmt.Sprintf("timeo=%s (tenths of a second), retrans=%s", orUnknown(timeo), orUnknown(retrans))},
			Evidence: ev,
			Fixes:    []string{"Mount it hard (the NFS default): remove soft from " + opts + ", then umount " + s.Path + " so that Proxmox mounts it again. A hard mount waits for the server instead of failing writes."}})
	}
	if p, _ := m.option("proto"); p == "udp" {
		out = append(out, Finding{Severity: Warning, Kind: "storage.nfs-udp", Subject: subject,
			Title:    subject + ": NFS over UDP: on fast links its fragment reassembly can mix up data (nfs(5))",
			Evidence: ev,
			Fixes:    []string{"Use TCP (proto=tcp, the default of NFS v4) in " + opts + "."}})
	}
	return out
}

// usbDisk returns the disk's name when the block device src (/dev/sdb1)
// sits on a USB bus, as its sysfs path says; "" otherwise.
func usbDisk(h *Host, src string) string {
	if !strings.HasPrefix(src, "/dev/") {
		return ""
	}
	name := strings.TrimPrefix(src, "/dev/")
	if strings.Contains(name, "/") {
		return ""
	}
	l, err := os.Readlink(h.path("/sys/class/block/" + name))
	if err != nil || !strings.Contains(l, "/usb") {
		return ""
	}
	return name
}

// unfinishedAge is the age past which a .dat file is no running backup.
const unfinishedAge = 24 * time.Hour

type listed struct {
	Path string
	Size int64
	Time time.Time
}

// listBackups finds the vzdump archives of a dump directory and keeps the
// newest of each guest, and the .dat files of backups that never finished.
func listBackups(h *Host, dir string, prot ProtectionFunc) ([]GuestBackups, []listed, error) {
	ents, err := h.readDir(dir)
	byGuest := map[string]*GuestBackups{}
	var unfinished []listed
	now := h.Now()
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		n := parseName(e.Name())
		if n.Guest == "" {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		p := path.Join(dir, e.Name())
		if n.InProgress {
			if now.Sub(fi.ModTime()) > unfinishedAge {
				unfinished = append(unfinished, listed{Path: p, Size: fi.Size(), Time: fi.ModTime()})
			}
			continue
		}
		t := fi.ModTime()
		if !n.Time.IsZero() {
			t = time.Date(n.Time.Year(), n.Time.Month(), n.Time.Day(), n.Time.Hour(), n.Time.Minute(), n.Time.Second(), 0, h.Location)
		}
		k := guestLabel(n.Guest, n.VMID)
		g := byGuest[k]
		if g == nil {
			g = &GuestBackups{Guest: n.Guest, VMID: n.VMID}
			byGuest[k] = g
		}
		g.Count++
		if g.Count == 1 || t.After(g.Newest.Time) {
			g.Newest = Backup{Path: p, Time: t, Size: fi.Size()}
		}
	}
	var out []GuestBackups
	for _, g := range byGuest {
		g.Newest.AgeHours = float64(now.Sub(g.Newest.Time)) / float64(time.Hour)
		if prot != nil {
			g.Newest.Protection = prot(h.path(g.Newest.Path))
		}
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].VMID != out[j].VMID {
			return out[i].VMID < out[j].VMID
		}
		return out[i].Guest < out[j].Guest
	})
	return out, unfinished, err
}

// parseName reads a vzdump file name, including the temporary name of a
// compressed archive being written ("....vma.dat" for "....vma.zst":
// vzdump replaces the last extension), which archive.ParseName does not
// take.
func parseName(name string) archive.Name {
	n := archive.ParseName(name)
	if n.Guest == "" && strings.HasSuffix(name, ".dat") {
		n = archive.ParseName(strings.TrimSuffix(name, ".dat"))
		n.Ext, n.InProgress = "", n.Guest != ""
	}
	return n
}

// spaceFindings says when the next backup may not fit.
func spaceFindings(st StorageStatus, subject string) []Finding {
	sp := st.Space
	if sp == nil || sp.Total <= 0 {
		return nil
	}
	var largest, smallest int64 = 0, -1
	var biggest string
	for _, g := range st.Guests {
		if g.Newest.Size > largest {
			largest, biggest = g.Newest.Size, g.label()
		}
		if smallest < 0 || g.Newest.Size < smallest {
			smallest = g.Newest.Size
		}
	}
	free := fmt.Sprintf("%s free of %s", ui.Bytes(sp.Free), ui.Bytes(sp.Total))
	f := Finding{Kind: "storage.space", Subject: subject, Evidence: []string{free},
		Fixes: []string{"Free space, or keep fewer backups (the storage's prune-backups / retention setting); a backup that runs out of space fails, and the night's copy is then missing."}}
	switch {
	case smallest > 0 && sp.Free < smallest:
		f.Severity, f.Title = Critical, subject+": full: not even the smallest guest's backup fits ("+free+")"
	case largest > 0 && sp.Free < largest:
		f.Severity, f.Title = Warning, fmt.Sprintf("%s: the next backup of %s (%s last time) may not fit (%s)", subject, biggest, ui.Bytes(largest), free)
	case sp.Free*10 < sp.Total:
		f.Severity, f.Title = Warning, subject+": less than 10 % free ("+free+")"
	default:
		return nil
	}
	return []Finding{f}
}

// summaryFinding is the storage's line: where it is, its room, and the
// newest backup of each guest with its protection.
func summaryFinding(st StorageStatus, subject string, detail []string) Finding {
	where := st.DumpDir
	if st.Remote != "" {
		where = st.Remote + " at " + st.DumpDir
	}
	n := 0
	for _, g := range st.Guests {
		n += g.Count
	}
	title := fmt.Sprintf("%s (%s, %s): %d backup(s) of %d guest(s)", subject, st.Type, where, n, len(st.Guests))
	if st.Space != nil {
		title += fmt.Sprintf(", %s free of %s", ui.Bytes(st.Space.Free), ui.Bytes(st.Space.Total))
	}
	if st.Error != "" {
		title += " (" + st.Error + ")"
	}
	var lines []string
	for _, g := range st.Guests {
		b := g.Newest
		lines = append(lines, fmt.Sprintf("%s: newest %s (%s ago), %s, %d kept; %s", g.label(), b.Time.Format("2006-01-02 15:04:05"),
			human(time.Duration(b.AgeHours*float64(time.Hour))), ui.Bytes(b.Size), g.Count, b.Protection))
	}
	if len(st.Jobs) > 0 {
		lines = append(lines, "backup jobs writing here: "+strings.Join(st.Jobs, ", "))
	}
	return Finding{Severity: Info, Kind: "storage.summary", Subject: subject, Title: title, Detail: append(lines, detail...)}
}

// ageFindings warns of guests whose newest backup, on any storage, is
// older than opt.MaxAge.
func ageFindings(newest map[string]Backup, h *Host, opt Options) []Finding {
	var keys []string
	for k := range newest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Finding
	for _, k := range keys {
		b := newest[k]
		age := h.Now().Sub(b.Time)
		if age <= opt.MaxAge {
			continue
		}
		out = append(out, Finding{Severity: Warning, Kind: "backup.old", Subject: k,
			Title:    fmt.Sprintf("%s: the newest backup is %s old (%s)", k, human(age), b.Time.Format("2006-01-02 15:04")),
			Evidence: []string{b.Path},
			Fixes:    []string{"Look at the backup job's last runs (Datacenter > Backup, or the task log) for why nothing newer was written: a storage that was not mounted or full, or a job that was disabled or no longer includes the guest."}})
	}
	return out
}

var guestConf = regexp.MustCompile(`^([1-9][0-9]{2,8})\.conf$`)

// missingGuests warns of the guests defined on this node that have no
// backup on any storage the doctor read.
func missingGuests(h *Host, newest map[string]Backup, havePBS bool, unread []string) []Finding {
	var out []Finding
	for _, d := range []struct{ dir, guest string }{{"/etc/pve/qemu-server", "qemu"}, {"/etc/pve/lxc", "lxc"}} {
		ents, _ := h.readDir(d.dir)
		var ids []int
		for _, e := range ents {
			if m := guestConf.FindStringSubmatch(e.Name()); m != nil {
				id, _ := strconv.Atoi(m[1])
				ids = append(ids, id)
			}
		}
		sort.Ints(ids)
		for _, id := range ids {
			k := guestLabel(d.guest, id)
			if _, ok := newest[k]; ok {
				continue
			}
			f := Finding{Severity: Warning, Kind: "guest.no-backup", Subject: k, Title: k + ": no backup found on any backup storage",
				Fixes: []string{"Add it to a backup job (Datacenter > Backup), or make one now: vzdump " + strconv.Itoa(id) + " --storage STORAGE."}}
			switch {
			case len(unread) > 0:
				f.Title = k + ": no backup found on the storages that could be read (not read: " + strings.Join(unread, ", ") + ")"
			case havePBS:
				f.Severity = Info
				f.Title = k + ": no backup on the file storages (a Proxmox Backup Server may hold some)"
			}
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

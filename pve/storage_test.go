package pve

import (
	"reflect"
	"testing"
)

const storageCfg = `dir: local
	path /var/lib/vz
	content iso,vztmpl,backup

lvmthin: local-lvm
	thinpool data
	vgname pve
	content rootdir,images

nfs: nfs_usb_4t
	export /mnt/usb4t
	path /mnt/pve/nfs_usb_4t
	server 192.168.1.20
	content backup
	options vers=4.2,soft
	prune-backups keep-last=3

cifs: smb
	server 10.0.0.7
	share backups
	content backup
	username backup
	nodes pve1, pve2

dir: usb
	path /mnt/usb
	content backup,images
	is_mountpoint yes
	content-dirs backup=vzdump/dumps
	disable

pbs: pbs1
	datastore store1
	server 10.0.0.20
	content backup
	fingerprint 64:d3:ff:3a:50:38:53:5a:9b:f7:50:...
	username root@pam
`

func TestParseStorageConfig(t *testing.T) {
	ss := ParseStorageConfig([]byte(storageCfg))
	if len(ss) != 6 {
		t.Fatalf("%d storages: %+v", len(ss), ss)
	}
	local, lvm, nfs, smb, usb, pbs := ss[0], ss[1], ss[2], ss[3], ss[4], ss[5]
	if local.DumpDir() != "/var/lib/vz/dump" || !local.HasContent("backup") || local.Network() {
		t.Errorf("local %+v", local)
	}
	if lvm.HasContent("backup") || lvm.FileBased() || lvm.DumpDir() != "" {
		t.Errorf("local-lvm %+v", lvm)
	}
	if nfs.Server != "192.168.1.20" || nfs.Export != "/mnt/usb4t" || nfs.MountOptions != "vers=4.2,soft" || nfs.DumpDir() != "/mnt/pve/nfs_usb_4t/dump" || !nfs.Network() {
		t.Errorf("nfs %+v", nfs)
	}
	if smb.Path != "/mnt/pve/smb" || smb.Share != "backups" || !reflect.DeepEqual(smb.Nodes, []string{"pve1", "pve2"}) || !smb.OnNode("pve2") || smb.OnNode("pve3") {
		t.Errorf("cifs %+v", smb)
	}
	if !usb.Disabled || usb.IsMountpoint != "yes" || usb.DumpDir() != "/mnt/usb/vzdump/dumps" {
		t.Errorf("usb %+v", usb)
	}
	if !pbs.HasContent("backup") || pbs.FileBased() || pbs.Datastore != "store1" {
		t.Errorf("pbs %+v", pbs)
	}
}

func TestParseJobsAndVzdumpConf(t *testing.T) {
	jobs := ParseJobs([]byte("vzdump: backup-5d1e0c3a-7b21\n\tschedule 03:00\n\tenabled 1\n\tstorage nfs_usb_4t\n\tvmid 100,101\n\n" +
		"realm-sync: sync-x\n\tschedule daily\n\nvzdump: backup-2\n\tall 1\n\tenabled 0\n"))
	want := []BackupJob{{ID: "backup-5d1e0c3a-7b21", Storage: "nfs_usb_4t", Schedule: "03:00", Enabled: true, Guests: "100,101"},
		{ID: "backup-2", Enabled: false, Guests: "all"}}
	if !reflect.DeepEqual(jobs, want) {
		t.Errorf("%+v", jobs)
	}
	c := ParseVzdumpConf([]byte("# vzdump default settings\n#dumpdir: DIR\nstorage: nfs_usb_4t\ndumpdir:   /srv/dump \nscript: /usr/bin/vzsalvage-hook\nbogus\n"))
	if c != (VzdumpConf{DumpDir: "/srv/dump", Storage: "nfs_usb_4t", Script: "/usr/bin/vzsalvage-hook"}) {
		t.Errorf("%+v", c)
	}
}

func TestParseSectionsOddInput(t *testing.T) {
	ss := ParseSections([]byte("\tpath /orphan\nnot a header\ndir: has space\ndir: ok\n\tpath /x\n# comment\n\tdisable\n"))
	if len(ss) != 1 || ss[0].ID != "ok" || ss[0].Options["path"] != "/x" {
		t.Fatalf("%+v", ss)
	}
	if v, ok := ss[0].Options["disable"]; !ok || v != "" {
		t.Error("a flag without value")
	}
}

func FuzzParseStorageConfig(f *testing.F) {
	f.Add([]byte(storageCfg))
	f.Add([]byte("vzdump: j\n\tall 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range ParseStorageConfig(b) {
			s.DumpDir()
		}
		ParseJobs(b)
		ParseVzdumpConf(b)
	})
}

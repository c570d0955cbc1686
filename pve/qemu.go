// Package pve knows the Proxmox VE conventions a backup carries: the
// qemu-server.conf stored in a VM backup (its disks, and what identifies
// the guest), so that a rescue can say which disks a backup should hold
// and whether two backups are of the same guest.
package pve

import (
	"bufio"
	"regexp"
	"strings"
)

// QemuConfig is what vzsalvage reads from a VM's qemu-server.conf (the
// current config: snapshot sections are ignored).
type QemuConfig struct {
	// Name is the VM's name ("name:").
	Name string
	// SMBIOSUUID is the uuid= of "smbios1:", which Proxmox generates once
	// per VM; "" when absent.
	SMBIOSUUID string
	// Disks lists the drives that hold a disk (CD-ROMs and unused volumes
	// are left out), in config order.
	Disks []Disk
}

// Disk is one drive of a VM config.
type Disk struct {
	// Key is the config key: "scsi0", "virtio1", "efidisk0", "tpmstate0".
	Key string
	// Volume is the storage volume, e.g. "local-lvm:vm-100-disk-0".
	Volume string
	// Size is the size= option as written ("32G"), or "".
	Size string
	// NoBackup is set for backup=0: vzdump leaves the disk out on purpose.
	NoBackup bool
}

// Device returns the name vzdump gives the disk's stream in a VMA archive:
// "drive-scsi0".
func (d Disk) Device() string { return "drive-" + d.Key }

var diskKey = regexp.MustCompile(`^(ide|sata|scsi|virtio)\d+$|^efidisk0$|^tpmstate0$`)

// ParseQemuConfig reads a qemu-server.conf. It never fails: lines it does
// not understand are skipped (the config comes from the backup and may be
// damaged).
func ParseQemuConfig(data []byte) QemuConfig {
	var c QemuConfig
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			break // a snapshot or pending section: not the current config
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case key == "name":
			c.Name = val
		case key == "smbios1":
			c.SMBIOSUUID = option(val, "uuid")
		case diskKey.MatchString(key):
			vol, _, _ := strings.Cut(val, ",")
			if option(val, "media") == "cdrom" || vol == "none" || vol == "cdrom" {
				continue
			}
			c.Disks = append(c.Disks, Disk{Key: key, Volume: vol, Size: option(val, "size"),
				NoBackup: option(val, "backup") == "0"})
		}
	}
	return c
}

// option returns the value of name= in a comma-separated option list.
func option(val, name string) string {
	for _, kv := range strings.Split(val, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

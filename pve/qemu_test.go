package pve

import (
	"reflect"
	"testing"
)

func TestParseQemuConfig(t *testing.T) {
	conf := `#vocabulary app
boot: order=scsi0;ide2;net0
cores: 2
efidisk0: local-lvm:vm-100-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M
ide2: local:iso/alpine-virt-3.19.iso,media=cdrom,size=60M
memory: 4096
name: vocab
scsi0: local-lvm:vm-100-disk-0,iothread=1,size=32G
scsi1: nfs:100/vm-100-disk-2.qcow2,backup=0,size=500G
smbios1: uuid=3f2a1b0c-1111-2222-3333-444455556666
unused0: local-lvm:vm-100-disk-9
virtio0: none
[snap1]
scsi2: local-lvm:vm-100-disk-5,size=1G
`
	c := ParseQemuConfig([]byte(conf))
	want := QemuConfig{Name: "vocab", SMBIOSUUID: "3f2a1b0c-1111-2222-3333-444455556666", Disks: []Disk{
		{Key: "efidisk0", Volume: "local-lvm:vm-100-disk-1", Size: "4M"},
		{Key: "scsi0", Volume: "local-lvm:vm-100-disk-0", Size: "32G"},
		{Key: "scsi1", Volume: "nfs:100/vm-100-disk-2.qcow2", Size: "500G", NoBackup: true},
	}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if c.Disks[1].Device() != "drive-scsi0" {
		t.Error(c.Disks[1].Device())
	}
}

func FuzzParseQemuConfig(f *testing.F) {
	f.Add([]byte("scsi0: local:vm-1-disk-0,size=1G\nsmbios1: uuid=x\n"))
	f.Fuzz(func(t *testing.T, b []byte) { ParseQemuConfig(b) })
}

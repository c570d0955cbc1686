package archive

import (
	"testing"
	"time"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Name
	}{
		{"/mnt/pve/usb/dump/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst",
			Name{Guest: "qemu", VMID: 100, Time: time.Date(2025, 12, 15, 3, 0, 3, 0, time.UTC), Payload: "vma", Ext: ".zst"}},
		{"vzdump-lxc-1001-2024_01_02-23_59_59.tar.gz",
			Name{Guest: "lxc", VMID: 1001, Time: time.Date(2024, 1, 2, 23, 59, 59, 0, time.UTC), Payload: "tar", Ext: ".gz"}},
		{"vzdump-qemu-999999999-2024_01_02-00_00_00.vma",
			Name{Guest: "qemu", VMID: 999999999, Time: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), Payload: "vma"}},
		{"vzdump-qemu-100-2025_12_15-03_00_03.vma.lzo",
			Name{Guest: "qemu", VMID: 100, Time: time.Date(2025, 12, 15, 3, 0, 3, 0, time.UTC), Payload: "vma", Ext: ".lzo"}},
		{"vzdump-qemu-100-2025_12_15-03_00_03.dat",
			Name{Guest: "qemu", VMID: 100, Time: time.Date(2025, 12, 15, 3, 0, 3, 0, time.UTC), Payload: "vma", InProgress: true}},
		{"vzdump-qemu-99-2025_12_15-03_00_03.vma", Name{Payload: "vma"}}, // VMID needs 3+ digits
		{"vzdump-qemu-100-2025_02_30-03_00_03.vma", Name{Guest: "qemu", VMID: 100, Payload: "vma"}},
		{"backup.vma.gz", Name{Payload: "vma", Ext: ".gz"}},
		{"random.bin", Name{}},
	} {
		if got := ParseName(tc.in); got != tc.want {
			t.Errorf("%s: got %+v want %+v", tc.in, got, tc.want)
		}
	}
}

package rescue

import (
	"os"
	"path/filepath"

	"github.com/vzsalvage/vzsalvage/pve"
	"github.com/vzsalvage/vzsalvage/report"
)

// describeConfig records where the VM config was written and which of the
// disks it names the backup does not hold (left out by backup=0, or
// missing).
func describeConfig(rep *report.Report, arc report.Archive, disksDir string) {
	name := arc.ConfigFiles["qemu-server.conf"]
	if name == "" {
		return
	}
	rep.Config = filepath.Join("disks", name)
	data, err := os.ReadFile(filepath.Join(disksDir, name))
	if err != nil {
		return
	}
	have := map[string]bool{}
	for _, d := range rep.Devices {
		have[d.Name] = true
	}
	for _, d := range pve.ParseQemuConfig(data).Disks {
		if !have[d.Device()] {
			rep.AbsentDisks = append(rep.AbsentDisks, report.AbsentDisk{Key: d.Key, Volume: d.Volume, Size: d.Size, Excluded: d.NoBackup})
		}
	}
}

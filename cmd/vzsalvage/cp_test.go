package main

import (
	"testing"

	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/source"
	"github.com/vzsalvage/vzsalvage/volume"
)

// TestCopyBudgetStored: a guest that claims a 1 TiB disk of which the
// backup stores 100 clusters gets a write budget of those clusters (and
// the slack), not of its claim; a disk the report does not count keeps the
// volume's size.
func TestCopyBudgetStored(t *testing.T) {
	const tib = 1 << 40
	src := &source.Source{Report: &report.Report{Devices: []report.Device{{
		Name: "drive-scsi0", Size: tib,
		Clusters: report.Clusters{Total: tib / 65536, Zero: tib/65536 - 100, OK: 100},
	}}}}
	b := copyBudget(src, volume.Volume{Device: "drive-scsi0", Size: tib})
	if want := int64(100*65536 + 64<<20); b.MaxWrite != want {
		t.Errorf("write budget %d, want %d", b.MaxWrite, want)
	}
	b = copyBudget(src, volume.Volume{Device: "drive-scsi1", Size: 1 << 30})
	if want := int64(1<<30 + 64<<20); b.MaxWrite != want {
		t.Errorf("write budget of an uncounted disk %d, want %d", b.MaxWrite, want)
	}
}

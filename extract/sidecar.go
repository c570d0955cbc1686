package extract

import (
	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Checker knows the right content of every cluster of one archive: the
// sidecar that `vzsalvage protect` wrote the day the backup was made. A read
// shows it every cluster; afterwards the clusters it finds wrong are damage
// (even where no checksum located it), and damage the decoder could only
// suspect is cleared where the content is right.
type Checker interface {
	// Name says where the record is.
	Name() string
	// Applies returns an error if the record is not this archive's.
	Applies(h *vma.Header) error
	// Cluster sees a cluster as read (Data is valid only during the call).
	Cluster(h *vma.Header, c *vma.Cluster)
	// Covers reports whether the record holds the clusters of a device.
	Covers(d vma.Device) bool
	// Right reports whether the last copy read of a cluster had the
	// recorded content.
	Right(d vma.Device, num int64) bool
	// EachWrong calls fn with every cluster of a device, in order, that
	// was not read with the recorded content (never read, or wrong).
	EachWrong(d vma.Device, fn func(num int64))
}

// MemberRecord is a Checker's view of a container backup's protect record:
// the hashes of every member's headers and content (ctar.ApplyRecord).
type MemberRecord interface {
	Name() string
	// Record returns the record of the archive's members, or an error
	// when the record is not usable for it (a VM backup's, or damaged).
	Record() (ctar.Record, error)
}

// Sidecars, when set, finds an archive's Checker (nil and no error when the
// archive has none). Every read uses it unless Options.NoSidecar is set;
// cmd/vzsalvage sets it to package protect's lookup.
var Sidecars func(archivePath string) (Checker, error)

// findChecker returns the archive's Checker, or a note saying why a
// sidecar that is there cannot be used.
func findChecker(path string, opt Options) (Checker, string) {
	if opt.Checker != nil {
		return opt.Checker, ""
	}
	if Sidecars == nil || opt.NoSidecar || opt.Strict {
		return nil, ""
	}
	chk, err := Sidecars(path)
	if err != nil {
		return nil, "sidecar not used: " + err.Error()
	}
	return chk, ""
}

// checkClusters turns the checker's verdicts into the devices' damage: a
// wrong cluster is damaged whole (tainted, or lost where the decoder lost
// it), a right one is intact whatever the decoder suspected.
func checkClusters(chk Checker, vres *vma.Result) *report.Sidecar {
	sc := &report.Sidecar{Path: chk.Name(), Used: true}
	for i := range vres.Devices {
		d := &vres.Devices[i]
		if !chk.Covers(d.Device) {
			continue
		}
		dm := d.Damage
		if dm == nil {
			dm = &damage.Map{}
		}
		// clusters the decoder flagged whose content is right (Clear
		// changes dm: walk a copy)
		for _, r := range dm.Clone().Ranges() {
			for num := r.Off / vma.ClusterSize; num*vma.ClusterSize < r.End(); num++ {
				if chk.Right(d.Device, num) {
					off := num * vma.ClusterSize
					n := min(int64(vma.ClusterSize), d.Size-off)
					if dm.Any(off, n, damage.Tainted) {
						dm.Clear(off, n)
						sc.Confirmed++
					}
				}
			}
		}
		chk.EachWrong(d.Device, func(num int64) {
			sc.Wrong++
			off := num * vma.ClusterSize
			n := min(int64(vma.ClusterSize), d.Size-off)
			if n <= 0 {
				return
			}
			var lost []damage.Range
			for _, r := range dm.Overlaps(off, n) {
				if r.State == damage.Lost {
					lost = append(lost, r)
				}
			}
			dm.Set(off, n, damage.Tainted)
			for _, r := range lost {
				lo, hi := max(r.Off, off), min(r.End(), off+n)
				dm.Set(lo, hi-lo, damage.Lost)
			}
		})
		d.Damage = dm
		d.Clusters = recount(d.Clusters, dm, d.Size)
	}
	return sc
}

// recount derives a device's tainted and lost cluster counts from its
// damage map (zero clusters keep their count).
func recount(c vma.Clusters, dm *damage.Map, size int64) vma.Clusters {
	c.Tainted, c.Lost = 0, 0
	last := int64(-1)
	for _, r := range dm.Ranges() {
		for num := max(r.Off/vma.ClusterSize, last+1); num*vma.ClusterSize < r.End(); num++ {
			off := num * vma.ClusterSize
			n := min(int64(vma.ClusterSize), size-off)
			if dm.Count(off, n, damage.Lost) == n {
				c.Lost++
			} else {
				c.Tainted++
			}
			last = num
		}
	}
	c.OK = max(c.Total-c.Zero-c.Tainted-c.Lost, 0)
	return c
}

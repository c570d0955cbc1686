package protect

import (
	"fmt"
	"strings"

	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/vma"
)

// DamagedClusters lists the damaged clusters of one device, as ranges of
// cluster numbers [First, Last].
type DamagedClusters struct {
	Device string         `json:"device"`
	Count  int64          `json:"count"`
	Ranges []ClusterRange `json:"ranges"`
}

// ClusterRange is a run of clusters, First to Last included.
type ClusterRange struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

// Clusters returns the damaged clusters of every device of a report: every
// cluster with a byte in its damage.
func Clusters(rep *report.Report) []DamagedClusters {
	var out []DamagedClusters
	for _, d := range rep.Devices {
		dc := DamagedClusters{Device: d.Name}
		for _, r := range d.Damage.Ranges() {
			first, last := r.Off/vma.ClusterSize, (r.End()-1)/vma.ClusterSize
			if n := len(dc.Ranges); n > 0 && first <= dc.Ranges[n-1].Last+1 {
				if last > dc.Ranges[n-1].Last {
					dc.Count += last - dc.Ranges[n-1].Last
					dc.Ranges[n-1].Last = last
				}
				continue
			}
			dc.Ranges = append(dc.Ranges, ClusterRange{first, last})
			dc.Count += last - first + 1
		}
		if dc.Count > 0 {
			out = append(out, dc)
		}
	}
	return out
}

// String lists the ranges (the first 20).
func (d DamagedClusters) String() string {
	var b strings.Builder
	for i, r := range d.Ranges {
		if i == 20 {
			fmt.Fprintf(&b, " ... (%d more ranges)", len(d.Ranges)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if r.First == r.Last {
			fmt.Fprintf(&b, "%d", r.First)
		} else {
			fmt.Fprintf(&b, "%d-%d", r.First, r.Last)
		}
	}
	return b.String()
}

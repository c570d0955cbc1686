package vma

import (
	"errors"

	"github.com/vzsalvage/vzsalvage/damage"
)

// cstate is what a reader knows of one cluster. Larger is worse, except
// that unseen is the worst of all.
type cstate uint8

const (
	cUnseen      cstate = iota
	cOK                 // stored and clean
	cZero               // an all-zero cluster (mask 0)
	cProvisional        // placed by counting back from the next extent header
	cTainted            // stored, some bytes not trustworthy
	cLost               // listed, but its bytes are lost
)

// rank orders states from best (0) to worst.
func (s cstate) rank() int {
	switch s {
	case cOK, cZero:
		return 0
	case cProvisional:
		return 1
	case cTainted:
		return 2
	case cLost:
		return 3
	}
	return 4
}

const (
	pageBits = 16 // clusters per page: 64 Ki (4 GiB of disk per 64 KiB page)
	pageSize = 1 << pageBits
	// maxStatePages bounds the memory for cluster states (256 MiB, i.e.
	// 16 TiB of disks), whatever the archive claims.
	maxStatePages = 4096
)

var errTooLarge = errors.New("vma: archive devices too large to track (over 16 TiB)")

// clusterMap holds a state per cluster of one device, in pages allocated on
// first use.
type clusterMap struct {
	pages map[uint32]*[pageSize]cstate
}

// get returns a cluster's state.
func (m *clusterMap) get(c uint32) cstate {
	p := m.pages[c>>pageBits]
	if p == nil {
		return cUnseen
	}
	return p[c&(pageSize-1)]
}

// set records a cluster's state; budget counts pages allocated across all
// maps of one reader.
func (m *clusterMap) set(c uint32, s cstate, budget *int) error {
	if m.pages == nil {
		m.pages = map[uint32]*[pageSize]cstate{}
	}
	p := m.pages[c>>pageBits]
	if p == nil {
		if *budget >= maxStatePages {
			return errTooLarge
		}
		*budget++
		p = new([pageSize]cstate)
		m.pages[c>>pageBits] = p
	}
	p[c&(pageSize-1)] = s
	return nil
}

// Clusters counts a device's clusters by state, as in damage.json.
type Clusters struct {
	Total   int64 `json:"total"`
	OK      int64 `json:"ok"`
	Zero    int64 `json:"zero"`
	Tainted int64 `json:"tainted"`
	Lost    int64 `json:"lost"`
}

// summarize turns a device's cluster states into counts, and with the
// exact damage of the clusters read (dmg) and the provisional ranges
// (prov, tainted unless trustTails) into the device's damage map: clusters
// never seen are lost whole.
func (m *clusterMap) summarize(nclusters, size int64, dmg, prov *damage.Map, trustTails bool) (Clusters, *damage.Map) {
	var c Clusters
	dm := dmg.Clone()
	if !trustTails {
		dm.Merge(prov)
	}
	c.Total = nclusters
	for i := int64(0); i < nclusters; i++ {
		if i&(pageSize-1) == 0 && m.pages[uint32(i>>pageBits)] == nil {
			n := min(int64(pageSize), nclusters-i)
			c.Lost += n
			off := i * ClusterSize
			dm.Add(off, min(n*ClusterSize, size-off), damage.Lost)
			i += n - 1
			continue
		}
		switch m.get(uint32(i)) {
		case cOK:
			c.OK++
		case cZero:
			c.Zero++
		case cProvisional:
			if trustTails {
				c.OK++
			} else {
				c.Tainted++
			}
		case cTainted:
			c.Tainted++
		case cLost:
			c.Lost++
		default:
			c.Lost++
			off := i * ClusterSize
			dm.Add(off, min(int64(ClusterSize), size-off), damage.Lost)
		}
	}
	return c, dm.Slice(0, size)
}

// firstUnseen returns the first cluster below n never seen, or -1.
func (m *clusterMap) firstUnseen(n int64) int64 {
	for i := int64(0); i < n; i++ {
		if i&(pageSize-1) == 0 && m.pages[uint32(i>>pageBits)] == nil {
			return i
		}
		if m.get(uint32(i)) == cUnseen {
			return i
		}
	}
	return -1
}

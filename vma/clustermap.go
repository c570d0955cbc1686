package vma

import (
	"errors"
	"slices"

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
	pageBits = 12 // clusters per page: 4096 (256 MiB of disk)
	pageSize = 1 << pageBits
	// denseBytes is a dense page: 4 bits per cluster.
	denseBytes = pageSize / 2
	// sparseMax is how many clusters a page lists one by one before it
	// turns dense: a page costs memory in proportion to the entries of the
	// archive that touch it (8 bytes each), never to the disk size the
	// header claims.
	sparseMax = 64
	// maxStateBytes bounds the memory for cluster states of one reader
	// (128 MiB: 16 TiB of disks read in full), whatever the archive claims.
	maxStateBytes = 128 << 20
	// pageCost is what a page costs besides its states (map entry, header).
	pageCost = 64
)

var errTooLarge = errors.New("vma: archive devices too large to track (over 16 TiB)")

// clusterMap holds a state per cluster of one device. A page of clusters
// exists once an entry touches it: first as a short list of the clusters
// set, then, past sparseMax of them, as 4 bits per cluster.
type clusterMap struct {
	pages map[uint32]*statePage
}

type statePage struct {
	dense  []byte // denseBytes, or nil while sparse
	sparse []sparseState
	// frozen: the page is shared with a Snapshot; set copies it first.
	frozen bool
}

// freeze returns a map with m's states that shares its pages: from now on
// set copies a page before it changes it, in either map. (The copies are
// not counted in the reader's budget: they at most double it.)
func (m *clusterMap) freeze() clusterMap {
	c := clusterMap{pages: make(map[uint32]*statePage, len(m.pages))}
	for k, p := range m.pages {
		p.frozen = true
		c.pages[k] = p
	}
	return c
}

type sparseState struct {
	i uint16 // cluster within the page
	s cstate
}

func (p *statePage) get(i uint32) cstate {
	if p.dense != nil {
		return cstate(p.dense[i/2]>>(4*(i&1))) & 0xf
	}
	for _, e := range p.sparse {
		if uint32(e.i) == i {
			return e.s
		}
	}
	return cUnseen
}

// get returns a cluster's state.
func (m *clusterMap) get(c uint32) cstate {
	p := m.pages[c>>pageBits]
	if p == nil {
		return cUnseen
	}
	return p.get(c & (pageSize - 1))
}

// set records a cluster's state; budget counts the bytes allocated across
// all maps of one reader.
func (m *clusterMap) set(c uint32, s cstate, budget *int) error {
	if m.pages == nil {
		m.pages = map[uint32]*statePage{}
	}
	p := m.pages[c>>pageBits]
	if p == nil {
		if *budget+pageCost > maxStateBytes {
			return errTooLarge
		}
		*budget += pageCost
		p = &statePage{}
		m.pages[c>>pageBits] = p
	} else if p.frozen {
		p = &statePage{dense: slices.Clone(p.dense), sparse: slices.Clone(p.sparse)}
		m.pages[c>>pageBits] = p
	}
	i := c & (pageSize - 1)
	if p.dense == nil {
		for k := range p.sparse {
			if uint32(p.sparse[k].i) == i {
				p.sparse[k].s = s
				return nil
			}
		}
		if len(p.sparse) < sparseMax {
			*budget += 4
			p.sparse = append(p.sparse, sparseState{uint16(i), s})
			return nil
		}
		if *budget+denseBytes > maxStateBytes {
			return errTooLarge
		}
		*budget += denseBytes
		p.dense = make([]byte, denseBytes)
		for _, e := range p.sparse {
			p.setDense(uint32(e.i), e.s)
		}
		p.sparse = nil
	}
	p.setDense(i, s)
	return nil
}

func (p *statePage) setDense(i uint32, s cstate) {
	sh := 4 * (i & 1)
	p.dense[i/2] = p.dense[i/2]&^(0xf<<sh) | byte(s)<<sh
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
// never seen are lost whole. The map is coarsened to at most limit ranges
// (damage.Map.Coarsen); merged counts the ranges merged away.
func (m *clusterMap) summarize(nclusters, size int64, dmg, prov []damage.Range, trustTails bool, limit int) (c Clusters, dm *damage.Map, merged int) {
	c.Total = nclusters
	// the unseen clusters, in order: runs, coarsened as they grow
	unseen := &damage.Map{}
	lost := func(i, n int64) {
		c.Lost += n
		off := i * ClusterSize
		unseen.Add(off, min(n*ClusterSize, size-off), damage.Lost)
		if unseen.Len() > 2*limit {
			merged += unseen.Coarsen(limit)
		}
	}
	for i := int64(0); i < nclusters; i += pageSize {
		n := min(int64(pageSize), nclusters-i)
		p := m.pages[uint32(i>>pageBits)]
		if p == nil {
			lost(i, n)
			continue
		}
		p.each(n, func(j, k int64, st cstate) {
			switch st {
			case cOK:
				c.OK += k
			case cZero:
				c.Zero += k
			case cProvisional:
				if trustTails {
					c.OK += k
				} else {
					c.Tainted += k
				}
			case cTainted:
				c.Tainted += k
			case cLost:
				c.Lost += k
			default:
				lost(i+j, k)
			}
		})
	}
	all := slices.Concat(dmg, unseen.Ranges())
	if !trustTails {
		all = append(all, prov...)
	}
	dm = damage.FromRanges(all).Slice(0, size)
	merged += dm.Coarsen(limit)
	return c, dm, merged
}

// each calls fn for the first n clusters of the page in order, in runs of
// k clusters from j in state st (unseen runs whole, in a sparse page).
func (p *statePage) each(n int64, fn func(j, k int64, st cstate)) {
	if p.dense != nil {
		for j := int64(0); j < n; j++ {
			fn(j, 1, p.get(uint32(j)))
		}
		return
	}
	es := slices.Clone(p.sparse)
	slices.SortFunc(es, func(a, b sparseState) int { return int(a.i) - int(b.i) })
	j := int64(0)
	for _, e := range es {
		if int64(e.i) >= n {
			break
		}
		if int64(e.i) > j {
			fn(j, int64(e.i)-j, cUnseen)
		}
		fn(int64(e.i), 1, e.s)
		j = int64(e.i) + 1
	}
	if j < n {
		fn(j, n-j, cUnseen)
	}
}

// firstUnseen returns the first cluster below n never seen, or -1.
func (m *clusterMap) firstUnseen(n int64) int64 {
	for i := int64(0); i < n; i += pageSize {
		p := m.pages[uint32(i>>pageBits)]
		if p == nil {
			return i
		}
		for j := int64(0); j < min(int64(pageSize), n-i); j++ {
			if p.get(uint32(j)) == cUnseen {
				return i + j
			}
		}
	}
	return -1
}

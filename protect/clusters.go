package protect

import (
	"fmt"
	"sort"

	"github.com/cespare/xxhash/v2"

	"github.com/vzsalvage/vzsalvage/vma"
)

// Cluster hashes: the xxh64 of a cluster's content as it is on the device
// (64 KiB, or up to the device's end for its last cluster; blocks the
// archive does not store are zeros), with 0 standing for an all-zero
// cluster (a content whose xxh64 is 0 is recorded as 1). xxh64 is not a
// cryptographic hash: it guards against accidental damage (disks, RAM,
// transfers), at a cost of 1/40th of the decompression; the archive as a
// whole is pinned by the SHA-256 of its chunk hashes (a version 1 sidecar:
// by its SHA-256).

// nonZero maps the hash of a non-zero cluster away from 0.
func nonZero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

var zeroBlock = make([]byte, vma.BlockSize)

// clusterHasher hashes clusters as a vma.Reader delivers them.
type clusterHasher struct {
	d     *xxhash.Digest
	zeros map[int64]uint64 // xxh64 of n zero bytes, by n
}

func newClusterHasher() *clusterHasher {
	return &clusterHasher{d: xxhash.New(), zeros: map[int64]uint64{}}
}

// hash returns the hash of cluster c of a device of the given size.
func (ch *clusterHasher) hash(size int64, c *vma.Cluster) uint64 {
	n := min(int64(vma.ClusterSize), size-c.Offset())
	if c.Mask == 0 || n <= 0 {
		return 0
	}
	ch.d.Reset()
	k := 0
	for j := 0; j < vma.BlocksPerCluster && int64(j)*vma.BlockSize < n; j++ {
		m := min(int64(vma.BlockSize), n-int64(j)*vma.BlockSize)
		if c.Mask&(1<<j) == 0 {
			ch.d.Write(zeroBlock[:m])
			continue
		}
		if (k+1)*vma.BlockSize <= len(c.Data) {
			ch.d.Write(c.Data[k*vma.BlockSize : k*vma.BlockSize+int(m)])
		}
		k++
	}
	h := ch.d.Sum64()
	z, ok := ch.zeros[n]
	if !ok {
		d := xxhash.New()
		for left := n; left > 0; left -= vma.BlockSize {
			d.Write(zeroBlock[:min(left, vma.BlockSize)])
		}
		z = d.Sum64()
		ch.zeros[n] = z
	}
	if h == z {
		return 0
	}
	return nonZero(h)
}

// pageTable collects cluster hashes, which arrive in archive order, into
// pages of cluster order, and hands each page to emit as soon as all its
// clusters have been seen. Memory holds only the pages not yet complete.
type pageTable struct {
	devs  [256]*devPages
	emit  func(dev uint8, page int64, hs []uint64) error
	held  int // pages with a hash buffer
	limit int // most pages held before an error
}

type devPages struct {
	size  int64
	pages map[int64]*page
	done  int64 // pages emitted
}

type page struct {
	seen int
	hs   []uint64 // nil while every cluster seen is zero
}

func newPageTable(devs []vma.Device, limit int, emit func(uint8, int64, []uint64) error) *pageTable {
	t := &pageTable{emit: emit, limit: limit}
	for _, d := range devs {
		t.devs[d.ID] = &devPages{size: d.Size, pages: map[int64]*page{}}
	}
	return t
}

// pageLen returns the number of clusters in page p of a device.
func (d *devPages) pageLen(p int64) int {
	n := (d.size + vma.ClusterSize - 1) / vma.ClusterSize
	return int(min(pageClusters, n-p*pageClusters))
}

// set records the hash of cluster num of device dev (each cluster once).
func (t *pageTable) set(dev uint8, num uint32, h uint64) error {
	d := t.devs[dev]
	if d == nil {
		return fmt.Errorf("cluster of unknown device %d", dev)
	}
	p := int64(num) / pageClusters
	n := d.pageLen(p)
	if n <= 0 {
		return fmt.Errorf("cluster %d beyond the end of device %d", num, dev)
	}
	pg := d.pages[p]
	if pg == nil {
		pg = &page{}
		d.pages[p] = pg
	}
	if h != 0 && pg.hs == nil {
		if t.held >= t.limit {
			return fmt.Errorf("clusters arrive too far out of order (more than %d pages of 4096 open)", t.limit)
		}
		pg.hs = make([]uint64, n)
		t.held++
	}
	if pg.hs != nil {
		pg.hs[int64(num)%pageClusters] = h
	}
	pg.seen++
	if pg.seen < n {
		return nil
	}
	hs := pg.hs
	if hs == nil {
		hs = make([]uint64, 0) // all zero
	} else {
		t.held--
	}
	delete(d.pages, p)
	d.done++
	return t.emit(dev, p, hs)
}

// incomplete returns a description of the first page not complete, or "".
func (t *pageTable) incomplete() string {
	for id, d := range t.devs {
		if d == nil {
			continue
		}
		total := (d.size + vma.ClusterSize*pageClusters - 1) / (vma.ClusterSize * pageClusters)
		if d.done == total {
			continue
		}
		var open []int64
		for p := range d.pages {
			open = append(open, p)
		}
		sort.Slice(open, func(i, j int) bool { return open[i] < open[j] })
		return fmt.Sprintf("device %d: %d of %d cluster pages complete (first open: %v)", id, d.done, total, open[:min(len(open), 1)])
	}
	return ""
}

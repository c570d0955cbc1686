package protect

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Checker compares every cluster a read delivers with the hash its sidecar
// recorded (it implements extract.Checker): with a sidecar, no damage is
// silent, and clusters the decoder could only suspect are proved right or
// wrong.
type Checker struct {
	sc     *Sidecar
	hasher *clusterHasher
	devs   [256]*devCheck
	cache  map[uint64][]uint64 // expected hashes by page key
}

type devCheck struct {
	info     DeviceInfo
	clusters int64
	pages    map[int64]*checkPage
	unknown  map[int64]bool // pages whose record is damaged
}

// checkPage holds, for a page of clusters, which were read (seen) and
// whether the last copy read was right.
type checkPage struct {
	seen, right [pageClusters / 64]uint64
}

// NewChecker returns a Checker for the archive of an opened sidecar.
func NewChecker(sc *Sidecar) *Checker {
	c := &Checker{sc: sc, hasher: newClusterHasher(), cache: map[uint64][]uint64{}}
	for _, d := range sc.Header.VMA.Devices {
		c.devs[d.ID] = &devCheck{info: d, clusters: (d.Size + clusterSize - 1) / clusterSize,
			pages: map[int64]*checkPage{}, unknown: map[int64]bool{}}
	}
	return c
}

// Name returns the sidecar's path.
func (c *Checker) Name() string { return c.sc.Path }

// Applies checks that the sidecar is the archive's: same VMA uuid, same
// devices.
func (c *Checker) Applies(h *vma.Header) error {
	if c.sc.Header.Tar != nil {
		return errors.New("it belongs to a container backup")
	}
	if u := h.UUIDString(); u != c.sc.Header.VMA.UUID {
		return fmt.Errorf("it belongs to another backup (uuid %s; this archive's is %s)", c.sc.Header.VMA.UUID, u)
	}
	for _, d := range h.Devices {
		dc := c.devs[d.ID]
		if dc == nil || (d.Name != dc.info.Name && d.Name != fmt.Sprintf("dev%d", d.ID)) || (d.Size != dc.info.Size && d.Name == dc.info.Name) {
			return fmt.Errorf("device %d (%s) is not the one it recorded", d.ID, d.Name)
		}
	}
	return nil
}

// Cluster compares a cluster's content with the recorded hash.
func (c *Checker) Cluster(_ *vma.Header, cl *vma.Cluster) {
	dc := c.devs[cl.Dev]
	if dc == nil || int64(cl.Num) >= dc.clusters {
		return
	}
	p := int64(cl.Num) / pageClusters
	want, ok := c.expected(cl.Dev, dc, p)
	if !ok {
		return
	}
	i := int64(cl.Num) % pageClusters
	pg := dc.pages[p]
	if pg == nil {
		pg = &checkPage{}
		dc.pages[p] = pg
	}
	pg.seen[i/64] |= 1 << (i % 64)
	if c.hasher.hash(dc.info.Size, cl) == want[i] {
		pg.right[i/64] |= 1 << (i % 64)
	} else {
		pg.right[i/64] &^= 1 << (i % 64)
	}
}

// rightWord returns the bits of 64 clusters from cluster w*64 of page p
// that are right: read right, or never read and recorded as zero (a read
// leaves zeros where it delivered nothing). ok is false when the page's
// record is damaged.
func (c *Checker) rightWord(dev uint8, dc *devCheck, p, w int64) (uint64, bool) {
	pg := dc.pages[p]
	var seen, right uint64
	if pg != nil {
		seen, right = pg.seen[w], pg.right[w]
	}
	if seen == ^uint64(0) {
		return right, true
	}
	want, ok := c.expected(dev, dc, p)
	if !ok {
		return 0, false
	}
	for b := int64(0); b < 64 && w*64+b < int64(len(want)); b++ {
		if seen&(1<<b) == 0 && want[w*64+b] == 0 {
			right |= 1 << b
		}
	}
	return right, true
}

// expected returns the recorded hashes of a page (false when its record is
// damaged: those clusters keep the decoder's verdict).
func (c *Checker) expected(dev uint8, dc *devCheck, p int64) ([]uint64, bool) {
	k := clusterKey(dev, p)
	if hs, ok := c.cache[k]; ok {
		return hs, true
	}
	if dc.unknown[p] {
		return nil, false
	}
	n := int(min(pageClusters, dc.clusters-p*pageClusters))
	hs, err := c.sc.clusterPage(dev, p, n)
	if err != nil {
		dc.unknown[p] = true
		return nil, false
	}
	if len(c.cache) >= 64 {
		clear(c.cache)
	}
	c.cache[k] = hs
	return hs, true
}

// Covers reports whether the sidecar recorded the device.
func (c *Checker) Covers(d vma.Device) bool {
	dc := c.devs[d.ID]
	return dc != nil && dc.info.Size == d.Size
}

// Right reports whether the last copy read of a cluster was right.
func (c *Checker) Right(d vma.Device, num int64) bool {
	dc := c.devs[d.ID]
	if dc == nil || num < 0 || num >= dc.clusters {
		return false
	}
	i := num % pageClusters
	w, ok := c.rightWord(d.ID, dc, num/pageClusters, i/64)
	return ok && w&(1<<(i%64)) != 0
}

// EachWrong calls fn with every cluster not read right, except those whose
// record is damaged.
func (c *Checker) EachWrong(d vma.Device, fn func(num int64)) {
	dc := c.devs[d.ID]
	if dc == nil {
		return
	}
	for p := int64(0); p*pageClusters < dc.clusters; p++ {
		n := min(pageClusters, dc.clusters-p*pageClusters)
		for w := int64(0); w*64 < n; w++ {
			word, ok := c.rightWord(d.ID, dc, p, w)
			if !ok {
				break
			}
			if word == ^uint64(0) {
				continue
			}
			for b := int64(0); b < 64 && w*64+b < n; b++ {
				if word&(1<<b) == 0 {
					fn(p*pageClusters + w*64 + b)
				}
			}
		}
	}
}

// Record implements extract.MemberRecord: the member hashes of a container
// backup's sidecar, read whole (16 bytes a member, no more than the
// sidecar holds). A damaged page makes the record unusable: members it
// would have named could not be told from wrong ones.
func (c *Checker) Record() (ctar.Record, error) {
	t := c.sc.Header.Tar
	if t == nil {
		return nil, errors.New("it belongs to a VM backup")
	}
	var r memberRecord
	for p := int64(0); p*pageMembers < t.Members; p++ {
		b, err := c.sc.record(recMembers, uint64(p))
		if err != nil {
			return nil, err
		}
		want := min(pageMembers, t.Members-p*pageMembers) * memberEntry
		if int64(len(b)) != want {
			return nil, formatErr("member page %d: %d bytes, want %d", p, len(b), want)
		}
		for ; len(b) > 0; b = b[memberEntry:] {
			r = append(r, ctar.MemberHash{Header: binary.LittleEndian.Uint64(b), Data: binary.LittleEndian.Uint64(b[8:])})
		}
	}
	slices.SortFunc(r, func(a, b ctar.MemberHash) int {
		if c := cmp.Compare(a.Header, b.Header); c != 0 {
			return c
		}
		return cmp.Compare(a.Data, b.Data)
	})
	return r, nil
}

// memberRecord is a container's member hashes, sorted.
type memberRecord []ctar.MemberHash

func (r memberRecord) Lookup(h ctar.MemberHash) (header, content bool) {
	i, _ := slices.BinarySearchFunc(r, h.Header, func(e ctar.MemberHash, k uint64) int { return cmp.Compare(e.Header, k) })
	for ; i < len(r) && r[i].Header == h.Header; i++ {
		header = true
		if r[i].Data == h.Data {
			return true, true
		}
	}
	return header, false
}

func (r memberRecord) Members() int { return len(r) }

// Lookup returns the function extract.Sidecars uses: an archive's sidecar
// in dir (when dir is not empty) or beside it, as a Checker; nil when
// there is none.
func Lookup(dir string) func(archive string) (extract.Checker, error) {
	return func(archive string) (extract.Checker, error) {
		sc, err := Find(archive, dir)
		if err != nil || sc == nil {
			return nil, err
		}
		return NewChecker(sc), nil
	}
}

// Find opens an archive's sidecar: in dir when dir is not empty, else (or
// when it is not there) beside the archive. It returns nil and no error
// when there is none.
func Find(archive, dir string) (*Sidecar, error) {
	for _, p := range []string{SidecarPath(archive, dir), SidecarPath(archive, "")} {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return OpenSidecar(p)
	}
	return nil, nil
}

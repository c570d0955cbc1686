package vma

import (
	"fmt"
	"math/bits"

	"github.com/vzsalvage/vzsalvage/damage"
)

// Accounting: per device, which clusters were seen and in what state, the
// damage ranges (capped, merged past the cap), and the delivery of
// clusters to the caller; finish checks for missing clusters.

type devState struct {
	dev     Device
	learned bool // headerless: size grows with the clusters seen
	m       clusterMap
	// dmg holds the exact damage of the clusters read (device offsets):
	// the bytes the codec reports tainted or lost, and stored blocks that
	// were not in the stream. prov holds bytes whose trust is provisional
	// (placed tails, Cond bytes): they count as tainted unless trusted at
	// the end. Both are collected as they come (clusters arrive out of
	// order) and sorted once at the end.
	dmg, prov []damage.Range
	merged    int // ranges merged away by compactDamage
}

// rangeLimit returns how many damage ranges each device may keep.
func (r *Reader) rangeLimit() int {
	n := len(r.hdr.Devices)
	if r.res.Headerless || n == 0 {
		n = MaxDevices
	}
	return min(max(maxDamageRanges/n, minDeviceRanges), maxDeviceRanges)
}

// compactDamage keeps a device's collected damage ranges within four times
// its limit by sorting and coarsening them.
func (r *Reader) compactDamage(d *devState) {
	limit := r.rangeLimit()
	for _, rs := range []*[]damage.Range{&d.dmg, &d.prov} {
		if len(*rs) > 4*limit {
			m := damage.FromRanges(*rs)
			d.merged += m.Coarsen(limit)
			*rs = append((*rs)[:0], m.Ranges()...)
		}
	}
}

// forget drops the damage recorded for [off, off+n) (a cluster read again).
func forget(rs []damage.Range, off, n int64) []damage.Range {
	m := damage.FromRanges(rs)
	m.Clear(off, n)
	return append(rs[:0], m.Ranges()...)
}

// device returns the state of device id, learning it in headerless mode.
func (r *Reader) device(id uint8) *devState {
	d := r.devs[id]
	if d == nil && r.res.Headerless && id != 0 {
		d = &devState{dev: Device{ID: id, Name: fmt.Sprintf("dev%d", id)}, learned: true}
		r.devs[id] = d
	}
	return d
}

type pendingCluster struct {
	bi      BlockInfo
	k0      int // index of its first stored block in the extent
	rewrite bool
}

// queue checks the entries of an extent and queues its clusters.
func (r *Reader) queue(eh *ExtentHeader, hdrOff int64) error {
	k := 0
	for _, bi := range eh.Entries {
		k0 := k
		k += bi.Blocks()
		d := r.device(bi.Dev())
		if d == nil {
			if err := r.fatal(hdrOff, fmt.Errorf("%w %d", ErrDevID, bi.Dev())); err != nil {
				return err
			}
			continue
		}
		c := int64(bi.Cluster())
		if d.learned {
			if sz := (c + 1) * ClusterSize; sz > d.dev.Size {
				d.dev.Size = sz
			}
		} else {
			last := 15 - bits.LeadingZeros16(bi.Mask())
			if c >= d.dev.Clusters() || (bi.Mask() != 0 && c*ClusterSize+int64(last)*BlockSize >= d.dev.Size) {
				if err := r.fatal(hdrOff, fmt.Errorf("%w (%s)", ErrBeyondEnd, bi)); err != nil {
					return err
				}
				continue
			}
		}
		st := r.clusterState(bi, k0)
		old := d.m.get(uint32(c))
		rewrite := false
		if old != cUnseen {
			if err := r.fatal(hdrOff, fmt.Errorf("%w %d for stream %s", ErrDuplicate, c, d.dev.Name)); err != nil {
				return err
			}
			if st.rank() >= old.rank() {
				continue
			}
			rewrite = true
		}
		if err := d.m.set(uint32(c), st, &r.budget); err != nil {
			return err
		}
		if old == cUnseen {
			r.seen++
		}
		r.recordDamage(d, bi, k0, rewrite)
		r.compactDamage(d)
		r.pending = append(r.pending, pendingCluster{bi: bi, k0: k0, rewrite: rewrite})
	}
	return nil
}

// recordDamage adds the exact damage of a cluster about to be delivered to
// its device's maps: stored blocks not in the stream are lost, bytes the
// codec reports are tainted or lost, tail blocks and Cond bytes are
// provisional. A rewritten cluster forgets its earlier copy's damage.
func (r *Reader) recordDamage(d *devState, bi BlockInfo, k0 int, rewrite bool) {
	base := int64(bi.Cluster()) * ClusterSize
	if rewrite {
		d.dmg = forget(d.dmg, base, ClusterSize)
		d.prov = forget(d.prov, base, ClusterSize)
	}
	k := k0
	sp := r.spans()
	for j := 0; j < BlocksPerCluster; j++ {
		if bi.Mask()&(1<<j) == 0 {
			continue
		}
		dev := base + int64(j)*BlockSize
		pos, ok := r.ext.blockPos(k)
		tail := ok && r.ext.provisional(k, pos)
		k++
		if !ok {
			d.dmg = addRange(d.dmg, dev, BlockSize, damage.Lost)
			if r.opt.Place != nil && r.ext.exactGap {
				r.opt.Place(r.ext.dataStart+int64(k-1)*BlockSize, d.dev.ID, dev)
			}
			continue
		}
		if tail {
			d.prov = addRange(d.prov, dev, BlockSize, damage.Tainted)
		}
		if i := firstSpan(sp, pos); r.opt.Place != nil && i < len(sp) && sp[i].Off < pos+BlockSize {
			r.opt.Place(pos, d.dev.ID, dev)
		}
		for i := firstSpan(sp, pos); i < len(sp) && sp[i].Off < pos+BlockSize; i++ {
			lo, hi := max(sp[i].Off, pos), min(sp[i].End(), pos+BlockSize)
			switch {
			case sp[i].Cond && sp[i].State == damage.Tainted && r.condTrusted(pos):
				d.prov = addRange(d.prov, dev+lo-pos, hi-lo, damage.Tainted)
			case sp[i].Cond && sp[i].State == damage.Tainted:
				d.dmg = addRange(d.dmg, dev+lo-pos, hi-lo, damage.Tainted)
			default:
				d.dmg = addRange(d.dmg, dev+lo-pos, hi-lo, sp[i].State)
			}
		}
	}
}

// addRange appends a range widened to whole sectors, merging it into the
// last one when they touch or overlap with the same state.
func addRange(rs []damage.Range, off, n int64, st damage.State) []damage.Range {
	end := (off + n + damageUnit - 1) &^ (damageUnit - 1)
	off &^= damageUnit - 1
	if k := len(rs); k > 0 && rs[k-1].State == st && off >= rs[k-1].Off && off <= rs[k-1].End() {
		rs[k-1].Len = max(rs[k-1].End(), end) - rs[k-1].Off
		return rs
	}
	return append(rs, damage.Range{Off: off, Len: end - off, State: st})
}

// clusterState judges a cluster from where its blocks are and what the
// codec says of their bytes.
func (r *Reader) clusterState(bi BlockInfo, k0 int) cstate {
	n := bi.Blocks()
	if n == 0 {
		return cZero
	}
	lost, bad, provisional := 0, 0, false
	for k := k0; k < k0+n; k++ {
		p, ok := r.ext.blockPos(k)
		if !ok {
			lost++
			continue
		}
		if r.ext.provisional(k, p) {
			provisional = true
		}
		st, cond := r.worst(p, p+BlockSize)
		switch {
		case st == damage.Lost:
			lost++
		case st == damage.Tainted:
			bad++
		case cond && !r.condTrusted(p):
			bad++
		case cond:
			provisional = true
		}
	}
	switch {
	case lost == n:
		return cLost
	case lost+bad > 0:
		return cTainted
	case provisional:
		return cProvisional
	}
	return cOK
}

// deliver assembles a queued cluster.
func (r *Reader) deliver(p *pendingCluster) *Cluster {
	bi := p.bi
	n := bi.Blocks()
	c := &r.cl
	*c = Cluster{Dev: bi.Dev(), Num: bi.Cluster(), Mask: bi.Mask(), Rewrite: p.rewrite}
	r.inScratch = false
	if n == 0 {
		return c
	}
	first, ok1 := r.ext.blockPos(p.k0)
	last, ok2 := r.ext.blockPos(p.k0 + n - 1)
	if ok1 && ok2 && last-first == int64(n-1)*BlockSize {
		c.Data = r.at(first, int64(n)*BlockSize)
		if len(c.Data) == n*BlockSize {
			return c
		}
	}
	r.inScratch = true
	if cap(r.scratch) < ClusterSize {
		r.scratch = make([]byte, ClusterSize)
	}
	c.Data = r.scratch[:n*BlockSize]
	for i := 0; i < n; i++ {
		dst := c.Data[i*BlockSize : (i+1)*BlockSize]
		clear(dst)
		if pos, ok := r.ext.blockPos(p.k0 + i); ok {
			copy(dst, r.at(pos, BlockSize))
		}
	}
	return c
}

// finish ends the read: checks for missing clusters and builds the Result.
func (r *Reader) finish() error {
	r.done = true
	r.passAll()
	if r.res.Bomb {
		err := fmt.Errorf("decompressed stream goes on past %d bytes, far more than its devices can hold: a decompression bomb (or not this archive's stream); reading stopped there", r.bufEnd())
		if !r.opt.Salvage {
			return err
		}
		r.problemKind(r.bufEnd(), damage.Bomb, "%v", err)
	}
	if r.readErr != nil {
		if !r.opt.Salvage {
			return r.readErr
		}
		r.problemKind(r.bufEnd(), damage.ReadError, "read error: %v", r.readErr)
	}
	trust := !r.res.Headerless
	for id := range r.devs {
		d := r.devs[id]
		if d == nil {
			continue
		}
		if u := d.m.firstUnseen(d.dev.Clusters()); u >= 0 {
			trust = false
			err := fmt.Errorf("%w %d for stream %s", ErrMissing, u, d.dev.Name)
			if !r.opt.Salvage {
				return err
			}
			r.problemKind(r.pos, damage.Missing, "%v", err)
		}
	}
	r.res.TailsTrusted = trust
	r.res.Devices = r.res.Devices[:0]
	for id := range r.devs {
		d := r.devs[id]
		if d == nil {
			continue
		}
		cs, dm, merged := d.m.summarize(d.dev.Clusters(), d.dev.Size, d.dmg, d.prov, trust, r.rangeLimit())
		r.res.Devices = append(r.res.Devices, DeviceResult{Device: d.dev, Clusters: cs, Damage: dm, DamageMerged: merged + d.merged})
		if r.res.Headerless {
			r.hdr.Devices = append(r.hdr.Devices, d.dev)
		}
	}
	return nil
}

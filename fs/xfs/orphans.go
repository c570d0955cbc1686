package xfs

import (
	"bytes"
	"fmt"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Bounds on the orphan scan.
const (
	maxInobtNodes = 1 << 20
	maxScanBytes  = 1 << 30 // chunk scan of AGs whose inode B+tree is lost
)

// Orphans returns valid files and directories that no directory reaches
// from the root, topmost first: an unreachable directory is returned, not
// its contents. Allocated inodes come from each AG's inode B+tree (sparse
// chunks honoured); where an AGI or the tree is damaged, the AG is scanned
// for inode chunks instead (up to 1 GiB in all). Valid means: the inode
// magic, a file type, links > 0, a good checksum and its own number on v5,
// and not one of the filesystem's own inodes. The scan reads every
// directory and every allocated inode once; the result is cached.
func (f *FS) Orphans() ([]fs.Node, error) {
	f.orphanOne.Do(func() { f.orphans, f.orphanErr = f.findOrphans() })
	return append([]fs.Node(nil), f.orphans...), f.orphanErr
}

// reachWalk marks every inode reachable from dir (directories walked once).
func (f *FS) reachWalk(dir uint64, reached map[uint64]bool) {
	fs.Reach(dir, reached, func(d uint64, visit func(uint64, bool)) {
		in, err := f.readInode(d)
		if err != nil || in.typ() != sIFDIR {
			return
		}
		ents, _, _ := f.dirents(in)
		for _, e := range ents {
			visit(e.ino, !f.ftype || e.ft == 2 || e.ft == 0 || e.ft > 7)
		}
	})
}

// validOrphan reports whether an unreached inode looks like a live file.
func (f *FS) validOrphan(in *inode) bool {
	switch {
	case be.Uint16(in.b) != inodeMagic || !in.validType() || in.nlink == 0:
		return false
	case f.v5 && (!crcOK(in.b, 100) || be.Uint64(in.b[152:]) != in.num):
		return false
	}
	s := f.sb
	for _, x := range []uint64{s.rootIno, s.rbmIno, s.rsumIno, s.uquotIno, s.gquotIno, s.pquotIno} {
		if in.num == x {
			return false
		}
	}
	return true
}

// findOrphans lists the allocated inodes and keeps the valid unreached ones.
func (f *FS) findOrphans() ([]fs.Node, error) {
	reached := map[uint64]bool{}
	f.reachWalk(f.sb.rootIno, reached)
	var cands []fs.Candidate[uint64]
	var problems problemLog
	budget := int64(maxScanBytes)
	for ag := uint32(0); ag < f.sb.agCount; ag++ {
		inos, err := f.allocatedInodes(ag)
		if err != nil {
			problems.Addf("AG %d: %v; scanned for inode chunks instead", ag, err)
			inos = f.scanChunks(ag, &budget, &problems)
		}
		for _, ino := range inos {
			if reached[ino] {
				continue
			}
			in, err := f.readInode(ino)
			if err != nil || !f.validOrphan(in) {
				continue
			}
			cands = append(cands, f.candidate(in))
		}
	}
	out := fs.OrphanTops(cands, reached, func(d uint64) { f.reachWalk(d, reached) })
	if problems.Count() > 0 {
		return out, errDamaged("%s", problems.List()[0])
	}
	return out, nil
}

// allocatedInodes returns the inodes the inode B+tree of AG ag says are
// in use. It fails on any damage to the AGI or the tree.
func (f *FS) allocatedInodes(ag uint32) ([]uint64, error) {
	ss := int64(f.sb.sectSize)
	pos := f.agPos(ag, 0) + 2*ss
	b, err := f.metaBlock(pos, int(ss))
	if err != nil {
		return nil, err
	}
	switch {
	case be.Uint32(b) != agiMagic || be.Uint32(b[8:]) != ag:
		return nil, fmt.Errorf("AGI invalid")
	case f.v5 && !crcOK(b, 312):
		return nil, fmt.Errorf("AGI checksum mismatch")
	case f.suspect(pos, ss):
		return nil, fmt.Errorf("AGI lies in a damaged range")
	}
	root, level := be.Uint32(b[20:]), int(be.Uint32(b[24:]))
	if level < 1 || level > 10 {
		return nil, fmt.Errorf("inode B+tree level %d invalid", level)
	}
	w := inobtWalk{f: f, ag: ag, seen: map[uint32]bool{}}
	if err := w.walk(root, level-1); err != nil {
		return nil, err
	}
	return w.out, nil
}

// inobtWalk reads one AG's inode B+tree.
type inobtWalk struct {
	f    *FS
	ag   uint32
	seen map[uint32]bool
	out  []uint64
}

func (w *inobtWalk) walk(agb uint32, level int) error {
	f := w.f
	if agb >= f.sb.agBlocks || w.seen[agb] || len(w.seen) >= maxInobtNodes {
		return fmt.Errorf("inode B+tree block %d out of range or visited twice", agb)
	}
	w.seen[agb] = true
	pos := f.agPos(w.ag, agb)
	b, err := f.metaBlock(pos, int(f.bs))
	if err != nil {
		return err
	}
	hdr, magic := sblockV4Size, uint32(inobtMagic)
	if f.v5 {
		hdr, magic = sblockV5Size, inob3Magic
	}
	switch {
	case be.Uint32(b) != magic || int(be.Uint16(b[4:])) != level:
		return fmt.Errorf("inode B+tree block %d: bad magic or level", agb)
	case f.v5 && (!crcOK(b, 52) || be.Uint32(b[48:]) != w.ag || !bytes.Equal(b[32:48], f.sb.metaUUID[:])):
		return fmt.Errorf("inode B+tree block %d: checksum mismatch or foreign block", agb)
	case f.suspect(pos, f.bs):
		return fmt.Errorf("inode B+tree block %d lies in a damaged range", agb)
	}
	num := int(be.Uint16(b[6:]))
	if level == 0 {
		if num > (len(b)-hdr)/16 {
			return fmt.Errorf("inode B+tree leaf %d: %d records", agb, num)
		}
		sparse := f.sb.incompat&incompatSpinodes != 0
		for i := 0; i < num; i++ {
			r := b[hdr+16*i:]
			start := be.Uint32(r)
			hole := uint16(0)
			if sparse {
				hole = be.Uint16(r[4:])
			}
			free := be.Uint64(r[8:])
			for j := uint32(0); j < 64; j++ {
				if hole&(1<<(j/4)) != 0 || free&(1<<j) != 0 {
					continue
				}
				w.out = append(w.out, uint64(w.ag)<<f.inoShift|uint64(start+j))
			}
		}
		return nil
	}
	maxr := (len(b) - hdr) / 8
	if num > maxr {
		return fmt.Errorf("inode B+tree node %d: %d records", agb, num)
	}
	ptrs := make([]uint32, num)
	for i := range ptrs {
		ptrs[i] = be.Uint32(b[hdr+4*maxr+4*i:])
	}
	for _, p := range ptrs {
		if err := w.walk(p, level-1); err != nil {
			return err
		}
	}
	return nil
}

// scanChunks finds the inodes of AG ag by reading its blocks and keeping
// every slot that holds a plausible inode (magic, version, and on v5 its
// own number), within the shared byte budget.
func (f *FS) scanChunks(ag uint32, budget *int64, problems *problemLog) []uint64 {
	var out []uint64
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	agBytes := int64(f.sb.agBlocks) * f.bs
	base := f.agPos(ag, 0)
	isz := int64(f.sb.inodeSize)
	for off := int64(0); off < agBytes; off += chunk {
		if *budget <= 0 {
			problems.Addf("AG %d: inode scan stopped at %d bytes", ag, off)
			return out
		}
		n := min(int64(chunk), agBytes-off)
		*budget -= n
		if f.readAt(buf[:n], base+off) != nil {
			continue
		}
		for s := int64(0); s+isz <= n; s += isz {
			b := buf[s : s+isz]
			if be.Uint16(b) != inodeMagic {
				continue
			}
			ino := uint64(ag)<<f.inoShift | uint64((off+s)/isz)
			v := b[4]
			if f.v5 && (v != 3 || be.Uint64(b[152:]) != ino) || !f.v5 && v != 1 && v != 2 {
				continue
			}
			out = append(out, ino)
		}
	}
	return out
}

// candidate describes an unreached inode for fs.OrphanTops.
func (f *FS) candidate(in *inode) fs.Candidate[uint64] {
	return fs.Candidate[uint64]{Node: in.num, Dir: in.typ() == sIFDIR, Parent: func() uint64 {
		_, p, _ := f.dirents(in)
		return p
	}}
}

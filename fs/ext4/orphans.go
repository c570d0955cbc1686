package ext4

import (
	"github.com/vzsalvage/vzsalvage/fs"
)

// maxOrphanChain bounds the walk of the on-disk orphan list.
const maxOrphanChain = 1 << 20

// Orphans returns valid files and directories that no directory reaches
// from the root, topmost first: an unreachable directory is returned, not
// its contents. Valid means: in use (per the inode bitmap where the group
// descriptor and bitmap checksum can be trusted), a file type, links > 0,
// no deletion time, a good checksum where metadata_csum is on, not an EA
// inode, not a reserved inode, and not on the orphan list (files deleted
// while open, which the kernel frees on the next mount). The scan reads
// every directory and every in-use inode once; the result is cached.
func (f *FS) Orphans() ([]fs.Node, error) {
	f.orphanOnce.Do(func() { f.orphans, f.orphansErr = f.findOrphans() })
	return append([]fs.Node(nil), f.orphans...), f.orphansErr
}

// reachWalk marks every inode reachable from dir (directories walked once).
func (f *FS) reachWalk(dir uint32, reached map[uint32]bool) {
	fs.Reach(dir, reached, func(d uint32, visit func(uint32, bool)) {
		in, err := f.readInode(d)
		if err != nil || in.typ() != sIFDIR {
			return
		}
		ents, _ := f.dirents(in)
		for _, e := range ents {
			visit(e.ino, !f.filetype() || e.ft == 2 || e.ft == 0 || e.ft > 7)
		}
	})
}

func (f *FS) filetype() bool { return f.sb.incompat&incompatFiletype != 0 }

// orphanList returns the inodes on the superblock's orphan list and in the
// orphan file.
func (f *FS) orphanList() map[uint32]bool {
	set := make(map[uint32]bool)
	for ino, n := f.sb.lastOrphan, 0; ino != 0 && !set[ino] && n < maxOrphanChain; n++ {
		set[ino] = true
		in, err := f.readInode(ino)
		if err != nil {
			break
		}
		ino = in.dtime()
	}
	if f.sb.compat&compatOrphanFile != 0 && f.sb.orphanFileInum != 0 {
		if in, err := f.readInode(f.sb.orphanFileInum); err == nil && f.hasBlockMap(in) {
			m := f.mapInode(in)
			nb := (uint64(in.size) + uint64(f.bs) - 1) / uint64(f.bs)
			buf := make([]byte, f.bs)
			for _, r := range m.Runs {
				if r.Kind != runData {
					continue
				}
				for i := uint64(0); i < r.N && r.Off+i < nb; i++ {
					if f.readBlock(buf, r.Phys+i) != nil {
						continue
					}
					for p := 0; p+4 <= len(buf)-8; p += 4 {
						if v := le.Uint32(buf[p:]); v != 0 && v <= f.inodesCount {
							set[v] = true
						}
					}
				}
			}
		}
	}
	return set
}

// dotdot returns the parent named by a directory's ".." entry, or 0.
func (f *FS) dotdot(in *inode) uint32 {
	if !f.hasBlockMap(in) {
		return le.Uint32(in.iblock())
	}
	m := f.mapInode(in)
	if len(m.Runs) == 0 || m.Runs[0].Off != 0 || m.Runs[0].Kind != runData {
		return 0
	}
	b := make([]byte, f.bs)
	if f.readBlock(b, m.Runs[0].Phys) != nil {
		return 0
	}
	p := &dirParser{bs: int(f.bs), filetype: f.filetype()}
	_, rl, _, _ := p.header(b)
	if rl < 12 || rl+12 > len(b) {
		return 0
	}
	ino, _, nl, _ := p.header(b[rl:])
	if nl != 2 || b[rl+8] != '.' || b[rl+9] != '.' {
		return 0
	}
	return ino
}

// validOrphan reports whether an unreached inode looks like a live file.
// A deletion time is tolerated only where a trusted bitmap says the inode
// is in use (e2fsck then clears the stray dtime and keeps the file).
func (f *FS) validOrphan(in *inode, listed map[uint32]bool, inUse bool) bool {
	switch {
	case !in.validType() || in.links == 0 || in.dtime() != 0 && !inUse:
		return false
	case f.metadataCsum && !in.csumOK:
		return false
	case in.flags&flagEAInode != 0 || listed[in.num]:
		return false
	case in.num == f.sb.journalInum || in.num == f.sb.orphanFileInum:
		return false
	case in.flags&flagExtents != 0 && f.hasBlockMap(in):
		h := in.iblock()
		return le.Uint16(h) == extentMagic && le.Uint16(h[2:]) <= 4 && le.Uint16(h[6:]) <= extentMaxDepth
	}
	return true
}

// findOrphans scans the inode tables for valid inodes that the directory
// tree does not reach.
func (f *FS) findOrphans() ([]fs.Node, error) {
	reached := make(map[uint32]bool)
	f.reachWalk(rootIno, reached)
	listed := f.orphanList()
	first := f.sb.firstIno
	ipg := uint64(f.sb.inodesPerGroup)
	groupCsum := f.metadataCsum || f.sb.roCompat&roCompatGdtCsum != 0
	bitmap := make([]byte, f.bs)
	var cands []fs.Candidate[uint32]
	var problems int
	// Corrupt descriptors may point many groups at the same table, or past
	// the volume: each table is scanned once, and no more inodes than the
	// volume can hold.
	tables := make(map[uint64]bool)
	budget := f.size / f.inodeSize
	for g := uint64(0); g < f.groups && budget > 0; g++ {
		d := &f.gd[g]
		if d.source == gdNone || tables[d.inodeTable] || int64(d.inodeTable) >= f.size/f.bs {
			problems++
			continue
		}
		tables[d.inodeTable] = true
		used := ipg
		var bm []byte
		if f.groupTrusted(g) && groupCsum {
			if d.flags&bgInodeUninit != 0 {
				continue
			}
			if d.itableUnused <= uint32(ipg) {
				used = ipg - uint64(d.itableUnused)
			}
		}
		if f.groupTrusted(g) && d.inodeBitmap < f.sb.blocksCount && f.readBlock(bitmap, d.inodeBitmap) == nil &&
			!f.suspectBlock(d.inodeBitmap) {
			ok := true
			if f.metadataCsum {
				c := crc32c(f.csumSeed, bitmap[:ipg/8])
				if f.sb.descBytes() < 0x3C {
					c &= 0xFFFF
					ok = c == d.ibitmapCsum&0xFFFF
				} else {
					ok = c == d.ibitmapCsum
				}
			}
			if ok {
				bm = bitmap
			}
		}
		for i := uint64(0); i < used; i++ {
			ino64 := g*ipg + i + 1
			if ino64 > uint64(f.inodesCount) {
				break
			}
			ino := uint32(ino64)
			if ino < first || reached[ino] {
				continue
			}
			if budget--; budget < 0 {
				break
			}
			if bm != nil && bm[i/8]&(1<<(i%8)) == 0 {
				continue
			}
			in, err := f.readInode(ino)
			if err != nil || !f.validOrphan(in, listed, bm != nil) {
				continue
			}
			cands = append(cands, f.candidate(in))
		}
	}
	out := fs.OrphanTops(cands, reached, func(d uint32) { f.reachWalk(d, reached) })
	if problems > 0 {
		return out, errDamaged("%d groups could not be scanned", problems)
	}
	return out, nil
}

// candidate describes an unreached inode for fs.OrphanTops.
func (f *FS) candidate(in *inode) fs.Candidate[uint32] {
	return fs.Candidate[uint32]{Node: in.num, Dir: in.typ() == sIFDIR, Parent: func() uint32 { return f.dotdot(in) }}
}

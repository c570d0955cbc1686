package ext4

import (
	"github.com/vzsalvage/vzsalvage/fs/runmap"
)

// Kinds of runs in a block map.
const (
	runData      = runmap.Data
	runUnwritten = runmap.Unwritten
	runUnknown   = runmap.Unknown
)

// maxTreeNodes bounds the extent tree or indirect blocks one block map
// visits, whatever the disk says (a 2 TiB ext3 file has 2^19).
const maxTreeNodes = 1 << 19

// run maps logical blocks [Off, Off+N) of a file to volume blocks from Phys.
type run = runmap.Run

// blockMap is a file's logical-to-physical map, the tree or indirect
// blocks it was read from, and what was wrong with it.
type blockMap struct {
	runmap.Map
	meta    []uint64
	visited map[uint64]bool
	nodes   int
}

// add appends a run in increasing logical order (runmap.Map.Append).
func (m *blockMap) add(lblk, pblk, n uint64, kind uint8) {
	m.Append(run{Off: lblk, Phys: pblk, N: n, Kind: kind})
}

// hasBlockMap reports whether the inode's content is found through a block
// map (extents or indirect blocks) rather than in the inode itself.
func (f *FS) hasBlockMap(in *inode) bool {
	if in.flags&flagInlineData != 0 && f.sb.incompat&incompatInlineData != 0 {
		return false
	}
	switch in.typ() {
	case sIFREG, sIFDIR:
		return true
	case sIFLNK:
		return !f.fastSymlink(in)
	}
	return false
}

// fastSymlink reports whether a symlink's target is stored in i_block.
func (f *FS) fastSymlink(in *inode) bool {
	if in.size >= inlineDataISize {
		return false
	}
	if in.flags&flagExtents != 0 {
		return le.Uint16(in.iblock()) != extentMagic || le.Uint16(in.iblock()[2:]) == 0
	}
	blocks := uint64(le.Uint32(in.b[0x1C:]))
	if in.fileACL() != 0 {
		ea := uint64(f.bs / 512) // one cluster, in 512-byte units
		if f.sb.roCompat&roCompatBigalloc != 0 && f.sb.logClusterSize >= f.sb.logBlockSize && f.sb.logClusterSize < 16 {
			ea = uint64(minBlockSize<<f.sb.logClusterSize) / 512
		}
		if blocks >= ea {
			blocks -= ea
		}
	}
	return blocks == 0
}

// mapInode reads an inode's block map (extent trees are read whole;
// indirect maps up to the blocks its size covers, or for a directory up to
// maxDirBytes, since salvage reads directory blocks past a wrong size).
func (f *FS) mapInode(in *inode) *blockMap {
	m := &blockMap{visited: make(map[uint64]bool)}
	nblocks := (uint64(in.size) + uint64(f.bs) - 1) / uint64(f.bs)
	if in.typ() == sIFDIR {
		nblocks = max(nblocks, maxDirBytes/uint64(f.bs))
	}
	if in.flags&flagExtents != 0 {
		f.walkExtents(in, m, in.iblock(), -1, 0, 1<<32)
	} else {
		f.walkIndirect(in, m, nblocks)
	}
	m.visited = nil
	return m
}

// walkExtents adds the extents of one tree node covering logical blocks
// [lo, hi). depth is the depth the node must have (-1 for the root).
func (f *FS) walkExtents(in *inode, m *blockMap, node []byte, want int, lo, hi uint64) {
	unknown := func(why string, args ...any) {
		m.AddProblem("extent tree: "+why, args...)
		m.add(lo, 0, hi-lo, runUnknown)
	}
	if len(node) < 12 || le.Uint16(node) != extentMagic {
		unknown("bad header magic for blocks %d-%d", lo, hi-1)
		return
	}
	entries := int(le.Uint16(node[2:]))
	depth := int(le.Uint16(node[6:]))
	if room := (len(node) - 12) / 12; entries > room {
		m.AddProblem("extent node claims %d entries, room for %d", entries, room)
		entries = room
	}
	if depth > extentMaxDepth || (want >= 0 && depth != want) {
		unknown("node depth %d invalid for blocks %d-%d", depth, lo, hi-1)
		return
	}
	if depth == 0 {
		for i := range entries {
			e := node[12+12*i:]
			lb := uint64(le.Uint32(e[0:]))
			n := uint64(le.Uint16(e[4:]))
			kind := runData
			if n > extentInitMax {
				n -= extentInitMax
				kind = runUnwritten
			}
			pb := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			switch {
			case n == 0:
				m.AddProblem("extent at block %d has length 0", lb)
				continue
			case lb < lo || lb+n > hi:
				m.AddProblem("extent %d-%d outside its index range %d-%d", lb, lb+n-1, lo, hi-1)
				continue
			case pb == 0 || pb >= f.sb.blocksCount || f.sb.blocksCount-pb < n:
				m.AddProblem("extent %d-%d points outside the filesystem (block %d)", lb, lb+n-1, pb)
				m.add(lb, 0, n, runUnknown)
				continue
			}
			m.add(lb, pb, n, kind)
		}
		return
	}
	for i := range entries {
		e := node[12+12*i:]
		start := uint64(le.Uint32(e[0:]))
		end := hi
		if i+1 < entries {
			end = uint64(le.Uint32(node[12+12*(i+1):]))
		}
		if i == 0 && start > lo {
			start = lo // the first index covers everything from lo
		}
		if start < lo || end > hi || start >= end {
			m.AddProblem("extent index %d: range %d-%d invalid", i, start, end)
			continue
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		switch {
		case child == 0 || child >= f.sb.blocksCount:
			m.AddProblem("extent index points outside the filesystem (block %d)", child)
			m.add(start, 0, end-start, runUnknown)
			continue
		case m.visited[child]:
			m.AddProblem("extent tree loop at block %d", child)
			m.add(start, 0, end-start, runUnknown)
			continue
		case m.nodes >= maxTreeNodes:
			m.AddProblem("extent tree too large")
			m.add(start, 0, end-start, runUnknown)
			continue
		}
		m.visited[child] = true
		m.nodes++
		m.meta = append(m.meta, child)
		b, err := f.metaBlock(child)
		if err != nil {
			m.AddProblem("extent block %d unreadable: %v", child, err)
			m.add(start, 0, end-start, runUnknown)
			continue
		}
		if f.suspectBlock(child) {
			m.AddProblem("extent block %d lies in a damaged range", child)
		}
		if f.metadataCsum && le.Uint16(b) == extentMagic {
			tail := 12 + 12*int(le.Uint16(b[4:]))
			if tail+4 <= len(b) && crc32c(f.inodeSeed(in.num, in.generation()), b[:tail]) != le.Uint32(b[tail:]) {
				m.AddProblem("extent block %d checksum mismatch", child)
			}
		}
		f.walkExtents(in, m, b, depth-1, start, end)
	}
}

// walkIndirect reads an ext2/3 block map: 12 direct blocks, then single,
// double and triple indirect blocks, for logical blocks below nblocks.
func (f *FS) walkIndirect(in *inode, m *blockMap, nblocks uint64) {
	ib := in.iblock()
	for i := uint64(0); i < 12 && i < nblocks; i++ {
		f.indirectData(m, i, uint64(le.Uint32(ib[4*i:])))
	}
	per := uint64(f.bs / 4)
	base := uint64(12)
	span := per
	for level := 1; level <= 3 && base < nblocks; level++ {
		f.walkInd(m, uint64(le.Uint32(ib[4*(11+level):])), level, base, nblocks)
		base += span
		span *= per
	}
}

// indirectData adds data block p at logical block lb.
func (f *FS) indirectData(m *blockMap, lb, p uint64) {
	switch {
	case p == 0:
	case p >= f.sb.blocksCount:
		m.AddProblem("block %d points outside the filesystem (%d)", lb, p)
		m.add(lb, 0, 1, runUnknown)
	default:
		m.add(lb, p, 1, runData)
	}
}

// walkInd adds the blocks mapped by indirect block blk of the given level
// (1 = single), whose first logical block is base.
func (f *FS) walkInd(m *blockMap, blk uint64, level int, base, nblocks uint64) {
	per := uint64(f.bs / 4)
	span := uint64(1)
	for range level {
		span *= per
	}
	end := min(base+span, nblocks)
	if blk == 0 {
		return
	}
	bad := ""
	switch {
	case blk >= f.sb.blocksCount || blk < uint64(f.sb.firstDataBlock):
		bad = "points outside the filesystem"
	case m.visited[blk]:
		bad = "is visited twice (loop)"
	case m.nodes >= maxTreeNodes:
		bad = "exceeds the map size limit"
	}
	if bad != "" {
		m.AddProblem("indirect block %d %s", blk, bad)
		m.add(base, 0, end-base, runUnknown)
		return
	}
	m.visited[blk] = true
	m.nodes++
	m.meta = append(m.meta, blk)
	b, err := f.metaBlock(blk)
	if err != nil {
		m.AddProblem("indirect block %d unreadable: %v", blk, err)
		m.add(base, 0, end-base, runUnknown)
		return
	}
	if f.suspectBlock(blk) {
		m.AddProblem("indirect block %d lies in a damaged range", blk)
	}
	child := span / per
	for i := uint64(0); i < per; i++ {
		lb := base + i*child
		if lb >= nblocks {
			break
		}
		p := uint64(le.Uint32(b[4*i:]))
		if level == 1 {
			f.indirectData(m, lb, p)
		} else {
			f.walkInd(m, p, level-1, lb, nblocks)
		}
	}
}

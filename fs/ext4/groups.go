package ext4

import (
	"fmt"
)

// Where a group descriptor came from.
const (
	gdNone     uint8 = iota // no usable copy: the group's inodes cannot be read
	gdPrimary               // the primary table, checksum and ranges good
	gdBackup                // a backup copy (flags and counters may be stale)
	gdWeak                  // a copy whose checksum is wrong but ranges are sane
	gdInferred              // the inode table location was inferred from neighbours
)

// maxGroups bounds the group descriptor array whatever the superblock says
// (4M groups is 512 TiB with 4 KiB blocks).
const maxGroups = 1 << 22

// groupDesc holds the fields of a block group descriptor this reader uses.
type groupDesc struct {
	blockBitmap  uint64
	inodeBitmap  uint64
	inodeTable   uint64
	flags        uint16
	itableUnused uint32
	ibitmapCsum  uint32
	source       uint8
}

// parseGroupDesc decodes one descriptor of d bytes (32 or more).
func parseGroupDesc(b []byte) groupDesc {
	g := groupDesc{
		blockBitmap:  uint64(le.Uint32(b[0x00:])),
		inodeBitmap:  uint64(le.Uint32(b[0x04:])),
		inodeTable:   uint64(le.Uint32(b[0x08:])),
		flags:        le.Uint16(b[0x12:]),
		ibitmapCsum:  uint32(le.Uint16(b[0x1A:])),
		itableUnused: uint32(le.Uint16(b[0x1C:])),
	}
	if len(b) >= 64 {
		g.blockBitmap |= uint64(le.Uint32(b[0x20:])) << 32
		g.inodeBitmap |= uint64(le.Uint32(b[0x24:])) << 32
		g.inodeTable |= uint64(le.Uint32(b[0x28:])) << 32
		g.itableUnused |= uint32(le.Uint16(b[0x32:])) << 16
		g.ibitmapCsum |= uint32(le.Uint16(b[0x3A:])) << 16
	}
	return g
}

// groupFirstBlock returns the first block of group g.
func (f *FS) groupFirstBlock(g uint64) uint64 {
	return uint64(f.sb.firstDataBlock) + g*uint64(f.sb.blocksPerGroup)
}

// descCsumOK checks a descriptor's checksum (metadata_csum or gdt_csum). A
// filesystem with neither has nothing to check.
func (f *FS) descCsumOK(g uint64, b []byte) bool {
	stored := le.Uint16(b[0x1E:])
	switch {
	case f.metadataCsum:
		c := crc32cLE32(f.csumSeed, uint32(g))
		c = crc32c(c, b[:0x1E])
		c = crc32c(c, []byte{0, 0})
		c = crc32c(c, b[0x20:])
		return uint16(c) == stored
	case f.sb.roCompat&roCompatGdtCsum != 0:
		c := crc16(0xFFFF, f.sb.uuid[:])
		var gb [4]byte
		le.PutUint32(gb[:], uint32(g))
		c = crc16(c, gb[:])
		c = crc16(c, b[:0x1E])
		if len(b) > 0x20 {
			c = crc16(c, b[0x20:])
		}
		return c == stored
	}
	return true
}

// descSane checks that a descriptor's bitmaps and inode table lie inside
// the filesystem (and inside the group unless flex_bg allows otherwise).
func (f *FS) descSane(g uint64, d *groupDesc) bool {
	n := f.sb.blocksCount
	if d.blockBitmap == 0 || d.blockBitmap >= n || d.inodeBitmap == 0 || d.inodeBitmap >= n ||
		d.inodeTable == 0 || d.inodeTable >= n || n-d.inodeTable < f.itableBlocks {
		return false
	}
	if d.inodeTable < uint64(f.sb.firstDataBlock) {
		return false
	}
	if f.sb.incompat&incompatFlexBG == 0 {
		lo := f.groupFirstBlock(g)
		hi := lo + uint64(f.sb.blocksPerGroup)
		in := func(b uint64) bool { return b >= lo && b < hi }
		if !in(d.blockBitmap) || !in(d.inodeBitmap) || !in(d.inodeTable) {
			return false
		}
	}
	return true
}

// gdtBlockCopies returns the block numbers holding copies of descriptor
// block i, the primary first, then up to a few backups.
func (f *FS) gdtBlockCopies(i uint64, perBlock uint64) []uint64 {
	var out []uint64
	ng := f.groups
	if f.sb.incompat&incompatMetaBG == 0 || i < uint64(f.sb.firstMetaBG) {
		out = append(out, uint64(sbOffset)/uint64(f.bs)+1+i)
		for _, g := range f.backupGroups(5) {
			out = append(out, f.groupFirstBlock(g)+1+i)
		}
		return out
	}
	first := i * perBlock
	for _, g := range []uint64{first, first + 1, first + perBlock - 1} {
		if g >= ng {
			continue
		}
		b := f.groupFirstBlock(g)
		if f.sb.hasSuper(g) {
			b++
		}
		out = append(out, b)
	}
	return out
}

// backupGroups returns up to n groups after group 0 that hold superblock
// and descriptor table backups, in increasing order.
func (f *FS) backupGroups(n int) []uint64 {
	var out []uint64
	switch {
	case f.sb.compat&compatSparseSuper2 != 0:
		for _, g := range f.sb.backupBGs {
			if g != 0 && uint64(g) < f.groups && (len(out) == 0 || out[0] != uint64(g)) {
				out = append(out, uint64(g))
			}
		}
	case f.sb.roCompat&roCompatSparseSuper == 0:
		for g := uint64(1); g < f.groups && len(out) < n; g++ {
			out = append(out, g)
		}
	default:
		// 1 and the powers of 3, 5 and 7, merged in order.
		p3, p5, p7 := uint64(3), uint64(5), uint64(7)
		if f.groups > 1 {
			out = append(out, 1)
		}
		for len(out) < n {
			g := min(p3, p5, p7)
			if g >= f.groups {
				break
			}
			out = append(out, g)
			switch g {
			case p3:
				p3 *= 3
			case p5:
				p5 *= 5
			default:
				p7 *= 7
			}
		}
	}
	return out
}

// loadGroups reads the group descriptor table. Each descriptor comes from
// the first copy (primary, then backups; backups first where the primary
// lies in damage) whose checksum and ranges are good; failing that a sane
// copy with a bad checksum, failing that an inode table location inferred
// from its neighbours. Groups with none are unusable.
func (f *FS) loadGroups() []string {
	var problems []string
	ds := uint64(f.sb.descBytes())
	perBlock := uint64(f.bs) / ds
	ng := f.groups
	f.gd = make([]groupDesc, ng)
	nblocks := (ng + perBlock - 1) / perBlock
	buf := make([]byte, f.bs)
	for i := uint64(0); i < nblocks; i++ {
		copies := f.gdtBlockCopies(i, perBlock)
		primary := copies[0]
		if len(copies) > 1 && f.suspectBlock(primary) {
			copies = append(copies[1:], primary)
		}
		lo, hi := i*perBlock, min((i+1)*perBlock, ng)
		remaining := hi - lo
		weak := make(map[uint64]groupDesc)
		for _, blk := range copies {
			if remaining == 0 {
				break
			}
			if blk >= f.sb.blocksCount || f.readBlock(buf, blk) != nil {
				continue
			}
			suspect := f.suspectBlock(blk)
			for g := lo; g < hi; g++ {
				if f.gd[g].source != gdNone {
					continue
				}
				raw := buf[(g-lo)*ds : (g-lo+1)*ds]
				d := parseGroupDesc(raw)
				if !f.descSane(g, &d) {
					continue
				}
				if !f.descCsumOK(g, raw) || suspect {
					if _, ok := weak[g]; !ok {
						weak[g] = d
					}
					continue
				}
				d.source = gdPrimary
				if blk != primary {
					d.source = gdBackup
				}
				f.gd[g] = d
				remaining--
			}
		}
		for g := lo; g < hi; g++ {
			if f.gd[g].source != gdNone {
				continue
			}
			if d, ok := weak[g]; ok {
				d.source = gdWeak
				f.gd[g] = d
			}
		}
	}
	// One line per damaged group, up to a few; then totals.
	const maxLines = 8
	var backup, weakN, inferred, lost int
	note := func(format string, args ...any) {
		if backup+weakN+inferred+lost <= maxLines {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for g := uint64(0); g < ng; g++ {
		switch f.gd[g].source {
		case gdBackup:
			backup++
			note("group %d: descriptor taken from a backup copy", g)
		case gdWeak:
			weakN++
			note("group %d: descriptor checksum mismatch or damaged, used anyway", g)
		case gdNone:
			switch {
			case g == 0 && f.findRootTable():
				inferred++
				note("group 0: descriptor unusable, inode table found by searching for the root directory")
			case f.inferGroup(g):
				inferred++
				note("group %d: descriptor unusable, inode table location inferred", g)
			default:
				lost++
				note("group %d: descriptor unusable, its inodes cannot be read", g)
			}
		}
	}
	if n := backup + weakN + inferred + lost; n > maxLines {
		problems = append(problems, fmt.Sprintf("%d group descriptors damaged in all: %d from backups, %d with bad checksums, %d inferred, %d lost",
			n, backup, weakN, inferred, lost))
	}
	return problems
}

// inferGroup guesses group g's inode table from its neighbours: with
// flex_bg, inode tables of a flex group are laid out back to back; without
// it, mke2fs's fixed layout puts them after the bitmaps at the group's start.
func (f *FS) inferGroup(g uint64) bool {
	good := func(x uint64) bool {
		s := f.gd[x].source
		return s == gdPrimary || s == gdBackup || s == gdWeak
	}
	itb := f.itableBlocks
	var guess uint64
	if f.sb.incompat&incompatFlexBG != 0 {
		flex := uint64(1) << min(f.sb.logGroupsPerFlex, 31)
		start := g / flex * flex
		switch {
		case g > start && f.gd[g-1].source != gdNone:
			guess = f.gd[g-1].inodeTable + itb
		case g+1 < f.groups && (g+1)/flex*flex == start && good(g+1) && f.gd[g+1].inodeTable >= itb:
			guess = f.gd[g+1].inodeTable - itb
		default:
			return false
		}
	} else {
		layout := func(x uint64) uint64 {
			b := f.groupFirstBlock(x)
			if f.sb.hasSuper(x) && f.sb.incompat&incompatMetaBG == 0 {
				b += 1 + f.gdtBlocks + uint64(f.sb.reservedGdt)
			}
			return b + 2
		}
		// Trust the formula only where a neighbour follows it.
		ok := false
		for _, x := range []uint64{g - 1, g + 1} {
			if x < f.groups && good(x) && f.gd[x].inodeTable == layout(x) {
				ok = true
			}
		}
		if !ok {
			return false
		}
		guess = layout(g)
	}
	if guess == 0 || guess >= f.sb.blocksCount || f.sb.blocksCount-guess < itb {
		return false
	}
	f.gd[g] = groupDesc{inodeTable: guess, source: gdInferred}
	return true
}

// groupTrusted reports whether group g's descriptor flags, unused-inode
// count and inode bitmap may be believed.
func (f *FS) groupTrusted(g uint64) bool {
	return f.gd[g].source == gdPrimary
}

// maxTableSearch bounds the blocks findRootTable examines.
const maxTableSearch = 1 << 16

// findRootTable looks for group 0's inode table when no descriptor copy is
// usable (a filesystem with a single group has no backup): the first block
// whose second inode slot holds a plausible root directory (checksum good
// where metadata_csum is on) whose first block names itself as "." and "..".
func (f *FS) findRootTable() bool {
	lo := uint64(f.sb.firstDataBlock) + 1
	hi := min(f.sb.blocksCount, lo+uint64(f.sb.blocksPerGroup), lo+maxTableSearch)
	slot := make([]byte, f.inodeSize)
	for b := lo; b < hi && b+f.itableBlocks <= f.sb.blocksCount; b++ {
		// The root is inode 2: slot 1 of the table.
		off := int64(b)*f.bs + f.inodeSize
		if f.inodeSize >= f.bs {
			continue
		}
		if f.readRaw(slot, off) != nil {
			continue
		}
		if le.Uint16(slot)&sIFMT != sIFDIR || le.Uint16(slot[0x1A:]) < 2 {
			continue
		}
		in := &inode{num: rootIno, b: append([]byte(nil), slot...), pos: off}
		f.parseInode(in)
		if !in.csumOK || in.size < f.bs {
			continue
		}
		f.gd[0] = groupDesc{inodeTable: b, source: gdInferred}
		if f.rootLooksRight(in) {
			return true
		}
		f.gd[0] = groupDesc{}
	}
	return false
}

// rootLooksRight checks that a candidate root directory's first block
// starts with "." and ".." entries naming inode 2.
func (f *FS) rootLooksRight(in *inode) bool {
	m := f.mapInode(in)
	if len(m.Runs) == 0 || m.Runs[0].Off != 0 || m.Runs[0].Kind != runData {
		return false
	}
	b := make([]byte, f.bs)
	if f.readBlock(b, m.Runs[0].Phys) != nil {
		return false
	}
	p := &dirParser{bs: int(f.bs), filetype: f.filetype()}
	ino, rl, nl, _ := p.header(b)
	if ino != rootIno || nl != 1 || b[8] != '.' || rl < 12 || rl+12 > len(b) {
		return false
	}
	ino, _, nl, _ = p.header(b[rl:])
	return ino == rootIno && nl == 2 && b[rl+8] == '.' && b[rl+9] == '.'
}

package ext4

import (
	"errors"
	"fmt"
)

// superblock holds the fields of an ext2/3/4 superblock this reader uses.
type superblock struct {
	inodesCount      uint32
	blocksCount      uint64
	firstDataBlock   uint32
	logBlockSize     uint32
	logClusterSize   uint32
	blocksPerGroup   uint32
	inodesPerGroup   uint32
	magic            uint16
	revLevel         uint32
	firstIno         uint32
	inodeSize        uint16
	blockGroupNr     uint16
	compat           uint32
	incompat         uint32
	roCompat         uint32
	uuid             [16]byte
	volumeName       [16]byte
	reservedGdt      uint16
	journalInum      uint32
	journalDev       uint32
	lastOrphan       uint32
	jnlBackupType    uint8
	descSize         uint16
	firstMetaBG      uint32
	jnlBlocks        [17]uint32
	logGroupsPerFlex uint8
	backupBGs        [2]uint32
	checksumSeed     uint32
	orphanFileInum   uint32
	checksum         uint32

	csumOK bool // metadata_csum is off, or the checksum matched
}

// parseSuperblock decodes a 1024-byte superblock. It does not validate it.
func parseSuperblock(b []byte) *superblock {
	s := &superblock{
		inodesCount:      le.Uint32(b[0x00:]),
		blocksCount:      uint64(le.Uint32(b[0x04:])),
		firstDataBlock:   le.Uint32(b[0x14:]),
		logBlockSize:     le.Uint32(b[0x18:]),
		logClusterSize:   le.Uint32(b[0x1C:]),
		blocksPerGroup:   le.Uint32(b[0x20:]),
		inodesPerGroup:   le.Uint32(b[0x28:]),
		magic:            le.Uint16(b[0x38:]),
		revLevel:         le.Uint32(b[0x4C:]),
		firstIno:         le.Uint32(b[0x54:]),
		inodeSize:        le.Uint16(b[0x58:]),
		blockGroupNr:     le.Uint16(b[0x5A:]),
		compat:           le.Uint32(b[0x5C:]),
		incompat:         le.Uint32(b[0x60:]),
		roCompat:         le.Uint32(b[0x64:]),
		reservedGdt:      le.Uint16(b[0xCE:]),
		journalInum:      le.Uint32(b[0xE0:]),
		journalDev:       le.Uint32(b[0xE4:]),
		lastOrphan:       le.Uint32(b[0xE8:]),
		jnlBackupType:    b[0xFD],
		descSize:         le.Uint16(b[0xFE:]),
		firstMetaBG:      le.Uint32(b[0x104:]),
		logGroupsPerFlex: b[0x174],
		checksumSeed:     le.Uint32(b[0x270:]),
		orphanFileInum:   le.Uint32(b[0x280:]),
		checksum:         le.Uint32(b[0x3FC:]),
	}
	copy(s.uuid[:], b[0x68:0x78])
	copy(s.volumeName[:], b[0x78:0x88])
	for i := range s.jnlBlocks {
		s.jnlBlocks[i] = le.Uint32(b[0x10C+4*i:])
	}
	s.backupBGs[0] = le.Uint32(b[0x24C:])
	s.backupBGs[1] = le.Uint32(b[0x250:])
	if s.incompat&incompat64Bit != 0 {
		s.blocksCount |= uint64(le.Uint32(b[0x150:])) << 32
	}
	if s.revLevel == 0 {
		s.firstIno = goodOldFirstIno
		s.inodeSize = goodOldInodeSize
	}
	s.csumOK = true
	if s.roCompat&roCompatMetadataCsum != 0 {
		s.csumOK = crc32c(^uint32(0), b[:0x3FC]) == s.checksum
	}
	return s
}

func (s *superblock) blockSize() int64 { return minBlockSize << s.logBlockSize }

// descBytes is the size of one group descriptor.
func (s *superblock) descBytes() int {
	if s.incompat&incompat64Bit != 0 {
		return int(s.descSize)
	}
	return 32
}

// groupCount is the number of block groups.
func (s *superblock) groupCount() uint64 {
	return (s.blocksCount - uint64(s.firstDataBlock) + uint64(s.blocksPerGroup) - 1) / uint64(s.blocksPerGroup)
}

// validate checks that the superblock's geometry is usable: every value later
// code divides by or sizes a loop with is in range. It does not check the
// checksum (see csumOK).
func (s *superblock) validate() error {
	switch {
	case s.magic != sbMagic:
		return errors.New("bad magic")
	case s.logBlockSize > 6:
		return fmt.Errorf("block size 2^%d out of range", 10+s.logBlockSize)
	}
	bs := s.blockSize()
	switch {
	case s.blocksPerGroup < 8 || int64(s.blocksPerGroup) > 8*bs && s.roCompat&roCompatBigalloc == 0:
		return fmt.Errorf("blocks per group %d out of range", s.blocksPerGroup)
	case s.inodesPerGroup == 0 || int64(s.inodesPerGroup) > 8*bs:
		return fmt.Errorf("inodes per group %d out of range", s.inodesPerGroup)
	case s.inodeSize < goodOldInodeSize || int64(s.inodeSize) > bs || s.inodeSize&(s.inodeSize-1) != 0:
		return fmt.Errorf("inode size %d invalid", s.inodeSize)
	case s.blocksCount == 0 || s.blocksCount >= 1<<48:
		return fmt.Errorf("block count %d invalid", s.blocksCount)
	case uint64(s.firstDataBlock) >= s.blocksCount || s.firstDataBlock > 1:
		return fmt.Errorf("first data block %d invalid", s.firstDataBlock)
	case s.inodesCount == 0:
		return errors.New("no inodes")
	case s.firstIno < 3 && s.revLevel > 0:
		return fmt.Errorf("first inode %d invalid", s.firstIno)
	}
	if s.incompat&incompat64Bit != 0 {
		d := s.descSize
		if d < 32 || d > 1024 || d&(d-1) != 0 {
			return fmt.Errorf("group descriptor size %d invalid", d)
		}
	}
	return nil
}

// hasSuper reports whether group g holds a superblock backup (and, outside
// meta_bg, a copy of the group descriptor table).
func (s *superblock) hasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if s.compat&compatSparseSuper2 != 0 {
		return g == uint64(s.backupBGs[0]) || g == uint64(s.backupBGs[1])
	}
	if g <= 1 || s.roCompat&roCompatSparseSuper == 0 {
		return true
	}
	if g&1 == 0 {
		return false
	}
	return isPower(g, 3) || isPower(g, 5) || isPower(g, 7)
}

func isPower(g, base uint64) bool {
	for g > 1 && g%base == 0 {
		g /= base
	}
	return g == 1
}

// fsType names the filesystem the way mount(8) would.
func (s *superblock) fsType() string {
	const ext4Incompat = incompatExtents | incompat64Bit | incompatFlexBG | incompatMMP |
		incompatEAInode | incompatCsumSeed | incompatLargeDir | incompatInlineData |
		incompatEncrypt | incompatMetaBG
	const ext4RoCompat = roCompatHugeFile | roCompatGdtCsum | roCompatDirNlink |
		roCompatExtraIsize | roCompatBigalloc | roCompatMetadataCsum
	switch {
	case s.incompat&ext4Incompat != 0 || s.roCompat&ext4RoCompat != 0:
		return "ext4"
	case s.compat&compatHasJournal != 0:
		return "ext3"
	}
	return "ext2"
}

// sbCandidate is one superblock copy found on the volume.
type sbCandidate struct {
	sb    *superblock
	group uint64 // block group holding the copy (0 = primary)
	off   int64  // byte offset on the volume
}

// backupGroups lists the groups probed for backup superblocks when the
// primary cannot be used and its geometry is unknown (as e2fsck does).
var backupGroups = []uint64{1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343}

// findSuperblock picks the superblock to use: the primary when it is valid,
// has a good checksum and is not in the damage map, else the first backup
// that is; failing that, the best valid copy with a bad checksum. It returns
// the problems met on the way.
func (f *FS) findSuperblock() (sbCandidate, []string, error) {
	var problems []string
	buf := make([]byte, sbSize)
	try := func(off int64, group uint64) (sbCandidate, bool) {
		if off < 0 || off+sbSize > f.size {
			return sbCandidate{}, false
		}
		if err := f.readRaw(buf, off); err != nil {
			return sbCandidate{}, false
		}
		sb := parseSuperblock(buf)
		if sb.validate() != nil {
			return sbCandidate{}, false
		}
		if group != 0 && sb.revLevel > 0 && uint64(sb.blockGroupNr) != group {
			return sbCandidate{}, false
		}
		return sbCandidate{sb: sb, group: group, off: off}, true
	}

	var fallback *sbCandidate
	primary, ok := try(sbOffset, 0)
	switch {
	case ok && primary.sb.csumOK && !f.suspect(sbOffset, sbSize):
		return primary, nil, nil
	case ok && !primary.sb.csumOK:
		problems = append(problems, "primary superblock checksum mismatch")
		fallback = &primary
	case ok:
		problems = append(problems, "primary superblock lies in a damaged range")
		fallback = &primary
	default:
		problems = append(problems, "primary superblock unreadable or invalid")
	}

	// Backups: where the primary's geometry says (if it was parseable), then
	// at the default geometry for every block size.
	type geo struct{ bs, bpg, first int64 }
	var geos []geo
	if fallback != nil {
		s := fallback.sb
		geos = append(geos, geo{s.blockSize(), int64(s.blocksPerGroup), int64(s.firstDataBlock)})
	}
	for bs := int64(minBlockSize); bs <= maxBlockSize; bs <<= 1 {
		first := int64(0)
		if bs == minBlockSize {
			first = 1
		}
		geos = append(geos, geo{bs, 8 * bs, first})
	}
	var weak *sbCandidate
	probe := func(g geo, grp uint64) (sbCandidate, bool) {
		off := (g.first + int64(grp)*g.bpg) * g.bs
		if off <= 0 || off >= f.size {
			return sbCandidate{}, false
		}
		c, ok := try(off, grp)
		if !ok || c.sb.blockSize() != g.bs || int64(c.sb.blocksPerGroup) != g.bpg {
			return sbCandidate{}, false
		}
		if c.sb.csumOK && !f.suspect(off, sbSize) {
			problems = append(problems, fmt.Sprintf("using backup superblock of group %d", grp))
			return c, true
		}
		if weak == nil {
			weak = &c
		}
		return sbCandidate{}, false
	}
	for _, g := range geos {
		for _, grp := range backupGroups {
			if c, ok := probe(g, grp); ok {
				return c, problems, nil
			}
		}
	}
	// Non-default group sizes (mke2fs -g): group 1 at every multiple of 256
	// blocks, a few thousand small reads at most.
	if fallback == nil && weak == nil {
		for bs := int64(minBlockSize); bs <= maxBlockSize; bs <<= 1 {
			first := int64(0)
			if bs == minBlockSize {
				first = 1
			}
			for bpg := int64(256); bpg < 8*bs && (first+bpg)*bs < f.size; bpg += 256 {
				if c, ok := probe(geo{bs, bpg, first}, 1); ok {
					return c, problems, nil
				}
			}
		}
	}
	switch {
	case fallback != nil:
		return *fallback, problems, nil
	case weak != nil:
		problems = append(problems, fmt.Sprintf("using backup superblock of group %d despite problems", weak.group))
		return *weak, problems, nil
	}
	return sbCandidate{}, problems, fmt.Errorf("ext4: no usable superblock: %w", errNotExt)
}

// errNotExt says no ext2/3/4 superblock was found.
var errNotExt = errors.New("not an ext2/3/4 filesystem")

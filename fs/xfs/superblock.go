package xfs

import (
	"errors"
	"fmt"
)

// superblock holds the fields of an XFS superblock this reader uses.
type superblock struct {
	blockSize   uint32
	dblocks     uint64
	uuid        [16]byte
	logStart    uint64
	rootIno     uint64
	rbmIno      uint64
	rsumIno     uint64
	agBlocks    uint32
	agCount     uint32
	logBlocks   uint32
	versionNum  uint16
	sectSize    uint16
	inodeSize   uint16
	inoPerBlock uint16
	fname       [12]byte
	blockLog    uint8
	inodeLog    uint8
	inoPBLog    uint8
	agBlkLog    uint8
	uquotIno    uint64
	gquotIno    uint64
	inoAlignmt  uint32
	dirBlkLog   uint8
	features2   uint32
	incompat    uint32
	roCompat    uint32
	logIncompat uint32
	pquotIno    uint64
	metaUUID    [16]byte

	csumOK bool // v4, or the v5 checksum matched
}

// parseSuperblock decodes a superblock sector. It does not validate it.
func parseSuperblock(b []byte) *superblock {
	s := &superblock{
		blockSize:   be.Uint32(b[4:]),
		dblocks:     be.Uint64(b[8:]),
		logStart:    be.Uint64(b[48:]),
		rootIno:     be.Uint64(b[56:]),
		rbmIno:      be.Uint64(b[64:]),
		rsumIno:     be.Uint64(b[72:]),
		agBlocks:    be.Uint32(b[84:]),
		agCount:     be.Uint32(b[88:]),
		logBlocks:   be.Uint32(b[96:]),
		versionNum:  be.Uint16(b[100:]),
		sectSize:    be.Uint16(b[102:]),
		inodeSize:   be.Uint16(b[104:]),
		inoPerBlock: be.Uint16(b[106:]),
		blockLog:    b[120],
		inodeLog:    b[122],
		inoPBLog:    b[123],
		agBlkLog:    b[124],
		uquotIno:    be.Uint64(b[160:]),
		gquotIno:    be.Uint64(b[168:]),
		inoAlignmt:  be.Uint32(b[180:]),
		dirBlkLog:   b[192],
		features2:   be.Uint32(b[200:]),
	}
	copy(s.uuid[:], b[32:48])
	copy(s.fname[:], b[108:120])
	s.csumOK = true
	if s.v5() {
		s.roCompat = be.Uint32(b[212:])
		s.incompat = be.Uint32(b[216:])
		s.logIncompat = be.Uint32(b[220:])
		s.pquotIno = be.Uint64(b[232:])
		copy(s.metaUUID[:], b[248:264])
		n := int(s.sectSize)
		if n < 512 || n > len(b) {
			n = 512
		}
		s.csumOK = crcOK(b[:n], 224)
	}
	if s.incompat&incompatMetaUUID == 0 {
		s.metaUUID = s.uuid
	}
	return s
}

// v5 reports a version 5 (CRC) filesystem.
func (s *superblock) v5() bool { return s.versionNum&versionNumMask == 5 }

// ftype reports whether directory entries carry a file type.
func (s *superblock) ftype() bool {
	if s.v5() {
		return s.incompat&incompatFtype != 0
	}
	return s.versionNum&versionMoreBits != 0 && s.features2&features2Ftype != 0
}

// validate checks that the geometry is usable: every value later code
// divides by, shifts by or sizes a loop with is in range and consistent.
func (s *superblock) validate(magic uint32) error {
	switch {
	case magic != sbMagic:
		return errors.New("bad magic")
	case s.versionNum&versionNumMask != 4 && s.versionNum&versionNumMask != 5:
		return fmt.Errorf("version %d not supported", s.versionNum&versionNumMask)
	case s.blockLog < 9 || s.blockLog > 16 || s.blockSize != 1<<s.blockLog:
		return fmt.Errorf("block size %d invalid", s.blockSize)
	case s.sectSize < 512 || s.sectSize&(s.sectSize-1) != 0 || uint32(s.sectSize) > s.blockSize:
		return fmt.Errorf("sector size %d invalid", s.sectSize)
	case s.inodeLog < 8 || s.inodeLog > 11 || s.inodeSize != 1<<s.inodeLog || uint32(s.inodeSize) > s.blockSize:
		return fmt.Errorf("inode size %d invalid", s.inodeSize)
	case s.inoPBLog != s.blockLog-s.inodeLog || s.inoPerBlock != 1<<s.inoPBLog:
		return fmt.Errorf("inodes per block %d invalid", s.inoPerBlock)
	case s.agBlocks < 16 || s.agBlkLog > 31 || uint64(s.agBlocks) > 1<<s.agBlkLog || uint64(s.agBlocks) <= 1<<s.agBlkLog>>1:
		return fmt.Errorf("AG size %d blocks (log %d) invalid", s.agBlocks, s.agBlkLog)
	case s.agCount == 0 || s.agCount > 1<<20:
		return fmt.Errorf("AG count %d invalid", s.agCount)
	case s.dblocks == 0 || s.dblocks > uint64(s.agCount)*uint64(s.agBlocks) ||
		s.dblocks <= uint64(s.agCount-1)*uint64(s.agBlocks):
		return fmt.Errorf("block count %d does not fit %d AGs of %d blocks", s.dblocks, s.agCount, s.agBlocks)
	case uint32(s.dirBlkLog)+uint32(s.blockLog) > 16:
		return fmt.Errorf("directory block size 2^%d invalid", uint32(s.dirBlkLog)+uint32(s.blockLog))
	case s.v5() && s.inodeSize < 512:
		return fmt.Errorf("inode size %d too small for a v5 filesystem", s.inodeSize)
	}
	return nil
}

// sbCandidate is one superblock copy found on the volume.
type sbCandidate struct {
	sb *superblock
	ag uint32 // allocation group holding the copy (0 = primary)
}

// findSuperblock picks the superblock to use: the primary when it is
// valid, has a good checksum and lies outside the damage map, else the
// first secondary (allocation group 1, 2, ...) that is, found where the
// primary's geometry says or, when the primary is unreadable, where
// mkfs.xfs's geometry for this volume size would put it. It returns the
// problems met on the way.
func (f *FS) findSuperblock() (sbCandidate, []string, error) {
	var problems []string
	buf := make([]byte, 4096)
	try := func(off int64) (*superblock, bool) {
		if off < 0 || off+512 > f.size {
			return nil, false
		}
		n := int64(len(buf))
		if off+n > f.size {
			n = f.size - off
		}
		if err := f.readAt(buf[:n], off); err != nil {
			return nil, false
		}
		clear(buf[n:])
		sb := parseSuperblock(buf)
		if sb.validate(be.Uint32(buf)) != nil {
			return nil, false
		}
		return sb, true
	}
	good := func(sb *superblock, off int64) bool {
		return sb.csumOK && !f.suspect(off, int64(sb.sectSize))
	}
	primary, ok := try(0)
	switch {
	case ok && good(primary, 0):
		return sbCandidate{sb: primary}, nil, nil
	case ok && !primary.csumOK:
		problems = append(problems, "primary superblock checksum mismatch")
	case ok:
		problems = append(problems, "primary superblock lies in a damaged range")
	default:
		problems = append(problems, "primary superblock unreadable or invalid")
		primary = nil
	}
	// Geometries to look for secondaries with: the primary's, then the
	// ones mkfs.xfs would choose for this volume (4 AGs for small volumes,
	// a few other counts, each block size).
	type geo struct{ bs, agBlocks int64 }
	var geos []geo
	if primary != nil {
		geos = append(geos, geo{int64(primary.blockSize), int64(primary.agBlocks)})
	}
	for _, bs := range []int64{4096, 1024, 2048, 512, 8192, 16384, 32768, 65536} {
		blocks := f.size / bs
		for _, ags := range []int64{4, 2, 3, 1, 8, 16, 32, 5, 6, 7} {
			geos = append(geos, geo{bs, (blocks + ags - 1) / ags}, geo{bs, blocks / ags})
		}
	}
	var weak *sbCandidate
	for _, g := range geos {
		if g.agBlocks < 16 {
			continue
		}
		for ag := int64(1); ag < 4; ag++ {
			off := ag * g.agBlocks * g.bs
			sb, ok := try(off)
			if !ok || int64(sb.blockSize) != g.bs || int64(sb.agBlocks) != g.agBlocks || uint32(ag) >= sb.agCount {
				continue
			}
			c := sbCandidate{sb: sb, ag: uint32(ag)}
			if good(sb, off) {
				problems = append(problems, fmt.Sprintf("using the superblock of allocation group %d", ag))
				return c, problems, nil
			}
			if weak == nil {
				weak = &c
			}
		}
	}
	switch {
	case primary != nil:
		return sbCandidate{sb: primary}, problems, nil
	case weak != nil:
		problems = append(problems, fmt.Sprintf("using the superblock of allocation group %d despite problems", weak.ag))
		return *weak, problems, nil
	}
	return sbCandidate{}, problems, fmt.Errorf("xfs: no usable superblock: %w", errNotXFS)
}

// errNotXFS says no XFS superblock was found.
var errNotXFS = errors.New("not an XFS filesystem")

package ext4

import (
	"encoding/binary"
	"hash/crc32"
)

// On-disk constants of ext2/3/4 (Linux Documentation/filesystems/ext4).
const (
	sbOffset = 1024 // byte offset of the primary superblock
	sbSize   = 1024
	sbMagic  = 0xEF53

	minBlockSize = 1024
	maxBlockSize = 65536

	rootIno = 2
	// goodOldFirstIno and goodOldInodeSize apply to revision 0 filesystems.
	goodOldFirstIno  = 11
	goodOldInodeSize = 128
)

// Feature flags.
const (
	compatHasJournal   = 0x0004
	compatExtAttr      = 0x0008
	compatResizeInode  = 0x0010
	compatDirIndex     = 0x0020
	compatSparseSuper2 = 0x0200
	compatOrphanFile   = 0x1000

	incompatFiletype   = 0x0002
	incompatRecover    = 0x0004
	incompatJournalDev = 0x0008
	incompatMetaBG     = 0x0010
	incompatExtents    = 0x0040
	incompat64Bit      = 0x0080
	incompatMMP        = 0x0100
	incompatFlexBG     = 0x0200
	incompatEAInode    = 0x0400
	incompatCsumSeed   = 0x2000
	incompatLargeDir   = 0x4000
	incompatInlineData = 0x8000
	incompatEncrypt    = 0x10000

	roCompatSparseSuper  = 0x0001
	roCompatLargeFile    = 0x0002
	roCompatHugeFile     = 0x0008
	roCompatGdtCsum      = 0x0010
	roCompatDirNlink     = 0x0020
	roCompatExtraIsize   = 0x0040
	roCompatBigalloc     = 0x0200
	roCompatMetadataCsum = 0x0400
)

// Group descriptor flags.
const (
	bgInodeUninit = 0x0001
	bgBlockUninit = 0x0002
)

// Inode flags (i_flags).
const (
	flagIndex      = 0x00001000
	flagEncrypt    = 0x00000800
	flagHugeFile   = 0x00040000
	flagExtents    = 0x00080000
	flagEAInode    = 0x00200000
	flagInlineData = 0x10000000
)

// Inode mode type bits (i_mode & 0xF000).
const (
	sIFMT   = 0xF000
	sIFIFO  = 0x1000
	sIFCHR  = 0x2000
	sIFDIR  = 0x4000
	sIFBLK  = 0x6000
	sIFREG  = 0x8000
	sIFLNK  = 0xA000
	sIFSOCK = 0xC000
)

// Extent tree constants.
const (
	extentMagic    = 0xF30A
	extentMaxDepth = 5
	extentInitMax  = 32768 // ee_len above this marks an unwritten extent
)

// Extended attribute constants.
const (
	xattrMagic      = 0xEA020000
	xattrMaxValue   = 65536   // XATTR_SIZE_MAX: the largest value Linux accepts
	xattrMaxTotal   = 4 << 20 // bytes of attribute values read for one inode
	inlineDataISize = 60      // bytes of inline data held in i_block
)

// Directory constants.
const (
	dirTailFT     = 0xDE // file_type of the checksum tail's fake entry
	dirTailSize   = 12
	maxDirBytes   = 1 << 28 // directories larger than this are read only in part
	maxDirEntries = 1 << 22 // entries returned from one directory
	maxNameLen    = 255
	maxLinkBytes  = 4096 // PATH_MAX: the longest symlink target Linux stores
)

var le = binary.LittleEndian
var be = binary.BigEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the checksum ext4 and jbd2 use: CRC-32C without the final
// inversion, continuing from seed (Linux crc32c_le semantics).
func crc32c(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

// crc32cLE32 continues a crc32c over the little-endian bytes of v.
func crc32cLE32(seed uint32, v uint32) uint32 {
	var b [4]byte
	le.PutUint32(b[:], v)
	return crc32c(seed, b[:])
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return
}()

// crc16 is the CRC-16 (polynomial 0x8005, reflected) of the old uninit_bg
// group descriptor checksum, continuing from crc.
func crc16(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc = crc>>8 ^ crc16Table[byte(crc)^b]
	}
	return crc
}

// isZero reports whether every byte of p is zero.
func isZero(p []byte) bool {
	for len(p) >= 8 {
		if le.Uint64(p) != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

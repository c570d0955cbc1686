package xfs

import (
	"encoding/binary"
	"hash/crc32"
)

// On-disk constants of XFS (the "XFS Algorithms & Data Structures" book,
// and the kernel's libxfs/xfs_format.h and xfs_da_format.h).
const (
	sbMagic    = 0x58465342 // "XFSB"
	inodeMagic = 0x494e     // "IN"
	agiMagic   = 0x58414749 // "XAGI"

	bmapMagic  = 0x424d4150 // "BMAP", v4 bmbt block
	bmap3Magic = 0x424d4133 // "BMA3"
	inobtMagic = 0x49414254 // "IABT"
	inob3Magic = 0x49414233 // "IAB3"

	dir2BlockMagic = 0x58443242 // "XD2B": single-block directory
	dir3BlockMagic = 0x58444233 // "XDB3"
	dir2DataMagic  = 0x58443244 // "XD2D": directory data block
	dir3DataMagic  = 0x58444433 // "XDD3"

	attrLeafMagic  = 0xfbee
	attr3LeafMagic = 0x3bee
	daNodeMagic    = 0xfebe
	da3NodeMagic   = 0x3ebe
	attr3RmtMagic  = 0x5841524d // "XARM"
	symlinkMagic   = 0x58534c4d // "XSLM"

	logRecordMagic = 0xfeedbabe
)

// Superblock feature bits.
const (
	versionNumMask  = 0x000f
	versionMoreBits = 0x8000

	features2Ftype = 0x00000200 // v4: file type in directory entries

	incompatFtype    = 1 << 0
	incompatSpinodes = 1 << 1
	incompatMetaUUID = 1 << 2
	incompatBigtime  = 1 << 3
	incompatNrext64  = 1 << 5
)

// Inode fork formats (di_format, di_aformat).
const (
	fmtDev     = 0
	fmtLocal   = 1
	fmtExtents = 2
	fmtBtree   = 3
)

// Inode di_flags2 bits (v3 inodes).
const (
	flag2Reflink = 1 << 1
	flag2Bigtime = 1 << 3
	flag2Nrext64 = 1 << 4
)

// Inode type bits of di_mode.
const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// Sizes of headers.
const (
	dinodeV2Size = 100 // inode core up to and including di_next_unlinked
	dinodeV3Size = 176

	lblockV4Size = 24 // long-format btree block header
	lblockV5Size = 72
	sblockV4Size = 16 // short-format btree block header
	sblockV5Size = 56

	dataHdrV4 = 16 // directory data/block header
	dataHdrV5 = 64

	daNodeHdrV4   = 16
	daNodeHdrV5   = 64
	attrLeafHdrV4 = 32
	attrLeafHdrV5 = 80
	rmtHdrSize    = 56 // v5 remote attribute value and symlink block header
)

// Attribute entry flags.
const (
	attrLocal      = 1 << 0
	attrRoot       = 1 << 1 // "trusted" namespace
	attrSecure     = 1 << 2 // "security" namespace
	attrParent     = 1 << 3 // parent pointer (internal)
	attrIncomplete = 1 << 7
)

// dir2LeafOffset is the byte offset in a directory's data fork where its
// leaf (index) blocks begin: every entry lies below it.
const dir2LeafOffset = 1 << 35

var (
	be = binary.BigEndian
	le = binary.LittleEndian

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// crcOK verifies an XFS metadata checksum: CRC32c over b with the 4-byte
// field at off taken as zero, stored little endian.
func crcOK(b []byte, off int) bool {
	if off < 0 || off+4 > len(b) {
		return false
	}
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	c = crc32.Update(c, castagnoli, b[off+4:])
	return c == le.Uint32(b[off:])
}

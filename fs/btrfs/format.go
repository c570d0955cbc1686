package btrfs

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/vzsalvage/vzsalvage/fs"
)

// On-disk layout, from btrfs-progs Documentation/dev/On-disk-format.rst
// and the kernel's include/uapi/linux/btrfs_tree.h.

var le = binary.LittleEndian

const (
	superSize   = 4096
	magic       = "_BHRfS_M"
	headerSize  = 0x65 // tree block header
	itemSize    = 25   // leaf item: key, data offset, data size
	keyPtrSize  = 33   // node pointer: key, block pointer, generation
	maxLevel    = 7    // BTRFS_MAX_LEVEL - 1
	sysArrayMax = 2048

	// Superblock fields.
	sbFsid         = 0x20
	sbBytenr       = 0x30
	sbMagic        = 0x40
	sbGeneration   = 0x48
	sbRoot         = 0x50
	sbChunkRoot    = 0x58
	sbLogRoot      = 0x60
	sbTotalBytes   = 0x70
	sbNumDevices   = 0x88
	sbSectorSize   = 0x90
	sbNodeSize     = 0x94
	sbSysArraySize = 0xa0
	sbIncompat     = 0xbc
	sbCsumType     = 0xc4
	sbRootLevel    = 0xc6
	sbChunkLevel   = 0xc7
	sbDevItem      = 0xc9 // devid is its first field
	sbLabel        = 0x12b
	sbMetadataUUID = 0x23b
	sbSysArray     = 0x32b
	sbBackupRoots  = 0xb2b
	backupRootSize = 168

	incompatMetadataUUID = 1 << 10
	incompatRAID56       = 1 << 7

	// Tree block header fields.
	hdrFsid    = 0x20
	hdrBytenr  = 0x30
	hdrNritems = 0x60
	hdrLevel   = 0x64
)

// Tree ids.
const (
	rootTreeID  = 1
	chunkTreeID = 3
	fsTreeID    = 5
	csumTreeID  = 7
	firstFreeID = 256 // the first subvolume id, and the first inode of a tree
	lastFreeID  = ^uint64(0) - 256
	csumObjID   = ^uint64(0) - 9 // BTRFS_EXTENT_CSUM_OBJECTID (-10)
)

// Item types.
const (
	typeInodeItem   = 1
	typeInodeRef    = 12
	typeInodeExtref = 13
	typeXattr       = 24
	typeOrphan      = 48
	typeDirItem     = 84
	typeDirIndex    = 96
	typeExtentData  = 108
	typeExtentCsum  = 128
	typeRootItem    = 132
	typeRootRef     = 156
	typeChunkItem   = 228
)

// Chunk (block group) profile bits.
const (
	bgRAID0   = 1 << 3
	bgRAID10  = 1 << 6
	bgRAID5   = 1 << 7
	bgRAID6   = 1 << 8
	bgStriped = bgRAID0 | bgRAID10 | bgRAID5 | bgRAID6
)

// File extent types and compression.
const (
	extInline   = 0
	extRegular  = 1
	extPrealloc = 2

	compNone = 0
	compZlib = 1
	compLZO  = 2
	compZstd = 3
)

// Inode flags.
const inodeNoDataSum = 1 << 0

// Root item flags.
const rootRdonly = 1 << 0

// key is a btrfs disk key.
type key struct {
	obj uint64
	typ uint8
	off uint64
}

func parseKey(b []byte) key {
	return key{obj: le.Uint64(b), typ: b[8], off: le.Uint64(b[9:])}
}

func (k key) cmp(o key) int {
	switch {
	case k.obj != o.obj:
		return cmpU64(k.obj, o.obj)
	case k.typ != o.typ:
		return cmpU64(uint64(k.typ), uint64(o.typ))
	}
	return cmpU64(k.off, o.off)
}

func (k key) String() string { return fmt.Sprintf("(%d %d %d)", k.obj, k.typ, k.off) }

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// superblock holds the fields of a btrfs superblock the reader uses.
type superblock struct {
	raw        []byte
	fsid       [16]byte
	metaUUID   [16]byte // the fsid tree blocks carry
	generation uint64
	root       uint64
	chunkRoot  uint64
	logRoot    uint64
	totalBytes uint64
	numDevices uint64
	sectorSize uint32
	nodeSize   uint32
	sysArray   []byte
	incompat   uint64
	csumType   uint16
	rootLevel  uint8
	chunkLevel uint8
	devid      uint64
	label      string
}

// parseSuperblock checks the magic, geometry and checksum of a
// superblock copy found at volume offset at.
func parseSuperblock(b []byte, at int64) (*superblock, error) {
	if len(b) < superSize || string(b[sbMagic:sbMagic+8]) != magic {
		return nil, fmt.Errorf("no btrfs magic")
	}
	sb := &superblock{raw: b[:superSize]}
	copy(sb.fsid[:], b[sbFsid:])
	sb.metaUUID = sb.fsid
	sb.generation = le.Uint64(b[sbGeneration:])
	sb.root = le.Uint64(b[sbRoot:])
	sb.chunkRoot = le.Uint64(b[sbChunkRoot:])
	sb.logRoot = le.Uint64(b[sbLogRoot:])
	sb.totalBytes = le.Uint64(b[sbTotalBytes:])
	sb.numDevices = le.Uint64(b[sbNumDevices:])
	sb.sectorSize = le.Uint32(b[sbSectorSize:])
	sb.nodeSize = le.Uint32(b[sbNodeSize:])
	sb.incompat = le.Uint64(b[sbIncompat:])
	sb.csumType = le.Uint16(b[sbCsumType:])
	sb.rootLevel = b[sbRootLevel]
	sb.chunkLevel = b[sbChunkLevel]
	sb.devid = le.Uint64(b[sbDevItem:])
	sb.label = fs.CString(b[sbLabel : sbLabel+256])
	if sb.incompat&incompatMetadataUUID != 0 {
		copy(sb.metaUUID[:], b[sbMetadataUUID:])
	}
	n := le.Uint32(b[sbSysArraySize:])
	switch {
	case int64(le.Uint64(b[sbBytenr:])) != at:
		return nil, fmt.Errorf("superblock at %d says it is at %d", at, le.Uint64(b[sbBytenr:]))
	case sb.sectorSize < 512 || sb.sectorSize > 64<<10 || sb.sectorSize&(sb.sectorSize-1) != 0:
		return nil, fmt.Errorf("sector size %d", sb.sectorSize)
	case sb.nodeSize < sb.sectorSize || sb.nodeSize > 64<<10 || sb.nodeSize&(sb.nodeSize-1) != 0:
		return nil, fmt.Errorf("node size %d", sb.nodeSize)
	case n > sysArrayMax:
		return nil, fmt.Errorf("system chunk array of %d bytes", n)
	case sb.rootLevel > maxLevel || sb.chunkLevel > maxLevel:
		return nil, fmt.Errorf("tree level %d/%d", sb.rootLevel, sb.chunkLevel)
	}
	cs, err := newCsum(sb.csumType)
	if err != nil {
		return nil, err
	}
	if !cs.verify(b[:superSize]) {
		return nil, fmt.Errorf("superblock checksum mismatch")
	}
	sb.sysArray = b[sbSysArray : sbSysArray+int(n)]
	return sb, nil
}

// backupRoot is one of the superblock's four backup copies of the tree
// roots of earlier commits.
type backupRoot struct {
	treeRoot, chunkRoot   uint64
	treeLevel, chunkLevel uint8
}

func (sb *superblock) backups() []backupRoot {
	var out []backupRoot
	for i := range 4 {
		b := sb.raw[sbBackupRoots+i*backupRootSize:]
		r := backupRoot{treeRoot: le.Uint64(b), chunkRoot: le.Uint64(b[16:]), treeLevel: b[152], chunkLevel: b[153]}
		if r.treeRoot != 0 && r.treeLevel <= maxLevel && r.chunkLevel <= maxLevel {
			out = append(out, r)
		}
	}
	return out
}

// inodeItem is a parsed btrfs_inode_item (160 bytes).
type inodeItem struct {
	size  int64
	nlink uint32
	uid   uint32
	gid   uint32
	mode  uint32
	rdev  uint64
	flags uint64
	atime time.Time
	ctime time.Time
	mtime time.Time
	otime time.Time
}

const inodeItemSize = 160

func parseInodeItem(b []byte) (inodeItem, bool) {
	if len(b) < inodeItemSize {
		return inodeItem{}, false
	}
	ts := func(o int) time.Time {
		nsec := le.Uint32(b[o+8:])
		if nsec > 999999999 {
			nsec = 0
		}
		return time.Unix(int64(le.Uint64(b[o:])), int64(nsec))
	}
	return inodeItem{
		size:  int64(le.Uint64(b[16:]) & (1<<63 - 1)),
		nlink: le.Uint32(b[40:]),
		uid:   le.Uint32(b[44:]),
		gid:   le.Uint32(b[48:]),
		mode:  le.Uint32(b[52:]),
		rdev:  le.Uint64(b[56:]),
		flags: le.Uint64(b[64:]),
		atime: ts(112),
		ctime: ts(124),
		mtime: ts(136),
		otime: ts(148),
	}, true
}

// dirItem is one entry of a DIR_ITEM, DIR_INDEX or XATTR_ITEM.
type dirItem struct {
	loc  key
	typ  uint8
	name []byte
	data []byte
	at   int // offset of the entry in the item
	len  int
}

// parseDirItems splits an item into its entries (a DIR_ITEM or XATTR_ITEM
// holds several when names collide in their hash). It stops at the first
// entry that does not fit.
func parseDirItems(b []byte) []dirItem {
	var out []dirItem
	for p := 0; p+30 <= len(b) && len(out) < 1024; {
		dl, nl := int(le.Uint16(b[p+25:])), int(le.Uint16(b[p+27:]))
		end := p + 30 + nl + dl
		if end > len(b) {
			break
		}
		out = append(out, dirItem{loc: parseKey(b[p:]), typ: b[p+29], name: b[p+30 : p+30+nl],
			data: b[p+30+nl : end], at: p, len: end - p})
		p = end
	}
	return out
}

// fileExtent is a parsed EXTENT_DATA item.
type fileExtent struct {
	fileOff  int64 // the key's offset
	ramBytes int64
	comp     uint8
	encrypt  uint8
	encoding uint16
	typ      uint8
	inline   []byte // inline data (compressed when comp != 0)
	// regular and prealloc extents
	diskBytenr uint64
	diskBytes  int64
	offset     int64 // into the decoded extent
	numBytes   int64
	// where the item lies (for Layout.Meta of inline data)
	item phys
}

func parseFileExtent(fileOff uint64, b []byte) (fileExtent, error) {
	if len(b) < 21 {
		return fileExtent{}, fmt.Errorf("extent item of %d bytes", len(b))
	}
	e := fileExtent{fileOff: int64(fileOff & (1<<62 - 1)), ramBytes: int64(le.Uint64(b[8:]) & (1<<62 - 1)),
		comp: b[16], encrypt: b[17], encoding: le.Uint16(b[18:]), typ: b[20]}
	switch e.typ {
	case extInline:
		e.inline = b[21:]
		if e.comp == compNone {
			e.ramBytes = int64(len(e.inline))
		}
	case extRegular, extPrealloc:
		if len(b) < 53 {
			return e, fmt.Errorf("extent item of %d bytes", len(b))
		}
		e.diskBytenr = le.Uint64(b[21:])
		e.diskBytes = int64(le.Uint64(b[29:]) & (1<<62 - 1))
		e.offset = int64(le.Uint64(b[37:]) & (1<<62 - 1))
		e.numBytes = int64(le.Uint64(b[45:]) & (1<<62 - 1))
	default:
		return e, fmt.Errorf("extent type %d", e.typ)
	}
	if e.encrypt != 0 || e.encoding != 0 {
		return e, fmt.Errorf("encrypted or encoded extent (%d/%d)", e.encrypt, e.encoding)
	}
	if e.comp > compZstd {
		return e, fmt.Errorf("compression type %d", e.comp)
	}
	return e, nil
}

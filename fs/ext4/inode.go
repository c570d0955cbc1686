package ext4

import (
	"fmt"
	iofs "io/fs"
	"time"

	"github.com/vzsalvage/vzsalvage/fs"
)

// inode is one inode as read from its table, with the problems found in it.
type inode struct {
	num      uint32
	b        []byte // the raw inode (inode size bytes), owned
	pos      int64  // volume offset of b
	mode     uint16
	flags    uint32
	links    uint16
	size     int64
	extra    int // i_extra_isize, 0 when absent or invalid
	csumOK   bool
	badSize  bool // the stored size was impossible
	problems fs.ProblemLog
}

// iblock returns the 60 bytes of i_block.
func (in *inode) iblock() []byte { return in.b[0x28:0x64] }

func (in *inode) typ() uint16 { return in.mode & sIFMT }

func (in *inode) generation() uint32 { return le.Uint32(in.b[0x64:]) }

func (in *inode) dtime() uint32 { return le.Uint32(in.b[0x14:]) }

// fileACL returns the xattr block number.
func (in *inode) fileACL() uint64 {
	return uint64(le.Uint32(in.b[0x68:])) | uint64(le.Uint16(in.b[0x76:]))<<32
}

// has reports whether the extra part of the inode covers bytes up to end.
func (in *inode) has(end int) bool { return 128+in.extra >= end }

func (in *inode) addProblem(format string, args ...any) { in.problems.Addf(format, args...) }

// inodeSeed returns the per-inode checksum seed of metadata_csum.
func (f *FS) inodeSeed(num, gen uint32) uint32 {
	return crc32cLE32(crc32cLE32(f.csumSeed, num), gen)
}

// inodeLoc returns the block and the byte offset in it holding inode n.
func (f *FS) inodeLoc(n uint32) (blk uint64, off int64, err error) {
	if n == 0 || n > f.inodesCount {
		return 0, 0, errDamaged("inode %d out of range", n)
	}
	ipg := uint64(f.sb.inodesPerGroup)
	g := uint64(n-1) / ipg
	if g >= uint64(len(f.gd)) || f.gd[g].source == gdNone {
		return 0, 0, errDamaged("inode %d: group %d has no usable descriptor", n, g)
	}
	byteOff := (uint64(n-1) % ipg) * uint64(f.inodeSize)
	blk = f.gd[g].inodeTable + byteOff/uint64(f.bs)
	if blk >= f.sb.blocksCount {
		return 0, 0, errDamaged("inode %d: inode table past the end of the filesystem", n)
	}
	return blk, int64(byteOff % uint64(f.bs)), nil
}

// readInode reads and checks inode n. It fails only when the inode cannot
// be located or read at all; damage inside it becomes problems.
func (f *FS) readInode(n uint32) (*inode, error) {
	blk, off, err := f.inodeLoc(n)
	if err != nil {
		return nil, err
	}
	b, err := f.metaBlock(blk)
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", n, err)
	}
	in := &inode{num: n, b: make([]byte, f.inodeSize), pos: f.blockPos(blk) + off}
	copy(in.b, b[off:])
	f.parseInode(in)
	// A good checksum proves the inode is the one asked for (it covers the
	// inode number), wherever its table was found.
	if !f.metadataCsum || !in.csumOK {
		switch f.gd[(uint64(n)-1)/uint64(f.sb.inodesPerGroup)].source {
		case gdWeak:
			in.addProblem("inode table located through a damaged group descriptor")
		case gdInferred:
			in.addProblem("inode table location inferred (group descriptor lost)")
		}
	}
	if f.suspect(in.pos, f.inodeSize) {
		in.addProblem("inode lies in a damaged range")
	}
	return in, nil
}

// parseInode decodes the fixed fields of in.b and checks its checksum.
func (f *FS) parseInode(in *inode) {
	b := in.b
	in.mode = le.Uint16(b[0x00:])
	in.links = le.Uint16(b[0x1A:])
	in.flags = le.Uint32(b[0x20:])
	size := uint64(le.Uint32(b[0x04:]))
	if in.typ() == sIFREG || f.sb.incompat&incompatLargeDir != 0 {
		size |= uint64(le.Uint32(b[0x6C:])) << 32
	}
	if max := f.maxFileBytes(in); size > max {
		in.addProblem("size %d larger than the format allows", size)
		in.badSize = true
		size = max
	}
	in.size = int64(size)
	if len(b) > 128 {
		x := int(le.Uint16(b[0x80:]))
		if x%4 != 0 || 128+x > len(b) {
			in.addProblem("extra inode size %d invalid", x)
		} else {
			in.extra = x
		}
	}
	in.csumOK = true
	if f.metadataCsum {
		c := f.inodeSeed(in.num, in.generation())
		c = crc32c(c, b[:0x7C])
		c = crc32c(c, []byte{0, 0})
		c = crc32c(c, b[0x7E:0x80])
		stored := uint32(le.Uint16(b[0x7C:]))
		if len(b) > 128 {
			c = crc32c(c, b[0x80:0x82])
			// The high half is covered by the checksum only where the
			// extra size (as stored, even if invalid) reaches it.
			if 128+int(le.Uint16(b[0x80:])) >= 0x84 {
				c = crc32c(c, []byte{0, 0})
				c = crc32c(c, b[0x84:])
				stored |= uint32(le.Uint16(b[0x82:])) << 16
			} else {
				c = crc32c(c, b[0x82:])
				c &= 0xFFFF
			}
		} else {
			c &= 0xFFFF
		}
		if c != stored {
			in.csumOK = false
			in.addProblem("inode checksum mismatch")
		}
	}
}

// validType reports whether the mode holds one of the seven file types.
func (in *inode) validType() bool {
	switch in.typ() {
	case sIFREG, sIFDIR, sIFLNK, sIFCHR, sIFBLK, sIFIFO, sIFSOCK:
		return true
	}
	return false
}

// node reads inode n for a public call: it also refuses inodes that are
// plainly not files (zeroed, free, or reserved ones other than the root).
func (f *FS) node(n fs.Node) (*inode, error) {
	if n > fs.Node(^uint32(0)) {
		return nil, errDamaged("inode %d out of range", n)
	}
	in, err := f.readInode(uint32(n))
	if err != nil {
		return nil, err
	}
	if in.mode == 0 {
		if isZero(in.b) {
			return nil, errDamaged("inode %d is zeroed", n)
		}
		return nil, errDamaged("inode %d is not in use (mode 0)", n)
	}
	if in.links == 0 && in.dtime() != 0 {
		in.addProblem("inode is deleted (no links, deletion time set)")
	}
	if !in.validType() {
		in.addProblem("invalid file type %#o", in.typ())
	}
	if in.badSize {
		// An impossible size (a flipped high bit, say): read up to the end
		// of the last mapped block instead.
		in.size = 0
		if f.hasBlockMap(in) {
			in.size = int64(f.maxFileBytes(in))
			if m := f.mapInode(in); len(m.Runs) > 0 {
				last := m.Runs[len(m.Runs)-1]
				in.size = int64(last.Off+last.N) * f.bs
			} else {
				in.size = 0
			}
		}
	}
	return in, nil
}

// maxFileBytes is the largest size the inode's block map can address:
// 2^32 blocks for extents, 12 + P + P^2 + P^3 blocks for indirect maps (P
// block numbers per block).
func (f *FS) maxFileBytes(in *inode) uint64 {
	bs := uint64(f.bs)
	if in.flags&flagExtents != 0 || in.flags&flagInlineData != 0 {
		return bs << 32
	}
	p := bs / 4
	return min((12+p+p*p+p*p*p)*bs, bs<<32)
}

// Stat returns a node's metadata. Problems lists damage found in the inode,
// its block map and its extended attributes.
func (f *FS) Stat(n fs.Node) (*fs.Stat, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	st := &fs.Stat{
		Node:       n,
		Mode:       fileMode(in.mode),
		Size:       in.size,
		Nlink:      uint32(in.links),
		Generation: in.generation(),
	}
	b := in.b
	st.UID = uint32(le.Uint16(b[0x02:])) | uint32(le.Uint16(b[0x78:]))<<16
	st.GID = uint32(le.Uint16(b[0x18:])) | uint32(le.Uint16(b[0x7A:]))<<16
	st.Atime = in.time(0x08, 0x8C)
	st.Ctime = in.time(0x0C, 0x84)
	st.Mtime = in.time(0x10, 0x88)
	if in.has(0x98) {
		st.Btime = in.time(0x90, 0x94)
	}
	if t := in.typ(); t == sIFCHR || t == sIFBLK {
		st.Rdev = decodeDev(in.iblock())
	}
	x, xp := f.xattrs(in)
	if len(x) > 0 {
		st.Xattrs = x
	}
	in.problems.Add(xp...)
	if in.flags&flagEncrypt != 0 {
		in.addProblem("encrypted: names and content are ciphertext")
	}
	if f.hasBlockMap(in) {
		m := f.mapInode(in)
		in.problems.Add(m.Problems...)
	}
	st.Problems = in.problems.List()
	return st, nil
}

// time decodes a timestamp: seconds at lo, and where the inode is large
// enough the extra word at extra (2 epoch bits, 30 bits of nanoseconds).
func (in *inode) time(lo, extra int) time.Time {
	sec := int64(int32(le.Uint32(in.b[lo:])))
	var nsec int64
	if in.has(extra + 4) {
		x := le.Uint32(in.b[extra:])
		sec += int64(x&3) << 32
		nsec = int64(x >> 2)
		if nsec > 999999999 {
			nsec = 0
		}
	}
	return time.Unix(sec, nsec)
}

// fileMode converts an ext4 i_mode to an io/fs FileMode.
func fileMode(m uint16) iofs.FileMode { return fs.UnixMode(uint32(m)) }

// typeMode converts the type bits of an i_mode to io/fs type bits.
func typeMode(t uint16) iofs.FileMode { return fs.UnixMode(uint32(t)).Type() }

// decodeDev returns a device inode's number in the Linux (glibc) dev_t
// encoding, as stat(2) reports it and mknod(2) takes it.
func decodeDev(ib []byte) uint64 {
	var major, minor uint64
	if d := le.Uint32(ib[0:]); d != 0 {
		major, minor = uint64(d>>8&0xFF), uint64(d&0xFF)
	} else {
		d := le.Uint32(ib[4:])
		major = uint64(d&0xFFF00) >> 8
		minor = uint64(d&0xFF) | uint64(d>>12&0xFFF00)
	}
	return major&0xFFFFF000<<32 | major&0xFFF<<8 | minor&0xFFFFFF00<<12 | minor&0xFF
}

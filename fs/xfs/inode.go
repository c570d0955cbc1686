package xfs

import (
	"bytes"
	"fmt"
	iofs "io/fs"
	"time"

	"github.com/vzsalvage/vzsalvage/fs"
)

// inode is one inode as read from disk, with the problems found in it.
type inode struct {
	num      uint64
	b        []byte // the raw inode (inode size bytes), owned
	pos      int64  // volume offset of b
	mode     uint16
	version  uint8
	format   uint8
	aformat  uint8
	nlink    uint32
	size     int64
	nextents uint64
	anext    uint64
	forkoff  int // attribute fork offset in the literal area, bytes (0: none)
	flags2   uint64
	problems fs.ProblemLog
}

func (in *inode) typ() uint16 { return in.mode & sIFMT }

func (in *inode) addProblem(format string, args ...any) { in.problems.Addf(format, args...) }

// inodePos returns the volume offset of inode ino, or an error when the
// number cannot name an inode of this filesystem.
func (f *FS) inodePos(ino uint64) (int64, error) {
	ag := ino >> f.inoShift
	agino := ino & (1<<f.inoShift - 1)
	agb := agino >> f.sb.inoPBLog
	if ag >= uint64(f.sb.agCount) || agb >= uint64(f.sb.agBlocks) || ino == 0 {
		return 0, errDamaged("inode %d out of range", ino)
	}
	pos := f.agPos(uint32(ag), uint32(agb)) + int64(agino&(1<<f.sb.inoPBLog-1))<<f.sb.inodeLog
	if pos+int64(f.sb.inodeSize) > f.size {
		return 0, errDamaged("inode %d lies past the end of the volume", ino)
	}
	return pos, nil
}

// readInode reads and checks inode ino. It fails only when the inode
// cannot be located or read at all; damage inside it becomes problems.
func (f *FS) readInode(ino uint64) (*inode, error) {
	pos, err := f.inodePos(ino)
	if err != nil {
		return nil, err
	}
	isz := int64(f.sb.inodeSize)
	blk := pos &^ (f.bs - 1)
	b, err := f.metaBlock(blk, int(f.bs))
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	in := &inode{num: ino, b: make([]byte, isz), pos: pos}
	copy(in.b, b[pos-blk:])
	f.parseInode(in)
	if f.suspect(pos, isz) {
		in.addProblem("inode lies in a damaged range")
	}
	return in, nil
}

// parseInode decodes the core of in.b and checks it.
func (f *FS) parseInode(in *inode) {
	b := in.b
	in.mode = be.Uint16(b[2:])
	in.version = b[4]
	in.format = b[5]
	in.aformat = b[83]
	in.size = int64(be.Uint64(b[56:]))
	in.forkoff = int(b[82]) * 8
	if be.Uint16(b) != inodeMagic {
		in.addProblem("bad inode magic")
	}
	switch {
	case in.version == 1:
		in.nlink = uint32(be.Uint16(b[6:]))
	case in.version == 2 && !f.v5, in.version == 3 && f.v5:
		in.nlink = be.Uint32(b[16:])
	default:
		in.addProblem("inode version %d invalid", in.version)
		in.nlink = be.Uint32(b[16:])
	}
	if in.version == 3 {
		in.flags2 = be.Uint64(b[120:])
	}
	if in.flags2&flag2Nrext64 != 0 {
		in.nextents = be.Uint64(b[24:])
		in.anext = uint64(be.Uint32(b[76:]))
	} else {
		in.nextents = uint64(be.Uint32(b[76:]))
		in.anext = uint64(be.Uint16(b[80:]))
	}
	if f.v5 {
		if !crcOK(b, 100) {
			in.addProblem("inode checksum mismatch")
		}
		if be.Uint64(b[152:]) != in.num {
			in.addProblem("inode records number %d", be.Uint64(b[152:]))
		}
		if !bytes.Equal(b[160:176], f.sb.metaUUID[:]) {
			in.addProblem("inode belongs to another filesystem (uuid)")
		}
	}
	if in.size < 0 {
		in.addProblem("negative size %d", in.size)
		in.size = 0
	}
	lit := len(b) - f.coreSize
	if in.forkoff >= lit {
		in.addProblem("attribute fork offset %d beyond the inode", in.forkoff)
		in.forkoff = 0
		in.aformat = fmtExtents
		in.anext = 0
	}
}

// dataFork returns the data fork's bytes inside the inode.
func (f *FS) dataFork(in *inode) []byte {
	end := len(in.b)
	if in.forkoff != 0 {
		end = f.coreSize + in.forkoff
	}
	return in.b[f.coreSize:end]
}

// attrFork returns the attribute fork's bytes inside the inode, or nil.
func (f *FS) attrFork(in *inode) []byte {
	if in.forkoff == 0 {
		return nil
	}
	return in.b[f.coreSize+in.forkoff:]
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
// plainly not files (zeroed, free, or without the inode magic).
func (f *FS) node(n fs.Node) (*inode, error) {
	in, err := f.readInode(uint64(n))
	if err != nil {
		return nil, err
	}
	if be.Uint16(in.b) != inodeMagic {
		if isZero(in.b) {
			return nil, errDamaged("inode %d is zeroed", n)
		}
		return nil, errDamaged("inode %d has no inode magic", n)
	}
	if in.mode == 0 {
		return nil, errDamaged("inode %d is not in use (mode 0)", n)
	}
	if !in.validType() {
		return nil, errDamaged("inode %d has an invalid mode %#o", n, in.mode)
	}
	if in.nlink == 0 {
		in.addProblem("inode has no links (deleted)")
	}
	switch in.typ() {
	case sIFREG:
		if in.format != fmtExtents && in.format != fmtBtree {
			in.addProblem("data fork format %d invalid for a file", in.format)
		}
	case sIFDIR:
		if in.format < fmtLocal || in.format > fmtBtree {
			in.addProblem("data fork format %d invalid for a directory", in.format)
		}
	case sIFLNK:
		if in.format != fmtLocal && in.format != fmtExtents {
			in.addProblem("data fork format %d invalid for a symlink", in.format)
		}
	}
	return in, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Stat returns a node's metadata.
func (f *FS) Stat(n fs.Node) (*fs.Stat, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	b := in.b
	st := &fs.Stat{
		Node:  n,
		Mode:  fileMode(in.mode),
		Size:  in.size,
		Nlink: in.nlink,
		UID:   be.Uint32(b[8:]),
		GID:   be.Uint32(b[12:]),
	}
	st.Atime = f.time(in, 32)
	st.Mtime = f.time(in, 40)
	st.Ctime = f.time(in, 48)
	if in.version == 3 {
		st.Btime = f.time(in, 144)
	}
	if t := in.typ(); t == sIFCHR || t == sIFBLK {
		if in.format == fmtDev {
			st.Rdev = decodeDev(be.Uint32(f.dataFork(in)))
		} else {
			in.addProblem("device inode with data fork format %d", in.format)
		}
	}
	x, xp := f.xattrs(in)
	if len(x) > 0 {
		st.Xattrs = x
	}
	in.problems.Add(xp...)
	if in.format == fmtExtents || in.format == fmtBtree {
		m := f.mapFork(in, false)
		in.problems.Add(m.Problems...)
	}
	st.Problems = in.problems.List()
	return st, nil
}

// time decodes the timestamp at off: seconds and nanoseconds, or with big
// timestamps nanoseconds since 1901-12-13 20:45:52 UTC.
func (f *FS) time(in *inode, off int) time.Time {
	b := in.b[off:]
	if in.flags2&flag2Bigtime != 0 {
		ns := be.Uint64(b)
		return time.Unix(int64(ns/1e9)-(1<<31), int64(ns%1e9))
	}
	sec := int64(int32(be.Uint32(b)))
	nsec := int64(be.Uint32(b[4:]))
	if nsec > 999999999 {
		nsec = 0
	}
	return time.Unix(sec, nsec)
}

// fileMode converts an XFS di_mode (the Unix st_mode) to an io/fs FileMode.
func fileMode(m uint16) iofs.FileMode { return fs.UnixMode(uint32(m)) }

// typeMode converts the type bits of a mode to io/fs type bits.
func typeMode(t uint16) iofs.FileMode { return fs.UnixMode(uint32(t)).Type() }

// decodeDev converts XFS's 32-bit device number (14 bits of major, 18 of
// minor) to the Linux (glibc) dev_t encoding.
func decodeDev(d uint32) uint64 {
	major, minor := uint64(d>>18), uint64(d&0x3ffff)
	return major&0xFFFFF000<<32 | major&0xFFF<<8 | minor&0xFFFFFF00<<12 | minor&0xFF
}

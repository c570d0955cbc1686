package xfs

import (
	"bytes"
	"fmt"
	iofs "io/fs"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Bounds on one directory, whatever the disk says.
const (
	maxDirBytes   = 256 << 20
	maxDirEntries = 1 << 22
)

// dirent is one directory entry as found on disk.
type dirent struct {
	ino   uint64
	ft    uint8
	name  string
	where fs.Extent // volume bytes holding the entry
	// suspect says why the entry cannot be trusted although it parsed
	// (its block's checksum fails).
	suspect string
}

// ReadDir returns a directory's entries, without "." and "..". On damage it
// returns every entry it could read, with an error wrapping fs.ErrDamaged.
func (f *FS) ReadDir(n fs.Node) ([]fs.DirEntry, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	if in.typ() != sIFDIR {
		return nil, fs.ErrNotDir
	}
	ents, _, ps := f.dirents(in)
	var problems problemLog
	problems.Add(ps...)
	raw := make([]fs.UnixEntry, len(ents))
	for i, e := range ents {
		raw[i] = fs.UnixEntry{Name: e.name, Node: fs.Node(e.ino), FileType: e.ft, Where: e.where, Suspect: e.suspect}
	}
	out := fs.UnixEntries(raw, f.ftype, func(n fs.Node) (iofs.FileMode, bool) {
		c, err := f.readInode(uint64(n))
		if err != nil || !c.validType() {
			return 0, false
		}
		return typeMode(c.typ()), true
	}, &problems)
	if msg := problems.Summary(); msg != "" {
		return out, errDamaged("directory %d: %s", n, msg)
	}
	return out, nil
}

// dirents reads every entry of a directory inode ("." and ".." left
// out), the parent its ".." names (0 if none), and the problems found.
func (f *FS) dirents(in *inode) ([]dirent, uint64, []string) {
	if in.format == fmtLocal {
		return f.shortformDir(in)
	}
	if in.format != fmtExtents && in.format != fmtBtree {
		return nil, 0, []string{fmt.Sprintf("directory data fork format %d invalid", in.format)}
	}
	var problems problemLog
	m := f.mapFork(in, false)
	problems.Add(m.Problems...)
	per := uint64(f.dirBlk / f.bs) // filesystem blocks per directory block
	leaf := uint64(dir2LeafOffset) >> f.sb.blockLog
	limit := uint64(maxDirBytes / f.dirBlk)
	var out []dirent
	var parent uint64
	buf := make([]byte, f.dirBlk)
	done := map[uint64]bool{}
	count := uint64(0)
	for _, r := range m.Runs {
		if r.Off >= leaf {
			break
		}
		if r.Kind == runUnknown {
			problems.Addf("directory blocks %d-%d: mapping lost", r.Off, min(r.Off+r.N, leaf)-1)
			continue
		}
		for d := r.Off / per; d*per < min(r.Off+r.N, leaf); d++ {
			if done[d] {
				continue
			}
			done[d] = true
			if count++; count > limit {
				problems.Addf("directory blocks past %d bytes not read", maxDirBytes)
				return out, parent, problems.List()
			}
			pieces, ps := f.readDirBlock(m, d*per, per, buf)
			for _, p := range ps {
				problems.Addf("block %d: %s", d, p)
			}
			ents, pp, bp := f.parseDataBlock(in, buf, pieces, d == 0)
			if d == 0 {
				parent = pp
			}
			for _, p := range bp {
				problems.Addf("block %d: %s", d, p)
			}
			out = append(out, ents...)
			if len(out) > maxDirEntries {
				problems.Addf("more than %d entries: the rest not read", maxDirEntries)
				return out[:maxDirEntries], parent, problems.List()
			}
		}
	}
	return out, parent, problems.List()
}

// piece says where a part of a directory block lies on the volume (pos
// -1: not mapped).
type piece struct{ pos, n int64 }

// readDirBlock reads the per filesystem blocks of the directory block
// starting at file block first into buf.
func (f *FS) readDirBlock(m *forkMap, first, per uint64, buf []byte) ([]piece, []string) {
	var pieces []piece
	var problems []string
	for j := uint64(0); j < per; j++ {
		b := buf[int64(j)*f.bs : int64(j+1)*f.bs]
		i, _ := m.Find(first + j)
		if i < 0 || m.Runs[i].Kind != runData {
			clear(b)
			pieces = append(pieces, piece{-1, f.bs})
			problems = append(problems, fmt.Sprintf("filesystem block %d of the directory is not mapped", first+j))
			continue
		}
		r := m.Runs[i]
		pos := f.fsbPos(r.Phys + first + j - r.Off)
		if err := f.readAt(b, pos); err != nil {
			problems = append(problems, err.Error())
		}
		if f.suspect(pos, f.bs) {
			problems = append(problems, "lies in a damaged range")
		}
		if k := len(pieces); k > 0 && pieces[k-1].pos >= 0 && pieces[k-1].pos+pieces[k-1].n == pos {
			pieces[k-1].n += f.bs
		} else {
			pieces = append(pieces, piece{pos, f.bs})
		}
	}
	return pieces, problems
}

// where returns the volume range holding bytes [off, off+n) of a block
// read from pieces: the span of the pieces it touches.
func where(pieces []piece, off, n int64) fs.Extent {
	lo, hi := int64(-1), int64(-1)
	at := int64(0)
	for _, p := range pieces {
		if off < at+p.n && off+n > at && p.pos >= 0 {
			s := p.pos + max(0, off-at)
			e := p.pos + min(p.n, off+n-at)
			if lo < 0 || s < lo {
				lo = s
			}
			if e > hi {
				hi = e
			}
		}
		at += p.n
	}
	if lo < 0 {
		return fs.Extent{}
	}
	return fs.Extent{Physical: lo, Length: hi - lo}
}

// parseDataBlock decodes a directory data block (or the single block of a
// block directory). It returns the entries, the ".." inode where the block
// holds it, and the problems found. Invalid entries are skipped by
// resynchronising on the next entry whose tag matches its offset.
func (f *FS) parseDataBlock(in *inode, b []byte, pieces []piece, first bool) ([]dirent, uint64, []string) {
	var problems []string
	magic := be.Uint32(b)
	hdr := dataHdrV4
	var blockMagic, dataMagic uint32 = dir2BlockMagic, dir2DataMagic
	if f.v5 {
		hdr, blockMagic, dataMagic = dataHdrV5, dir3BlockMagic, dir3DataMagic
	}
	end := len(b)
	switch magic {
	case blockMagic:
		count := int64(be.Uint32(b[len(b)-8:]))
		if e := int64(len(b)) - 8 - 8*count; e >= int64(hdr) {
			end = int(e)
		} else {
			problems = append(problems, fmt.Sprintf("leaf count %d invalid", count))
			end = len(b) - 8
		}
	case dataMagic:
	default:
		if isZero(b) {
			return nil, 0, []string{"zeroed"}
		}
		problems = append(problems, fmt.Sprintf("bad magic %#x", magic))
	}
	suspect := ""
	if f.v5 {
		switch {
		case !crcOK(b, 4):
			suspect = "directory block checksum mismatch"
			problems = append(problems, "checksum mismatch")
		case be.Uint64(b[40:]) != in.num:
			suspect = "directory block belongs to another inode"
			problems = append(problems, fmt.Sprintf("owner %d", be.Uint64(b[40:])))
		case pieces[0].pos >= 0 && be.Uint64(b[8:]) != uint64(pieces[0].pos/512):
			suspect = "directory block belongs elsewhere"
			problems = append(problems, "recorded location differs")
		}
	}
	var out []dirent
	var parent uint64
	off := hdr
	for off+8 <= end {
		n, ok := f.entryAt(b[:end], off)
		if !ok {
			next := off + 8
			for next+8 <= end {
				if _, ok := f.entryAt(b[:end], next); ok {
					break
				}
				next += 8
			}
			problems = append(problems, fmt.Sprintf("invalid entry at offset %d, skipped %d bytes", off, next-off))
			off = next
			continue
		}
		if be.Uint16(b[off:]) != 0xffff {
			ino := be.Uint64(b[off:])
			nl := int(b[off+8])
			name := b[off+9 : off+9+nl]
			ft := uint8(0)
			if f.ftype {
				ft = b[off+9+nl]
			}
			switch {
			case nl == 1 && name[0] == '.':
			case nl == 2 && name[0] == '.' && name[1] == '.':
				if first {
					parent = ino
				}
			default:
				out = append(out, dirent{ino: ino, ft: ft, name: string(name), where: where(pieces, int64(off), int64(n)), suspect: suspect})
			}
		}
		off += n
	}
	return out, parent, problems
}

// entryAt checks the entry (or unused space) at off of a data block and
// returns its length: its tag must equal off, the inode number must name
// an inode and the name must be a valid file name.
func (f *FS) entryAt(b []byte, off int) (int, bool) {
	if be.Uint16(b[off:]) == 0xffff {
		n := int(be.Uint16(b[off+2:]))
		if n < 8 || n%8 != 0 || off+n > len(b) || int(be.Uint16(b[off+n-2:])) != off {
			return 0, false
		}
		return n, true
	}
	if off+12 > len(b) {
		return 0, false
	}
	nl := int(b[off+8])
	ft := 0
	if f.ftype {
		ft = 1
	}
	n := (8 + 1 + nl + ft + 2 + 7) &^ 7
	if nl == 0 || off+n > len(b) || int(be.Uint16(b[off+n-2:])) != off {
		return 0, false
	}
	if _, err := f.inodePos(be.Uint64(b[off:])); err != nil {
		return 0, false
	}
	name := b[off+9 : off+9+nl]
	if bytes.IndexByte(name, 0) >= 0 || bytes.IndexByte(name, '/') >= 0 {
		return 0, false
	}
	if f.ftype && b[off+9+nl] > 7 {
		return 0, false
	}
	return n, true
}

// shortformDir reads a directory kept inside its inode.
func (f *FS) shortformDir(in *inode) ([]dirent, uint64, []string) {
	fork := f.dataFork(in)
	base := in.pos + int64(f.coreSize)
	var problems []string
	if int64(len(fork)) > in.size && in.size >= 6 {
		fork = fork[:in.size]
	}
	if len(fork) < 6 {
		return nil, 0, []string{"short-form directory too small"}
	}
	count, i8 := int(fork[0]), fork[1]
	isz := 4
	if i8 != 0 {
		isz = 8
	}
	ino := func(b []byte) uint64 {
		if isz == 8 {
			return be.Uint64(b)
		}
		return uint64(be.Uint32(b))
	}
	if 2+isz > len(fork) {
		return nil, 0, []string{"short-form directory header truncated"}
	}
	parent := ino(fork[2:])
	ft := 0
	if f.ftype {
		ft = 1
	}
	var out []dirent
	off := 2 + isz
	for i := 0; i < count; i++ {
		if off+3 > len(fork) {
			problems = append(problems, fmt.Sprintf("short-form directory truncated after %d of %d entries", i, count))
			break
		}
		nl := int(fork[off])
		n := 3 + nl + ft + isz
		if nl == 0 || off+n > len(fork) {
			problems = append(problems, fmt.Sprintf("short-form entry %d invalid", i))
			break
		}
		name := fork[off+3 : off+3+nl]
		e := dirent{ino: ino(fork[off+3+nl+ft:]), name: string(name), where: fs.Extent{Physical: base + int64(off), Length: int64(n)}}
		if ft == 1 {
			e.ft = fork[off+3+nl]
		}
		switch _, err := f.inodePos(e.ino); {
		case err != nil:
			problems = append(problems, fmt.Sprintf("entry %q names inode %d, out of range", name, e.ino))
		case bytes.IndexByte(name, 0) >= 0 || bytes.IndexByte(name, '/') >= 0:
			problems = append(problems, fmt.Sprintf("entry %d has an invalid name %q", i, name))
		default:
			out = append(out, e)
		}
		off += n
	}
	return out, parent, problems
}

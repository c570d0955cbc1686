package ext4

import (
	"bytes"
	"fmt"
	iofs "io/fs"
	"strings"

	"github.com/vzsalvage/vzsalvage/fs"
)

// dirent is one directory entry as found in a block.
type dirent struct {
	ino  uint32
	ft   uint8
	name string
	off  int // byte offset in the block or inline area
	len  int // record length
	// suspect says why the entry cannot be trusted although it parsed
	// (its block's checksum fails).
	suspect string
}

// dirParser decodes directory blocks of one directory.
type dirParser struct {
	bs          int
	filetype    bool   // entries carry a file type byte
	inodesCount uint32 // entries naming a larger inode are invalid
	csum        bool   // metadata_csum: leaf blocks end in a checksum tail
	seed        uint32 // the directory inode's checksum seed
	encrypted   bool   // names are ciphertext: any byte may occur
}

// Directory block kinds.
const (
	blockLeaf   = iota // entries
	blockDxRoot        // htree root: "." and "..", then the index
	blockDxNode        // htree interior node: only an index
)

// recLen decodes a record length (65536-byte blocks store 65536 as 0 or 65535).
func (p *dirParser) recLen(b []byte) int {
	v := int(le.Uint16(b))
	if p.bs >= 65536 && (v == 0 || v == 65535) {
		return 65536
	}
	return v&65532 | (v&3)<<16
}

// kind tells an htree index block from a leaf. first is logical block 0.
func (p *dirParser) kind(b []byte, first bool) int {
	if len(b) < 40 {
		return blockLeaf
	}
	if first {
		if le.Uint32(b[0:]) != 0 && p.recLen(b[4:]) == 12 && b[6] == 1 && b[8] == '.' &&
			p.recLen(b[16:]) == p.bs-12 && b[18] == 2 && b[20] == '.' && b[21] == '.' &&
			le.Uint32(b[24:]) == 0 && b[29] == 8 && b[30] <= 3 && p.dxLimitOK(b, 32) {
			return blockDxRoot
		}
		return blockLeaf
	}
	if le.Uint32(b[0:]) == 0 && p.recLen(b[4:]) == p.bs && b[6] == 0 && p.dxLimitOK(b, 8) {
		return blockDxNode
	}
	return blockLeaf
}

// dxLimitOK checks an htree count/limit pair at off: limit must be what
// the block has room for.
func (p *dirParser) dxLimitOK(b []byte, off int) bool {
	limit := int(le.Uint16(b[off:]))
	count := int(le.Uint16(b[off+2:]))
	room := (p.bs - off) / 8
	roomCsum := (p.bs - off - 8) / 8
	return count > 0 && count <= limit && (limit == room || limit == roomCsum)
}

// dxCsumOK verifies an htree block's dx_tail checksum.
func (p *dirParser) dxCsumOK(b []byte, off int) bool {
	limit := int(le.Uint16(b[off:]))
	count := int(le.Uint16(b[off+2:]))
	tail := off + 8*limit
	if tail+8 > len(b) || count > limit {
		return false
	}
	c := crc32c(p.seed, b[:off+8*count])
	c = crc32c(c, b[tail:tail+4])
	c = crc32c(c, []byte{0, 0, 0, 0})
	return c == le.Uint32(b[tail+4:])
}

// parseBlock appends the entries of one directory block to out ("." and
// ".." left out) and returns the problems found. first is logical block 0.
func (p *dirParser) parseBlock(b []byte, first bool, out []dirent) ([]dirent, []string) {
	var problems []string
	switch p.kind(b, first) {
	case blockDxRoot:
		if p.csum && !p.dxCsumOK(b, 32) {
			problems = append(problems, "htree root checksum mismatch")
		}
		return out, problems
	case blockDxNode:
		if p.csum && !p.dxCsumOK(b, 8) {
			problems = append(problems, "htree node checksum mismatch")
		}
		return out, problems
	}
	limit := len(b)
	suspect := ""
	if p.csum {
		t := b[len(b)-dirTailSize:]
		if le.Uint32(t) == 0 && le.Uint16(t[4:]) == dirTailSize && t[6] == 0 && t[7] == dirTailFT {
			limit -= dirTailSize
			if crc32c(p.seed, b[:limit]) != le.Uint32(t[8:]) {
				suspect = "directory block checksum mismatch"
				problems = append(problems, "checksum mismatch")
			}
		} else {
			problems = append(problems, "no checksum tail")
		}
	}
	n0 := len(out)
	out, problems = p.parseEntries(b[:limit], out, problems)
	for i := n0; i < len(out) && suspect != ""; i++ {
		out[i].suspect = suspect
	}
	return out, problems
}

// parseEntries decodes a run of directory records filling b. Where a record
// is invalid it resynchronises on the next plausible record, as e2fsck's
// directory salvage does.
func (p *dirParser) parseEntries(b []byte, out []dirent, problems []string) ([]dirent, []string) {
	off := 0
	for off < len(b) {
		if off+8 > len(b) {
			problems = append(problems, fmt.Sprintf("%d stray bytes at offset %d", len(b)-off, off))
			break
		}
		ino, rl, nl, ft := p.header(b[off:])
		if rl < 8 || rl%4 != 0 || off+rl > len(b) || 8+nl > rl {
			next := p.resync(b, off+4)
			problems = append(problems, fmt.Sprintf("invalid record at offset %d (length %d), skipped %d bytes", off, rl, next-off))
			off = next
			continue
		}
		if ino != 0 {
			name := b[off+8 : off+8+nl]
			switch {
			case ino > p.inodesCount:
				problems = append(problems, fmt.Sprintf("entry %q names inode %d, out of range", name, ino))
			case nl == 1 && name[0] == '.' || nl == 2 && name[0] == '.' && name[1] == '.':
			case p.encrypted && nl > 0:
				out = append(out, dirent{ino: ino, ft: ft, name: escapeName(name), off: off, len: rl})
			case nl == 0 || bytes.IndexByte(name, 0) >= 0 || bytes.IndexByte(name, '/') >= 0:
				problems = append(problems, fmt.Sprintf("entry at offset %d has an invalid name %q", off, name))
			default:
				out = append(out, dirent{ino: ino, ft: ft, name: string(name), off: off, len: rl})
			}
		}
		off += rl
	}
	return out, problems
}

// escapeName makes a ciphertext name usable as a file name: where it
// holds a NUL or '/', those bytes and '%' are written as %XX.
func escapeName(b []byte) string {
	if bytes.IndexByte(b, 0) < 0 && bytes.IndexByte(b, '/') < 0 {
		return string(b)
	}
	var sb strings.Builder
	for _, c := range b {
		if c == 0 || c == '/' || c == '%' {
			fmt.Fprintf(&sb, "%%%02X", c)
		} else {
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// header decodes a record header: inode, record length, name length, type.
func (p *dirParser) header(b []byte) (ino uint32, rl, nl int, ft uint8) {
	ino = le.Uint32(b)
	rl = p.recLen(b[4:])
	if p.filetype {
		nl, ft = int(b[6]), b[7]
	} else {
		nl = int(le.Uint16(b[6:]))
	}
	return
}

// resync returns the offset of the next plausible record at or after off
// (4-byte aligned), or len(b).
func (p *dirParser) resync(b []byte, off int) int {
	off = (off + 3) &^ 3
	for ; off+12 <= len(b); off += 4 {
		ino, rl, nl, ft := p.header(b[off:])
		if ino == 0 || ino > p.inodesCount || nl == 0 || nl > maxNameLen || rl < 8+nl ||
			rl%4 != 0 || off+rl > len(b) || p.filetype && ft > 7 {
			continue
		}
		name := b[off+8 : off+8+nl]
		if bytes.IndexByte(name, 0) >= 0 || bytes.IndexByte(name, '/') >= 0 {
			continue
		}
		return off
	}
	return len(b)
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
	ents, ps := f.dirents(in)
	var problems problemLog
	for _, p := range ps {
		problems.Add(p)
	}
	raw := make([]fs.UnixEntry, len(ents))
	for i, e := range ents {
		raw[i] = fs.UnixEntry{Name: e.name, Node: fs.Node(e.ino), FileType: e.ft, Where: fs.Extent{Physical: e.where, Length: int64(e.len)}, Suspect: e.suspect}
	}
	out := fs.UnixEntries(raw, f.filetype(), func(n fs.Node) (iofs.FileMode, bool) {
		c, err := f.readInode(uint32(n))
		if err != nil || c.mode == 0 {
			return 0, false
		}
		return typeMode(c.typ()), true
	}, &problems)
	if msg := problems.Summary(); msg != "" {
		return out, errDamaged("directory %d: %s", n, msg)
	}
	return out, nil
}

type problemLog = fs.ProblemLog

// located is a dirent with its volume position.
type located struct {
	dirent
	where int64
}

// dirents reads every entry of a directory inode, with the problems found.
func (f *FS) dirents(in *inode) ([]located, []string) {
	p := &dirParser{
		bs:          int(f.bs),
		filetype:    f.sb.incompat&incompatFiletype != 0,
		inodesCount: f.inodesCount,
		csum:        f.metadataCsum,
		seed:        f.inodeSeed(in.num, in.generation()),
		encrypted:   in.flags&flagEncrypt != 0,
	}
	if !f.hasBlockMap(in) {
		return f.inlineDirents(in, p)
	}
	var problems problemLog
	m := f.mapInode(in)
	for _, p := range m.Problems {
		problems.Add(p)
	}
	// Every mapped block is read, up to maxDirBytes, even past a wrong
	// i_size (as debugfs and e2fsck do).
	limit := uint64(maxDirBytes) / uint64(f.bs)
	sizeBlocks := (uint64(in.size) + uint64(f.bs) - 1) / uint64(f.bs)
	if uint64(in.size)%uint64(f.bs) != 0 {
		problems.Addf("directory size %d is not a multiple of the block size", in.size)
	}
	var out []located
	var ents []dirent
	buf := make([]byte, f.bs)
	pastSize, unwritten := false, false
	for _, r := range m.Runs {
		if r.Off >= limit {
			problems.Addf("directory blocks past %d bytes not read", maxDirBytes)
			break
		}
		switch r.Kind {
		case runUnknown:
			problems.Addf("blocks %d-%d: mapping lost", r.Off, r.Off+r.N-1)
			continue
		case runUnwritten:
			unwritten = true // invalid for a directory: read the blocks anyway
		}
		for i := uint64(0); i < r.N && r.Off+i < limit; i++ {
			lb, pb := r.Off+i, r.Phys+i
			if lb >= sizeBlocks {
				pastSize = true
			}
			if err := f.readBlock(buf, pb); err != nil {
				problems.Addf("block %d: %v", lb, err)
				continue
			}
			pos := f.blockPos(pb)
			if f.suspect(pos, f.bs) {
				problems.Addf("block %d lies in a damaged range", lb)
			}
			var bp []string
			ents, bp = p.parseBlock(buf, lb == 0, ents[:0])
			for _, s := range bp {
				problems.Addf("block %d: %s", lb, s)
			}
			for _, e := range ents {
				out = append(out, located{e, pos + int64(e.off)})
			}
			if len(out) > maxDirEntries {
				problems.Addf("more than %d entries: the rest not read", maxDirEntries)
				return out[:maxDirEntries], problems.List()
			}
		}
	}
	if pastSize {
		problems.Addf("blocks mapped past the directory size %d", in.size)
	}
	if unwritten {
		problems.Add("directory blocks marked unwritten")
	}
	return out, problems.List()
}

// inlineDirents reads an inline directory: the parent inode number, then
// records in the rest of i_block and in the system.data attribute.
func (f *FS) inlineDirents(in *inode, p *dirParser) ([]located, []string) {
	data, problems := f.inlineData(in)
	if len(data) < 4 {
		return nil, append(problems, "inline directory too short")
	}
	var out []located
	iblk := min(len(data), inlineDataISize)
	ents, bp := p.parseEntries(data[4:iblk], nil, nil)
	for _, e := range ents {
		out = append(out, located{e, in.pos + 0x28 + 4 + int64(e.off)})
	}
	problems = append(problems, bp...)
	if len(data) > inlineDataISize {
		ents, bp = p.parseEntries(data[inlineDataISize:], nil, nil)
		for _, e := range ents {
			e.len = int(f.inodeSize) // the attribute lies somewhere in the inode
			out = append(out, located{e, in.pos})
		}
		problems = append(problems, bp...)
	}
	for i, s := range problems {
		problems[i] = "inline: " + s
	}
	return out, problems
}

package xfs

import (
	"bytes"
	"fmt"
)

// Bounds on the attributes of one inode, whatever the disk says.
const (
	maxXattrBytes  = 4 << 20
	maxAttrBlocks  = 1 << 16
	maxValueLength = 1 << 16 // XFS values are at most 64 KiB
)

// rawAttr is one attribute as stored: namespace flags, name and value.
type rawAttr struct {
	flags uint8
	name  []byte
	value []byte
}

// xattrs returns an inode's extended attributes by their Linux names, and
// the problems met reading them.
func (f *FS) xattrs(in *inode) (map[string][]byte, []string) {
	raw, problems := f.rawAttrs(in)
	if len(raw) == 0 {
		return nil, problems
	}
	out := make(map[string][]byte, len(raw))
	for _, a := range raw {
		name, value, ok := linuxXattr(a)
		if !ok {
			continue
		}
		if _, dup := out[name]; dup {
			problems = append(problems, fmt.Sprintf("attribute %s stored twice", name))
			continue
		}
		out[name] = value
	}
	return out, problems
}

// linuxXattr names an attribute as Linux does, converting XFS's ACLs; it
// reports false for attributes Linux does not list.
func linuxXattr(a rawAttr) (string, []byte, bool) {
	switch {
	case a.flags&(attrIncomplete|attrParent) != 0:
		return "", nil, false
	case a.flags&attrRoot != 0:
		switch string(a.name) {
		case "SGI_ACL_FILE":
			if v, ok := convertACL(a.value); ok {
				return "system.posix_acl_access", v, true
			}
		case "SGI_ACL_DEFAULT":
			if v, ok := convertACL(a.value); ok {
				return "system.posix_acl_default", v, true
			}
		}
		return "trusted." + string(a.name), a.value, true
	case a.flags&attrSecure != 0:
		return "security." + string(a.name), a.value, true
	}
	return "user." + string(a.name), a.value, true
}

// POSIX ACL entry tags that carry an id.
const (
	aclUser  = 0x02
	aclGroup = 0x08
)

// convertACL turns XFS's ACL format (a big-endian count, then tag, id,
// permissions per entry) into the Linux xattr format (version 2, then
// little-endian tag, permissions, id per entry).
func convertACL(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := int(be.Uint32(b))
	if n > (len(b)-4)/12 {
		return nil, false
	}
	out := le.AppendUint32(make([]byte, 0, 4+8*n), 2)
	for i := 0; i < n; i++ {
		e := b[4+12*i:]
		tag, id, perm := be.Uint32(e), be.Uint32(e[4:]), be.Uint16(e[8:])
		if tag != aclUser && tag != aclGroup {
			id = 0xFFFFFFFF
		}
		out = le.AppendUint16(out, uint16(tag))
		out = le.AppendUint16(out, perm)
		out = le.AppendUint32(out, id)
	}
	return out, true
}

// rawAttrs reads the attribute fork, whatever its format.
func (f *FS) rawAttrs(in *inode) ([]rawAttr, []string) {
	if in.forkoff == 0 {
		return nil, nil
	}
	switch in.aformat {
	case fmtLocal:
		return shortformAttrs(f.attrFork(in))
	case fmtExtents, fmtBtree:
	default:
		return nil, []string{fmt.Sprintf("attribute fork format %d invalid", in.aformat)}
	}
	r := attrReader{f: f, in: in, m: f.mapFork(in, true), seen: map[uint64]bool{}}
	r.problems.Add(r.m.Problems...)
	if len(r.m.Runs) == 0 {
		return nil, r.problems.List() // an empty fork: no attributes
	}
	r.block(0, -1)
	return r.out, r.problems.List()
}

// shortformAttrs decodes attributes kept in the inode.
func shortformAttrs(b []byte) ([]rawAttr, []string) {
	if len(b) < 4 {
		return nil, []string{"short-form attributes truncated"}
	}
	total := int(be.Uint16(b))
	count := int(b[2])
	if total < 4 || total > len(b) {
		return nil, []string{fmt.Sprintf("short-form attributes size %d invalid", total)}
	}
	b = b[:total]
	var out []rawAttr
	off := 4
	for i := 0; i < count; i++ {
		if off+3 > len(b) {
			return out, []string{fmt.Sprintf("short-form attributes truncated after %d of %d", i, count)}
		}
		nl, vl := int(b[off]), int(b[off+1])
		if off+3+nl+vl > len(b) {
			return out, []string{fmt.Sprintf("short-form attribute %d runs past the fork", i)}
		}
		out = append(out, rawAttr{flags: b[off+2], name: b[off+3 : off+3+nl], value: b[off+3+nl : off+3+nl+vl]})
		off += 3 + nl + vl
	}
	return out, nil
}

// attrReader walks an attribute fork's dabtree.
type attrReader struct {
	f        *FS
	in       *inode
	m        *forkMap
	seen     map[uint64]bool
	out      []rawAttr
	bytes    int
	problems problemLog
}

// read returns the attribute fork's block lb and its volume offset.
func (r *attrReader) read(lb uint64) ([]byte, int64, error) {
	i, _ := r.m.Find(lb)
	if i < 0 || r.m.Runs[i].Kind != runData {
		return nil, -1, fmt.Errorf("attribute block %d not mapped", lb)
	}
	run := r.m.Runs[i]
	pos := r.f.fsbPos(run.Phys + lb - run.Off)
	b, err := r.f.metaBlock(pos, int(r.f.bs))
	if err != nil {
		return nil, pos, err
	}
	if r.f.suspect(pos, r.f.bs) {
		r.problems.Addf("attribute block %d lies in a damaged range", lb)
	}
	return b, pos, nil
}

// block reads attribute block lb: a leaf, or a node at the given level (-1:
// the root, any level).
func (r *attrReader) block(lb uint64, level int) {
	f := r.f
	if r.seen[lb] || len(r.seen) >= maxAttrBlocks {
		r.problems.Addf("attribute tree loop or too large at block %d", lb)
		return
	}
	r.seen[lb] = true
	b, pos, err := r.read(lb)
	if err != nil {
		r.problems.Addf("%v", err)
		return
	}
	magic := be.Uint16(b[8:])
	leafMagic, nodeMagic := uint16(attrLeafMagic), uint16(daNodeMagic)
	if f.v5 {
		leafMagic, nodeMagic = attr3LeafMagic, da3NodeMagic
	}
	if f.v5 && (magic == leafMagic || magic == nodeMagic) {
		switch {
		case !crcOK(b, 12):
			r.problems.Addf("attribute block %d checksum mismatch", lb)
		case be.Uint64(b[48:]) != r.in.num || be.Uint64(b[16:]) != uint64(pos/512):
			r.problems.Addf("attribute block %d belongs elsewhere", lb)
		}
	}
	switch {
	case magic == leafMagic && level <= 0:
		r.leaf(b, lb)
	case magic == nodeMagic && level != 0:
		hdr, cnt, lvl := daNodeHdrV4, int(be.Uint16(b[12:])), int(be.Uint16(b[14:]))
		if f.v5 {
			hdr, cnt, lvl = daNodeHdrV5, int(be.Uint16(b[56:])), int(be.Uint16(b[58:]))
		}
		if lvl < 1 || lvl > 20 || level > 0 && lvl != level {
			r.problems.Addf("attribute node %d: level %d invalid", lb, lvl)
			return
		}
		if room := (len(b) - hdr) / 8; cnt > room {
			r.problems.Addf("attribute node %d claims %d entries, room for %d", lb, cnt, room)
			cnt = room
		}
		// Copy the pointers: b is a shared cache slice that later reads may evict.
		before := make([]uint64, cnt)
		for i := range before {
			before[i] = uint64(be.Uint32(b[hdr+8*i+4:]))
		}
		for _, c := range before {
			r.block(c, lvl-1)
		}
	default:
		r.problems.Addf("attribute block %d: bad magic %#x", lb, magic)
	}
}

// leaf decodes an attribute leaf block.
func (r *attrReader) leaf(b []byte, lb uint64) {
	f := r.f
	hdr, cnt := attrLeafHdrV4, int(be.Uint16(b[12:]))
	if f.v5 {
		hdr, cnt = attrLeafHdrV5, int(be.Uint16(b[56:]))
	}
	if room := (len(b) - hdr) / 8; cnt > room {
		r.problems.Addf("attribute leaf %d claims %d entries, room for %d", lb, cnt, room)
		cnt = room
	}
	for i := 0; i < cnt; i++ {
		e := b[hdr+8*i:]
		idx, flags := int(be.Uint16(e[4:])), e[6]
		if idx < hdr || idx+4 > len(b) {
			r.problems.Addf("attribute leaf %d: entry %d at offset %d invalid", lb, i, idx)
			continue
		}
		var a rawAttr
		a.flags = flags
		if flags&attrLocal != 0 {
			vl, nl := int(be.Uint16(b[idx:])), int(b[idx+2])
			if idx+3+nl+vl > len(b) {
				r.problems.Addf("attribute leaf %d: entry %d runs past the block", lb, i)
				continue
			}
			a.name = bytes.Clone(b[idx+3 : idx+3+nl])
			a.value = bytes.Clone(b[idx+3+nl : idx+3+nl+vl])
		} else {
			if idx+9 > len(b) {
				r.problems.Addf("attribute leaf %d: entry %d runs past the block", lb, i)
				continue
			}
			vblk, vl, nl := uint64(be.Uint32(b[idx:])), int(be.Uint32(b[idx+4:])), int(b[idx+8])
			if idx+9+nl > len(b) {
				r.problems.Addf("attribute leaf %d: entry %d runs past the block", lb, i)
				continue
			}
			a.name = bytes.Clone(b[idx+9 : idx+9+nl])
			if flags&attrIncomplete == 0 {
				a.value = r.remote(vblk, vl)
			}
		}
		if len(a.name) == 0 {
			r.problems.Addf("attribute leaf %d: entry %d has no name", lb, i)
			continue
		}
		if r.bytes += len(a.value); r.bytes > maxXattrBytes {
			r.problems.Addf("attribute values past %d bytes not read", maxXattrBytes)
			return
		}
		r.out = append(r.out, a)
	}
}

// remote reads a value kept in its own blocks from attribute block vblk.
func (r *attrReader) remote(vblk uint64, n int) []byte {
	f := r.f
	if n < 0 || n > maxValueLength {
		r.problems.Addf("remote attribute value length %d invalid", n)
		return nil
	}
	out := make([]byte, n)
	if !f.v5 {
		for at := 0; at < n; at += int(f.bs) {
			b, _, err := r.read(vblk + uint64(at)/uint64(f.bs))
			if err != nil {
				r.problems.Addf("remote attribute value: %v", err)
				return out
			}
			copy(out[at:], b)
		}
		return out
	}
	per := int(f.bs) - rmtHdrSize
	for i := 0; i*per < n; i++ {
		b, _, err := r.read(vblk + uint64(i))
		if err != nil {
			r.problems.Addf("remote attribute value: %v", err)
			return out
		}
		switch {
		case be.Uint32(b) != attr3RmtMagic:
			r.problems.Addf("remote attribute block %d: bad magic", vblk+uint64(i))
			continue
		case !crcOK(b, 12):
			r.problems.Addf("remote attribute block %d: checksum mismatch", vblk+uint64(i))
		case be.Uint64(b[32:]) != r.in.num:
			r.problems.Addf("remote attribute block %d belongs to inode %d", vblk+uint64(i), be.Uint64(b[32:]))
		}
		at, cnt := int(be.Uint32(b[4:])), int(be.Uint32(b[8:]))
		if at < 0 || at >= n || cnt < 0 || cnt > per {
			r.problems.Addf("remote attribute block %d: range %d+%d invalid", vblk+uint64(i), at, cnt)
			continue
		}
		copy(out[at:min(n, at+cnt)], b[rmtHdrSize:rmtHdrSize+cnt])
	}
	return out
}

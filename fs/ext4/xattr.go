package ext4

import (
	"fmt"
	"io"
)

// xattrPrefix maps an entry's name index to its name prefix.
var xattrPrefix = map[uint8]string{
	1:  "user.",
	2:  "system.posix_acl_access",
	3:  "system.posix_acl_default",
	4:  "trusted.",
	6:  "security.",
	7:  "system.",
	8:  "system.richacl",
	10: "gnu.",
}

// xattrEntry is one decoded attribute.
type xattrEntry struct {
	index uint8
	name  string // without prefix
	value []byte
	vino  uint32 // the EA inode holding the value, or 0
}

// parseXattrEntries decodes the entry list of an xattr region: entries
// start at region[start:], values are at offsets relative to region[vbase:].
// EA-inode values are fetched with ea.
func parseXattrEntries(region []byte, start, vbase int, ea func(ino uint32, size uint32) ([]byte, error)) ([]xattrEntry, []string) {
	var out []xattrEntry
	var problems []string
	off := start
	total := 0
	for n := 0; off+16 <= len(region) && n < 4096; n++ {
		if total > xattrMaxTotal {
			problems = append(problems, "xattr values too large in all: rest not read")
			break
		}
		if le.Uint32(region[off:]) == 0 {
			break // the end-of-list marker
		}
		nameLen := int(region[off])
		index := region[off+1]
		voff := int(le.Uint16(region[off+2:]))
		vino := le.Uint32(region[off+4:])
		vsize := le.Uint32(region[off+8:])
		next := off + (16+nameLen+3)&^3
		if off+16+nameLen > len(region) {
			problems = append(problems, "xattr entry runs past its region")
			break
		}
		name := string(region[off+16 : off+16+nameLen])
		e := xattrEntry{index: index, name: name, vino: vino}
		switch {
		case vino != 0:
			if ea == nil {
				problems = append(problems, fmt.Sprintf("xattr %q: value in inode %d without ea_inode", name, vino))
				off = next
				continue
			}
			v, err := ea(vino, vsize)
			if err != nil {
				problems = append(problems, fmt.Sprintf("xattr %q: %v", name, err))
			}
			e.value = v
			total += len(v)
		case vsize > xattrMaxValue || vbase+voff+int(vsize) > len(region) || vbase+voff < start && vsize > 0:
			problems = append(problems, fmt.Sprintf("xattr %q: value out of range", name))
			off = next
			continue
		default:
			e.value = append([]byte(nil), region[vbase+voff:vbase+voff+int(vsize)]...)
			total += int(vsize)
		}
		out = append(out, e)
		off = next
	}
	return out, problems
}

// rawXattrs returns the attributes of the inode body and of its xattr
// block (in that order), with problems found.
func (f *FS) rawXattrs(in *inode) ([]xattrEntry, []string) {
	var all []xattrEntry
	var problems []string
	ea := func(ino uint32, size uint32) ([]byte, error) { return f.eaInodeValue(in, ino, size) }
	if start := 128 + in.extra; in.extra > 0 && start+4 <= len(in.b) && le.Uint32(in.b[start:]) == xattrMagic {
		es, p := parseXattrEntries(in.b[start:], 4, 4, ea)
		all = append(all, es...)
		problems = append(problems, p...)
	}
	if blk := in.fileACL(); blk != 0 {
		es, p := f.blockXattrs(in, blk, ea)
		all = append(all, es...)
		problems = append(problems, p...)
	}
	return all, problems
}

// blockXattrs reads the attributes in xattr block blk.
func (f *FS) blockXattrs(in *inode, blk uint64, ea func(uint32, uint32) ([]byte, error)) ([]xattrEntry, []string) {
	if blk >= f.sb.blocksCount || blk < uint64(f.sb.firstDataBlock) {
		return nil, []string{fmt.Sprintf("xattr block %d out of range", blk)}
	}
	b, err := f.metaBlock(blk)
	if err != nil {
		return nil, []string{fmt.Sprintf("xattr block %d unreadable: %v", blk, err)}
	}
	var problems []string
	if f.suspectBlock(blk) {
		problems = append(problems, fmt.Sprintf("xattr block %d lies in a damaged range", blk))
	}
	if le.Uint32(b) != xattrMagic || le.Uint32(b[8:]) != 1 {
		return nil, append(problems, fmt.Sprintf("xattr block %d: bad header", blk))
	}
	if f.metadataCsum {
		var bn [8]byte
		le.PutUint64(bn[:], blk)
		c := crc32c(f.csumSeed, bn[:])
		c = crc32c(c, b[:0x10])
		c = crc32c(c, []byte{0, 0, 0, 0})
		c = crc32c(c, b[0x14:])
		if c != le.Uint32(b[0x10:]) {
			problems = append(problems, fmt.Sprintf("xattr block %d checksum mismatch", blk))
		}
	}
	es, p := parseXattrEntries(b, 32, 0, ea)
	return es, append(problems, p...)
}

// eaInodeValue reads an attribute value stored in its own inode.
func (f *FS) eaInodeValue(owner *inode, ino uint32, size uint32) ([]byte, error) {
	if f.sb.incompat&incompatEAInode == 0 {
		return nil, fmt.Errorf("value in inode %d but ea_inode is off", ino)
	}
	if ino == owner.num || size > xattrMaxValue {
		return nil, fmt.Errorf("value inode %d (size %d) invalid", ino, size)
	}
	in, err := f.readInode(ino)
	if err != nil {
		return nil, err
	}
	if in.flags&flagEAInode == 0 || in.typ() != sIFREG {
		return nil, fmt.Errorf("inode %d is not an EA inode", ino)
	}
	if ps := in.problems.List(); len(ps) > 0 {
		return nil, fmt.Errorf("value inode %d: %s", ino, ps[0])
	}
	if in.size != int64(size) {
		return nil, fmt.Errorf("value inode %d has size %d, entry says %d", ino, in.size, size)
	}
	buf := make([]byte, size)
	if _, err := f.openInode(in).ReadAt(buf, 0); err != nil && err != io.EOF {
		return buf, err
	}
	return buf, nil
}

// xattrs returns the attributes by full name, as documented in the package
// comment, and the problems found.
func (f *FS) xattrs(in *inode) (map[string][]byte, []string) {
	es, problems := f.rawXattrs(in)
	if len(es) == 0 {
		return nil, problems
	}
	out := make(map[string][]byte, len(es))
	for _, e := range es {
		prefix, ok := xattrPrefix[e.index]
		if !ok {
			continue // encryption context, unknown indexes: not user-visible
		}
		name := prefix + e.name
		v := e.value
		switch e.index {
		case 2, 3:
			name = prefix
			if acl, err := aclToXattr(v); err == nil {
				v = acl
			} else {
				problems = append(problems, fmt.Sprintf("%s: %v", name, err))
				continue
			}
		case 7:
			if e.name == "data" {
				continue // inline data, not an attribute
			}
		}
		out[name] = v
	}
	return out, problems
}

// POSIX ACL entry tags.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

// aclToXattr converts ext4's on-disk ACL (version 1; short entries without
// an id for the *_OBJ, MASK and OTHER tags) to the xattr form (version 2,
// every entry tag, perm, id; id 0xFFFFFFFF where undefined).
func aclToXattr(v []byte) ([]byte, error) {
	if len(v) < 4 || le.Uint32(v) != 1 {
		return nil, fmt.Errorf("bad ACL header")
	}
	out := make([]byte, 4, 4+2*len(v))
	le.PutUint32(out, 2)
	for p := v[4:]; len(p) > 0; {
		if len(p) < 4 {
			return nil, fmt.Errorf("truncated ACL entry")
		}
		tag, perm := le.Uint16(p), le.Uint16(p[2:])
		id := uint32(0xFFFFFFFF)
		switch tag {
		case aclUser, aclGroup:
			if len(p) < 8 {
				return nil, fmt.Errorf("truncated ACL entry")
			}
			id = le.Uint32(p[4:])
			p = p[8:]
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			p = p[4:]
		default:
			return nil, fmt.Errorf("unknown ACL tag %#x", tag)
		}
		var e [8]byte
		le.PutUint16(e[0:], tag)
		le.PutUint16(e[2:], perm)
		le.PutUint32(e[4:], id)
		out = append(out, e[:]...)
	}
	return out, nil
}

// inlineData returns the content of an inline-data inode: i_block, then
// the value of its system.data attribute, up to the inode's size.
func (f *FS) inlineData(in *inode) ([]byte, []string) {
	size := min(in.size, int64(len(in.b)+inlineDataISize))
	var data []byte
	var problems []string
	if in.typ() == sIFLNK && in.flags&flagInlineData == 0 {
		data = append(data, in.iblock()...) // a fast symlink
	} else if in.flags&flagInlineData != 0 {
		data = append(data, in.iblock()...)
		if size > inlineDataISize {
			es, p := f.rawXattrs(in)
			problems = p
			found := false
			for _, e := range es {
				if e.index == 7 && e.name == "data" {
					data = append(data, e.value...)
					found = true
					break
				}
			}
			if !found {
				problems = append(problems, "inline data attribute missing")
			}
		}
	}
	if int64(len(data)) > size {
		data = data[:size]
	}
	return data, problems
}

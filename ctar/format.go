// Package ctar reads the tar streams of Proxmox container backups
// (vzdump-lxc-*.tar[.zst|.gz|.lzo]) past damage.
//
// vzdump writes them with GNU tar --sparse --numeric-owner --acls --xattrs,
// which makes POSIX (pax) archives: every member has a pax header (times,
// long names, SCHILY.xattr.* and SCHILY.acl.*), sparse files are GNU sparse
// 1.0. The reader also takes GNU format (././@LongLink, old GNU sparse) and
// the pax sparse formats 0.0 and 0.1.
//
// Scan reads a decompressed stream (a codec.Reader, with its damage spans)
// once and builds an Index: every member with its metadata and where its
// bytes lie in the stream. A header is taken only when its checksum, magic
// and fields hold and none of its bytes lie in damage; after damage or an
// invalid header the scan resynchronises on the next valid header. A
// member cut by damage keeps its readable bytes at the places its header
// gives them, and its damage (in stream offsets) is known. NewFS presents
// an Index as a guest filesystem (fs.FS), so that listing and copying out
// work as for any other filesystem.
package ctar

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// BlockSize is tar's unit: headers and data are padded to it.
const BlockSize = 512

// Type flags.
const (
	TypeReg      = '0'
	TypeRegOld   = '\x00'
	TypeLink     = '1'
	TypeSymlink  = '2'
	TypeChar     = '3'
	TypeBlock    = '4'
	TypeDir      = '5'
	TypeFifo     = '6'
	TypeCont     = '7'
	TypePax      = 'x'
	TypePaxGlob  = 'g'
	TypeLongName = 'L'
	TypeLongLink = 'K'
	TypeSparse   = 'S'
	TypeDumpDir  = 'D'
	TypeMultiVol = 'M'
	TypeVolume   = 'V'
)

// Errors of header parsing.
var (
	// ErrHeader: a block is not a valid tar header.
	ErrHeader = errors.New("invalid tar header")
)

// Limits on what a header may announce; they bound allocations.
const (
	maxExtSize    = 1 << 20  // pax header or GNU long name data
	maxSparseMap  = 1 << 16  // sparse regions per member
	maxSparseText = 16 << 20 // GNU sparse 1.0 map text in the data
	maxMemberSize = 1 << 46  // 64 TiB
)

// header is a parsed tar header block (before pax and GNU extensions).
type header struct {
	name, linkname string
	typ            byte
	mode           int64
	uid, gid       int64
	size           int64
	mtime          int64
	atime, ctime   int64 // GNU format only; 0 if absent
	uname, gname   string
	devmajor       int64
	devminor       int64
	gnu            bool // "ustar  \0" magic (GNU); else POSIX "ustar\x0000"
	tainted        bool // the block lies in tainted bytes
	// old GNU sparse ('S'): the map in the header, whether extension
	// blocks follow, and the real size.
	sparse   []region
	extended bool
	realsize int64
}

// knownType reports whether t is a type flag vzsalvage accepts.
func knownType(t byte) bool {
	return strings.IndexByte("01234567xgLKSDMV\x00", t) >= 0
}

// isZero reports whether b is all zero bytes.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// hasMagic reports whether blk carries a ustar or GNU magic: the cheap test
// a header candidate must pass before parsing.
func hasMagic(blk []byte) bool {
	m := blk[257:265]
	return string(m) == "ustar\x0000" || string(m) == "ustar  \x00"
}

// checksumOK verifies the header checksum (unsigned, or the historic signed
// sum).
func checksumOK(blk []byte) bool {
	want, ok := parseOctal(blk[148:156])
	if !ok {
		return false
	}
	var u, s int64
	for i, c := range blk[:BlockSize] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		u += int64(c)
		s += int64(int8(c))
	}
	return want == u || want == s
}

// parseHeader parses a 512-byte block as a header. It checks the magic,
// the checksum, the type flag and every numeric field, so that random data
// is not taken for a header.
func parseHeader(blk []byte) (*header, error) {
	if len(blk) < BlockSize || !hasMagic(blk) {
		return nil, fmt.Errorf("%w: no ustar magic", ErrHeader)
	}
	if !checksumOK(blk) {
		return nil, fmt.Errorf("%w: checksum", ErrHeader)
	}
	h := &header{typ: blk[156], gnu: blk[262] == ' '}
	if !knownType(h.typ) {
		return nil, fmt.Errorf("%w: type %q", ErrHeader, h.typ)
	}
	var ok [7]bool
	h.mode, ok[0] = parseNumeric(blk[100:108])
	h.uid, ok[1] = parseNumeric(blk[108:116])
	h.gid, ok[2] = parseNumeric(blk[116:124])
	h.size, ok[3] = parseNumeric(blk[124:136])
	h.mtime, ok[4] = parseNumeric(blk[136:148])
	h.devmajor, ok[5] = parseNumeric(blk[329:337])
	h.devminor, ok[6] = parseNumeric(blk[337:345])
	for _, o := range ok {
		if !o {
			return nil, fmt.Errorf("%w: bad numeric field", ErrHeader)
		}
	}
	if h.size < 0 || h.size > maxMemberSize || h.mode < 0 || h.mode > 0o7777777 || h.uid < 0 || h.gid < 0 {
		return nil, fmt.Errorf("%w: field out of range", ErrHeader)
	}
	h.name = cstring(blk[0:100])
	h.linkname = cstring(blk[157:257])
	h.uname = cstring(blk[265:297])
	h.gname = cstring(blk[297:329])
	if h.gnu {
		h.atime, _ = parseNumeric(blk[345:357])
		h.ctime, _ = parseNumeric(blk[357:369])
		if h.typ == TypeSparse {
			for i := 0; i < 4; i++ {
				e := blk[386+24*i : 386+24*(i+1)]
				if isZero(e) {
					break
				}
				off, ok1 := parseNumeric(e[:12])
				n, ok2 := parseNumeric(e[12:])
				if !ok1 || !ok2 || off < 0 || n < 0 {
					return nil, fmt.Errorf("%w: sparse map", ErrHeader)
				}
				h.sparse = append(h.sparse, region{off, n})
			}
			h.extended = blk[482] != 0
			var ok bool
			if h.realsize, ok = parseNumeric(blk[483:495]); !ok || h.realsize < 0 {
				return nil, fmt.Errorf("%w: sparse real size", ErrHeader)
			}
		}
	} else if p := cstring(blk[345:500]); p != "" {
		h.name = p + "/" + h.name
	}
	if h.name == "" && h.typ != TypeVolume {
		return nil, fmt.Errorf("%w: empty name", ErrHeader)
	}
	return h, nil
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseNumeric reads a numeric header field: octal digits (with leading
// spaces and trailing spaces or NULs) or GNU's base-256 (high bit set). An
// all-NUL field is 0.
func parseNumeric(b []byte) (int64, bool) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0] == 0xff || len(b) > 12 {
			return 0, false // negative, or too long for us
		}
		v := int64(b[0] & 0x7f)
		for _, c := range b[1:] {
			if v > (1<<55)-1 {
				return 0, false
			}
			v = v<<8 | int64(c)
		}
		return v, true
	}
	return parseOctal(b)
}

// parseOctal reads an octal field.
func parseOctal(b []byte) (int64, bool) {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	var v int64
	digits := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '7'; i++ {
		if v > (1<<60)-1 {
			return 0, false
		}
		v = v*8 + int64(b[i]-'0')
		digits++
	}
	for ; i < len(b); i++ {
		if b[i] != ' ' && b[i] != 0 {
			return 0, false
		}
	}
	if digits == 0 && !isZero(b) && strings.TrimRight(string(b), " \x00") != "" {
		return 0, false
	}
	return v, true
}

// region is a range of a sparse file's content that holds data.
type region struct{ off, n int64 }

// parseSparseExt reads an old GNU sparse extension block: 21 entries and
// the is-extended flag.
func parseSparseExt(blk []byte) ([]region, bool, error) {
	var rs []region
	for i := 0; i < 21; i++ {
		e := blk[24*i : 24*(i+1)]
		if isZero(e) {
			break
		}
		off, ok1 := parseNumeric(e[:12])
		n, ok2 := parseNumeric(e[12:])
		if !ok1 || !ok2 || off < 0 || n < 0 {
			return nil, false, fmt.Errorf("%w: sparse extension", ErrHeader)
		}
		rs = append(rs, region{off, n})
	}
	return rs, blk[504] != 0, nil
}

// paxRecord is one "key=value" of a pax extended header, in order (GNU
// sparse 0.0 repeats keys).
type paxRecord struct{ key, value string }

// parsePax reads pax records: "LEN KEY=VALUE\n", LEN counting the whole
// record.
func parsePax(b []byte) ([]paxRecord, error) {
	var out []paxRecord
	for len(b) > 0 {
		if b[0] == 0 && isZero(b) {
			break // padding
		}
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 || sp > 10 {
			return out, fmt.Errorf("%w: pax record length", ErrHeader)
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n <= sp+2 || n > len(b) || b[n-1] != '\n' {
			return out, fmt.Errorf("%w: pax record", ErrHeader)
		}
		kv := b[sp+1 : n-1]
		eq := bytes.IndexByte(kv, '=')
		if eq <= 0 {
			return out, fmt.Errorf("%w: pax record without key", ErrHeader)
		}
		out = append(out, paxRecord{string(kv[:eq]), string(kv[eq+1:])})
		b = b[n:]
	}
	return out, nil
}

// parsePaxTime reads a pax time: seconds with an optional fraction.
func parsePaxTime(s string) (sec, nsec int64, ok bool) {
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		for len(frac) < 9 {
			frac += "0"
		}
		n, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false
		}
		if strings.HasPrefix(whole, "-") && n > 0 {
			sec--
			n = 1e9 - n
		}
		nsec = n
	}
	return sec, nsec, true
}

// parseSparseList reads "off,len,off,len,..." (pax sparse 0.1).
func parseSparseList(s string) ([]region, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts)%2 != 0 || len(parts)/2 > maxSparseMap {
		return nil, fmt.Errorf("%w: sparse map", ErrHeader)
	}
	rs := make([]region, 0, len(parts)/2)
	for i := 0; i < len(parts); i += 2 {
		off, err1 := strconv.ParseInt(parts[i], 10, 64)
		n, err2 := strconv.ParseInt(parts[i+1], 10, 64)
		if err1 != nil || err2 != nil || off < 0 || n < 0 {
			return nil, fmt.Errorf("%w: sparse map", ErrHeader)
		}
		rs = append(rs, region{off, n})
	}
	return rs, nil
}

// parseSparse10 reads the GNU sparse 1.0 map at the start of a member's
// data: decimal numbers, one a line: the count, then offset and length of
// each region; the map is padded to a block. It returns the regions and
// the map's length in bytes (padded), or ok false if b does not hold the
// whole map yet (more is needed) — err reports a malformed map.
func parseSparse10(b []byte) (rs []region, used int64, ok bool, err error) {
	pos := 0
	next := func() (int64, bool, error) {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			if len(b)-pos > 24 {
				return 0, false, fmt.Errorf("%w: sparse map line", ErrHeader)
			}
			return 0, false, nil
		}
		v, err := strconv.ParseInt(string(b[pos:pos+i]), 10, 64)
		if err != nil || v < 0 {
			return 0, false, fmt.Errorf("%w: sparse map number", ErrHeader)
		}
		pos += i + 1
		return v, true, nil
	}
	count, ok, err := next()
	if !ok || err != nil {
		return nil, 0, ok, err
	}
	if count > maxSparseMap {
		return nil, 0, false, fmt.Errorf("%w: %d sparse regions", ErrHeader, count)
	}
	rs = make([]region, 0, count)
	for i := int64(0); i < count; i++ {
		off, ok, err := next()
		if !ok || err != nil {
			return nil, 0, ok, err
		}
		n, ok, err := next()
		if !ok || err != nil {
			return nil, 0, ok, err
		}
		rs = append(rs, region{off, n})
	}
	used = (int64(pos) + BlockSize - 1) / BlockSize * BlockSize
	return rs, used, true, nil
}

// checkRegions verifies that sparse regions are ordered, do not overlap and
// lie within size, and returns the number of data bytes they hold.
func checkRegions(rs []region, size int64) (int64, error) {
	var end, total int64
	for _, r := range rs {
		if r.off < end || r.n < 0 || r.off > size || r.n > size-r.off {
			return 0, fmt.Errorf("%w: sparse region %d+%d in a file of %d", ErrHeader, r.off, r.n, size)
		}
		end = r.off + r.n
		total += r.n
	}
	return total, nil
}

// IsHeader reports whether b starts with a valid tar header (ustar or GNU
// magic, checksum, fields).
func IsHeader(b []byte) bool {
	_, err := parseHeader(b)
	return err == nil
}

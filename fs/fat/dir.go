package fat

import (
	"fmt"
	iofs "io/fs"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Attribute bits of FAT and exFAT entries.
const (
	attrReadOnly = 0x01
	attrVolumeID = 0x08
	attrDir      = 0x10
	attrLFN      = 0x0F
)

// entry is a file's directory entry, decoded.
type entry struct {
	node     fs.Node
	name     string
	attr     uint16
	first    uint32
	size     int64
	valid    int64 // exFAT valid data length (bytes past it read as zeros)
	noChain  bool  // exFAT NoFatChain: contiguous clusters
	mtime    time.Time
	atime    time.Time
	btime    time.Time
	pos      int64     // volume offset of the short entry / File entry
	setLen   int64     // bytes of the entry (exFAT: the whole set, if contiguous)
	where    fs.Extent // volume bytes of the whole entry with its long name
	problems []string  // of the entry itself (checksums)
}

func (e *entry) isDir() bool { return e.attr&attrDir != 0 }

// remember keeps an entry for Stat, Open and Layout of its node.
func (f *FS) remember(e *entry) {
	f.mu.Lock()
	if len(f.entries) < maxEntries {
		f.entries[e.node] = e
	}
	f.mu.Unlock()
}

// where returns the volume span of bytes [off, off+n) of content mapped by
// exts: from its first to its last byte (a span that crosses clusters lying
// apart covers the bytes between too, which only overstates damage).
func where(exts []fs.Extent, off, n int64) fs.Extent {
	lo, hi := int64(-1), int64(-1)
	for _, e := range exts {
		if off < e.Logical+e.Length && off+n > e.Logical {
			s := e.Physical + max(0, off-e.Logical)
			t := e.Physical + min(e.Length, off+n-e.Logical)
			if lo < 0 || s < lo {
				lo = s
			}
			hi = max(hi, t)
		}
	}
	if lo < 0 {
		return fs.Extent{}
	}
	return fs.Extent{Physical: lo, Length: hi - lo}
}

// dirContent returns where a directory's bytes lie, and the problems met
// mapping them. n is the directory node (0: the root).
func (f *FS) dirContent(n fs.Node) ([]fs.Extent, *chain, []string, error) {
	if n == 0 {
		if !f.g.exfat && f.g.bits != 32 {
			return []fs.Extent{{Physical: f.g.rootOff, Length: f.g.rootLen}}, &chain{}, nil, nil
		}
		limit := int64(maxFATDirBytes)
		if f.g.exfat {
			limit = maxDirBytes
		}
		c := f.follow(f.g.rootClus, limit, false)
		return c.data, c, c.problems, nil
	}
	e, err := f.lookup(n)
	if err != nil {
		return nil, nil, nil, err
	}
	if !e.isDir() {
		return nil, nil, nil, fs.ErrNotDir
	}
	limit := int64(maxFATDirBytes)
	if f.g.exfat {
		limit = min(maxDirBytes, max(e.size, 0))
	}
	c := f.follow(e.first, limit, e.noChain)
	return c.data, c, append(append([]string(nil), e.problems...), c.problems...), nil
}

// ReadDir returns a directory's entries, without "." and "..". On damage it
// returns every entry it could read, with an error wrapping fs.ErrDamaged.
func (f *FS) ReadDir(n fs.Node) ([]fs.DirEntry, error) {
	exts, _, problems, err := f.dirContent(n)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, e := range exts {
		total += e.Length
	}
	buf := make([]byte, total)
	if err := f.readExtents(exts, buf, 0); err != nil {
		problems = append(problems, err.Error())
	}
	for _, e := range exts {
		if f.suspect(e.Physical, e.Length) {
			problems = append(problems, "directory clusters lie in a damaged range")
			break
		}
	}
	var ents []*entry
	var ps []string
	if f.g.exfat {
		ents, ps, _ = f.parseExfatDir(buf, exts)
	} else {
		ents, ps, _ = f.parseFATDir(buf, exts)
	}
	problems = append(problems, ps...)
	out := make([]fs.DirEntry, 0, len(ents))
	seen := map[string]bool{}
	for _, e := range ents {
		if seen[e.name] {
			problems = append(problems, fmt.Sprintf("name %q appears twice", e.name))
			continue
		}
		seen[e.name] = true
		f.remember(e)
		d := fs.DirEntry{Name: e.name, Node: e.node, Where: e.where, Problems: e.problems}
		if e.isDir() {
			d.Type = iofs.ModeDir
		}
		out = append(out, d)
	}
	if len(problems) > 0 {
		msg := problems[0]
		if len(problems) > 1 {
			msg += fmt.Sprintf(" (and %d more problems)", len(problems)-1)
		}
		return out, errDamaged("directory %d: %s", n, msg)
	}
	return out, nil
}

// shortName decodes an 8.3 name, lower-casing base or extension as the
// NT flags in byte 12 say.
func shortName(b []byte) string {
	base := []byte(strings.TrimRight(string(b[0:8]), " "))
	ext := strings.TrimRight(string(b[8:11]), " ")
	if len(base) > 0 && base[0] == 0x05 {
		base[0] = 0xE5
	}
	bs, es := latin1(base), latin1([]byte(ext))
	if b[12]&0x08 != 0 {
		bs = strings.ToLower(bs)
	}
	if b[12]&0x10 != 0 {
		es = strings.ToLower(es)
	}
	if es != "" {
		return bs + "." + es
	}
	return bs
}

// sfnChecksum is the checksum of an 8.3 name that its long name entries
// carry.
func sfnChecksum(b []byte) uint8 {
	var s uint8
	for _, c := range b[:11] {
		s = (s>>1 | s<<7) + c
	}
	return s
}

// fatTime decodes a FAT date and time (local time of an unknown zone,
// taken as UTC) with a count of 10 ms units.
func fatTime(date, tm uint16, tenth uint8) time.Time {
	if date == 0 {
		return time.Time{}
	}
	year, month, day := 1980+int(date>>9), time.Month(date>>5&0xF), int(date&0x1F)
	h, m, s := int(tm>>11), int(tm>>5&0x3F), int(tm&0x1F)*2
	if month < 1 || month > 12 || day < 1 || h > 23 || m > 59 || s > 59 {
		return time.Time{}
	}
	if tenth > 199 {
		tenth = 0
	}
	return time.Date(year, month, day, h, m, s, int(tenth)*10_000_000, time.UTC)
}

// parseFATDir decodes FAT directory entries: long name entries gathered
// and checked against the short entry that follows them. It returns the
// entries, the problems and the volume label if the directory holds one.
func (f *FS) parseFATDir(b []byte, exts []fs.Extent) ([]*entry, []string, string) {
	var out []*entry
	var problems []string
	var label string
	var lfn []uint16
	lfnNext, lfnSum, lfnStart := 0, uint8(0), int64(-1)
	resetLFN := func() { lfn, lfnNext, lfnStart = nil, 0, -1 }
	for off := int64(0); off+32 <= int64(len(b)); off += 32 {
		d := b[off : off+32]
		if d[0] == 0 {
			break
		}
		if d[0] == 0xE5 {
			resetLFN()
			continue
		}
		if d[11]&0x3F == attrLFN {
			ord := int(d[0])
			if ord&0x40 != 0 {
				n := ord & 0x1F
				if n == 0 || n > 20 {
					resetLFN()
					continue
				}
				lfn, lfnNext, lfnSum, lfnStart = make([]uint16, 13*n), n, d[13], off
			}
			if ord&0x1F != lfnNext || d[13] != lfnSum || lfnNext == 0 {
				if lfnStart >= 0 {
					problems = append(problems, fmt.Sprintf("long name entries at offset %d out of sequence", off))
				}
				resetLFN()
				continue
			}
			k := 13 * (lfnNext - 1)
			for i, at := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				lfn[k+i] = le.Uint16(d[at:])
			}
			lfnNext--
			continue
		}
		if d[11]&attrVolumeID != 0 && d[11]&attrDir == 0 {
			label = trimLabel(d[:11])
			resetLFN()
			continue
		}
		if d[0] == '.' && (d[1] == ' ' || d[1] == '.' && d[2] == ' ') {
			resetLFN()
			continue
		}
		e := &entry{
			node:  fs.Node(0),
			attr:  uint16(d[11]),
			first: uint32(le.Uint16(d[26:])) | uint32(le.Uint16(d[20:]))<<16,
			size:  int64(le.Uint32(d[28:])),
			mtime: fatTime(le.Uint16(d[24:]), le.Uint16(d[22:]), 0),
			atime: fatTime(le.Uint16(d[18:]), 0, 0),
			btime: fatTime(le.Uint16(d[16:]), le.Uint16(d[14:]), d[13]),
			name:  shortName(d),
		}
		if f.g.bits != 32 {
			e.first &= 0xFFFF
		}
		e.where = where(exts, off, 32)
		e.pos, e.setLen = e.where.Physical, 32
		e.node = fs.Node(e.pos / 32)
		if lfnStart >= 0 {
			switch {
			case lfnNext != 0:
				problems = append(problems, fmt.Sprintf("incomplete long name before %q", e.name))
			case lfnSum != sfnChecksum(d):
				problems = append(problems, fmt.Sprintf("long name does not belong to %q (checksum)", e.name))
			default:
				if name, ok := decodeUTF16(lfn); ok {
					e.name = name
				}
				e.where = where(exts, lfnStart, off+32-lfnStart)
			}
		}
		resetLFN()
		if !fs.ValidName(e.name) || e.where.Length == 0 {
			problems = append(problems, fmt.Sprintf("entry at offset %d has an invalid name %q", off, e.name))
			continue
		}
		if f.suspect(e.where.Physical, e.where.Length) {
			e.problems = append(e.problems, "directory entry lies in a damaged range")
		}
		out = append(out, e)
		if len(out) >= maxEntries {
			break
		}
	}
	return out, problems, label
}

// decodeUTF16 decodes a long name up to its NUL (0xFFFF pads).
func decodeUTF16(u []uint16) (string, bool) {
	for i, c := range u {
		if c == 0 {
			u = u[:i]
			break
		}
	}
	if len(u) == 0 {
		return "", false
	}
	return string(utf16.Decode(u)), true
}

// exfatTime decodes an exFAT timestamp with its 10 ms count and UTC
// offset byte (bit 7: the offset is valid; 7 bits of 15-minute units).
func exfatTime(ts uint32, ms uint8, utc uint8) time.Time {
	t := fatTime(uint16(ts>>16), uint16(ts), ms)
	if t.IsZero() || utc&0x80 == 0 {
		return t
	}
	q := int(int8(utc<<1) >> 1)
	return t.Add(-time.Duration(q) * 15 * time.Minute)
}

// exfatSetSum is the checksum of an exFAT entry set (bytes 2 and 3 of the
// first entry, which hold it, left out).
func exfatSetSum(set []byte) uint16 {
	var s uint16
	for i, c := range set {
		if i == 2 || i == 3 {
			continue
		}
		s = (s>>1 | s<<15) + uint16(c)
	}
	return s
}

// parseExfatDir decodes exFAT entry sets.
func (f *FS) parseExfatDir(b []byte, exts []fs.Extent) ([]*entry, []string, string) {
	var out []*entry
	var problems []string
	var label string
	for off := int64(0); off+32 <= int64(len(b)); off += 32 {
		d := b[off : off+32]
		switch d[0] {
		case 0:
			return out, problems, label
		case 0x83:
			n := min(int(d[1]), 11)
			u := make([]uint16, n)
			for i := range u {
				u[i] = le.Uint16(d[2+2*i:])
			}
			label, _ = decodeUTF16(u)
			continue
		case 0x85:
		default:
			continue
		}
		sc := int64(d[1])
		if sc < 2 || sc > 18 || off+32*(sc+1) > int64(len(b)) {
			problems = append(problems, fmt.Sprintf("entry set at offset %d invalid (%d secondary entries)", off, sc))
			continue
		}
		set := b[off : off+32*(sc+1)]
		e, ps := parseExfatSet(set)
		if e == nil {
			problems = append(problems, fmt.Sprintf("entry set at offset %d: %s", off, strings.Join(ps, "; ")))
			continue
		}
		if !fs.ValidName(e.name) {
			problems = append(problems, fmt.Sprintf("entry set at offset %d has an invalid name %q", off, e.name))
			off += 32 * sc
			continue
		}
		e.where = where(exts, off, 32*(sc+1))
		e.pos, e.setLen = where(exts, off, 32).Physical, 32*(sc+1)
		e.node = fs.Node(e.pos / 32)
		e.problems = ps
		if f.suspect(e.where.Physical, e.where.Length) {
			e.problems = append(e.problems, "directory entry lies in a damaged range")
		}
		if e.where.Length == 0 {
			continue
		}
		out = append(out, e)
		off += 32 * sc
		if len(out) >= maxEntries {
			break
		}
	}
	return out, problems, label
}

// parseExfatSet decodes a File entry set. It returns nil when the set is
// not usable; problems (a checksum mismatch) otherwise stay with it.
func parseExfatSet(set []byte) (*entry, []string) {
	var problems []string
	if le.Uint16(set[2:]) != exfatSetSum(set) {
		problems = append(problems, "entry set checksum mismatch")
	}
	s := set[32:64]
	if s[0] != 0xC0 {
		return nil, []string{"no stream extension"}
	}
	d := set[:32]
	e := &entry{
		attr:    le.Uint16(d[4:]),
		btime:   exfatTime(le.Uint32(d[8:]), d[20], d[22]),
		mtime:   exfatTime(le.Uint32(d[12:]), d[21], d[23]),
		atime:   exfatTime(le.Uint32(d[16:]), 0, d[24]),
		noChain: s[1]&2 != 0,
		first:   le.Uint32(s[20:]),
		valid:   int64(le.Uint64(s[8:])),
		size:    int64(le.Uint64(s[24:])),
	}
	if e.size < 0 || e.valid < 0 || e.valid > e.size {
		problems = append(problems, fmt.Sprintf("sizes %d/%d invalid", e.valid, e.size))
		e.size = max(e.size, 0)
		e.valid = min(max(e.valid, 0), e.size)
	}
	nl := int(s[3])
	var u []uint16
	for k := 64; k+32 <= len(set) && len(u) < nl; k += 32 {
		if set[k] != 0xC1 {
			break
		}
		for i := 0; i < 15 && len(u) < nl; i++ {
			u = append(u, le.Uint16(set[k+2+2*i:]))
		}
	}
	if len(u) < nl || nl == 0 {
		return nil, append(problems, "name entries missing")
	}
	name, ok := decodeUTF16(u)
	if !ok {
		return nil, append(problems, "empty name")
	}
	e.name = name
	return e, problems
}

// rootLabel returns the volume label kept in the root directory.
func (f *FS) rootLabel() (string, bool) {
	exts, _, _, err := f.dirContent(0)
	if err != nil || len(exts) == 0 {
		return "", false
	}
	n := min(exts[0].Length, 1<<20)
	b := make([]byte, n)
	if f.readAt(b, exts[0].Physical) != nil {
		return "", false
	}
	var l string
	if f.g.exfat {
		_, _, l = f.parseExfatDir(b, exts[:1])
	} else {
		_, _, l = f.parseFATDir(b, exts[:1])
	}
	return l, l != ""
}

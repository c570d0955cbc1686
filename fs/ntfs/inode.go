package ntfs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"sort"
	"strings"
	"unicode/utf16"

	"github.com/vzsalvage/vzsalvage/fs"
)

const (
	maxXattrStream = 64 << 10 // a named stream up to this size is an xattr
	maxLinkBytes   = 4096
	interixLink    = "IntxLNK\x01"
)

// nodeRecord returns the record of a node and, for a stream node, the
// stream's name.
func (f *FS) nodeRecord(n fs.Node) (*record, string, error) {
	num, si := uint64(n)&(1<<48-1), int(uint64(n)>>48)
	rec, err := f.record(num)
	if err != nil {
		return nil, "", err
	}
	if si == 0 {
		return rec, "", nil
	}
	names := rec.streamNames()
	if si > len(names) {
		return nil, "", errDamaged("MFT record %d has no stream %d", num, si)
	}
	return rec, names[si-1], nil
}

// streamNames returns the names of a record's named data streams, sorted.
func (rec *record) streamNames() []string {
	var out []string
	for _, a := range rec.attrs {
		if a.typ == atData && a.name != "" && !contains(out, a.name) {
			out = append(out, a.name)
		}
	}
	sort.Strings(out)
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Stat returns a node's metadata.
func (f *FS) Stat(n fs.Node) (*fs.Stat, error) {
	rec, name, err := f.nodeRecord(n)
	if err != nil {
		return nil, err
	}
	st := &fs.Stat{Node: n, Nlink: 1, Problems: append([]string(nil), rec.problems...)}
	if si := rec.stdInfo(); si != nil {
		st.Btime = ntfsTime(le.Uint64(si))
		st.Mtime = ntfsTime(le.Uint64(si[0x08:]))
		st.Ctime = ntfsTime(le.Uint64(si[0x10:]))
		st.Atime = ntfsTime(le.Uint64(si[0x18:]))
	} else {
		st.Problems = append(st.Problems, fmt.Sprintf("MFT record %d: no $STANDARD_INFORMATION", rec.num))
	}
	fa := rec.fileAttrs()
	switch {
	case name != "":
		st.Mode = 0o644
	case rec.isDir():
		st.Mode = iofs.ModeDir | 0o755
	case f.isLink(rec):
		st.Mode = iofs.ModeSymlink | 0o777
	default:
		st.Mode = 0o644
	}
	if fa&faReadOnly != 0 && st.Mode&iofs.ModeSymlink == 0 {
		st.Mode &^= 0o222
	}
	if name == "" {
		if k := len(rec.names()); k > 1 {
			st.Nlink = uint32(k)
		}
	}
	switch {
	case st.Mode.IsRegular():
		s, err := f.stream(rec, name)
		if err != nil {
			st.Problems = append(st.Problems, err.Error())
			break
		}
		st.Size = s.size
		if s.encrypted {
			st.Problems = append(st.Problems, "encrypted (EFS): the content is not read")
		}
		if s.unitTooLarge(f.cs) {
			st.Problems = append(st.Problems, fmt.Sprintf("compression unit of %d bytes (NTFS compresses in 64 KiB units): the content is not read", s.unit*f.cs))
		}
	case st.Mode&iofs.ModeSymlink != 0:
		if t, err := f.ReadLink(n); err == nil {
			st.Size = int64(len(t))
		}
	}
	if name == "" && !f.opt.Streams {
		f.streamXattrs(rec, st)
	}
	return st, nil
}

// streamXattrs adds a record's small named streams to st.Xattrs as
// "user.NAME".
func (f *FS) streamXattrs(rec *record, st *fs.Stat) {
	for _, name := range rec.streamNames() {
		s := f.streamOf(rec, rec.streamAttrs(atData, name))
		if s.size > maxXattrStream {
			continue
		}
		v := make([]byte, s.size)
		if _, err := f.openStream(rec, s).ReadAt(v, 0); err != nil && err != io.EOF && s.size > 0 {
			st.Problems = append(st.Problems, fmt.Sprintf("stream %q: %v", name, err))
		}
		if st.Xattrs == nil {
			st.Xattrs = map[string][]byte{}
		}
		st.Xattrs["user."+name] = v
	}
}

// reparse returns a record's reparse point tag and data, if any.
func (rec *record) reparse() (uint32, []byte, bool) {
	for _, a := range rec.attrs {
		if a.typ == atReparse && a.resident && len(a.value) >= 8 {
			l := int(le.Uint16(a.value[4:]))
			if 8+l > len(a.value) {
				l = len(a.value) - 8
			}
			return le.Uint32(a.value), a.value[8 : 8+l], true
		}
	}
	return 0, nil, false
}

// isLink reports whether a record is a symlink: a symlink or junction
// reparse point, or an Interix symlink (a system file whose data starts
// with "IntxLNK\x01", as ntfs-3g writes them).
func (f *FS) isLink(rec *record) bool {
	if tag, _, ok := rec.reparse(); ok {
		return tag == tagSymlink || tag == tagMountPoint
	}
	if rec.fileAttrs()&faSystem == 0 || rec.isDir() {
		return false
	}
	s, err := f.stream(rec, "")
	if err != nil || s.size < int64(len(interixLink))+2 || s.size > maxLinkBytes || s.compressed {
		return false
	}
	b := make([]byte, len(interixLink))
	f.openStream(rec, s).ReadAt(b, 0)
	return string(b) == interixLink
}

// ReadLink returns a symlink's target.
func (f *FS) ReadLink(n fs.Node) (string, error) {
	rec, name, err := f.nodeRecord(n)
	if err != nil {
		return "", err
	}
	if name != "" || !f.isLink(rec) {
		return "", fs.ErrNotLink
	}
	if tag, d, ok := rec.reparse(); ok {
		return reparseTarget(tag, d)
	}
	s, err := f.stream(rec, "")
	if err != nil {
		return "", err
	}
	b := make([]byte, s.size)
	if _, err := f.openStream(rec, s).ReadAt(b, 0); err != nil && err != io.EOF {
		return "", err
	}
	return utf16String(b[len(interixLink):]), nil
}

// reparseTarget decodes a symlink or junction reparse buffer: the print
// name (else the substitute name without its "\??\" prefix), with
// backslashes turned into slashes.
func reparseTarget(tag uint32, d []byte) (string, error) {
	if len(d) < 8 {
		return "", errDamaged("reparse data of %d bytes", len(d))
	}
	so, sl, po, pl := int(le.Uint16(d)), int(le.Uint16(d[2:])), int(le.Uint16(d[4:])), int(le.Uint16(d[6:]))
	buf := 8
	if tag == tagSymlink {
		buf = 12
	}
	if len(d) < buf {
		return "", errDamaged("reparse data of %d bytes", len(d))
	}
	path := d[buf:]
	get := func(o, l int) string {
		if o+l > len(path) || l%2 != 0 {
			return ""
		}
		u := make([]uint16, l/2)
		for i := range u {
			u[i] = le.Uint16(path[o+2*i:])
		}
		return string(utf16.Decode(u))
	}
	t := get(po, pl)
	if t == "" {
		t = strings.TrimPrefix(get(so, sl), `\??\`)
	}
	if t == "" {
		return "", errDamaged("reparse point without a target")
	}
	return strings.ReplaceAll(t, `\`, "/"), nil
}

// ReadDir returns a directory's entries, cross-checked against the MFT
// (see the package documentation), and its large (or, with
// Options.Streams, all) named streams as "FILE:NAME".
func (f *FS) ReadDir(n fs.Node) ([]fs.DirEntry, error) {
	rec, name, err := f.nodeRecord(n)
	if err != nil {
		return nil, err
	}
	if name != "" || !rec.isDir() {
		return nil, fs.ErrNotDir
	}
	ents, errs := f.indexEntries(rec)
	sc := f.mftScanned()
	var out []fs.DirEntry
	seen := map[string]bool{}
	dropped := 0
	invalid := 0
	for _, e := range ents {
		if e.fn.namespace == nsDOS || e.num < firstUser || seen[e.fn.name] {
			continue
		}
		if !fs.ValidName(e.fn.name) {
			invalid++
			continue
		}
		if r := sc.rec(e.num); r.state != scanBad && !sc.lists(rec.num, rec.seq, e.num, e.seq, e.fn.name) {
			dropped++
			continue
		}
		seen[e.fn.name] = true
		out = append(out, fs.DirEntry{Name: e.fn.name, Node: fs.Node(e.num), Type: f.entryType(sc, e.num, e.fn.attrs), Where: e.where})
	}
	added := 0
	for _, c := range sc.children[rec.num] {
		if c.num < firstUser || c.parentSeq != rec.seq || seen[c.name] || sc.rec(c.num).state != scanInUse {
			continue
		}
		if !fs.ValidName(c.name) {
			invalid++
			continue
		}
		seen[c.name] = true
		added++
		de := fs.DirEntry{Name: c.name, Node: fs.Node(c.num), Type: f.entryType(sc, c.num, c.typ)}
		if pos, err := f.recordPos(c.num); err == nil {
			de.Where = pos[0]
		}
		out = append(out, de)
	}
	if dropped > 0 {
		errs = append(errs, errDamaged("directory %d: %d index entries name no such file in the MFT", rec.num, dropped))
	}
	if invalid > 0 {
		errs = append(errs, errDamaged("directory %d: %d names that cannot be a path element (a '/' or NUL in them, '.' or '..') left out", rec.num, invalid))
	}
	if added > 0 {
		errs = append(errs, errDamaged("directory %d: %d names found only in the MFT", rec.num, added))
	}
	if len(out) > maxDirEntries {
		out = out[:maxDirEntries]
	}
	out = f.addStreams(sc, out)
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	return out, nil
}

// entryType is a best guess of an entry's type from the scan and its
// $FILE_NAME attributes.
func (f *FS) entryType(sc *mftScan, num uint64, fa uint32) iofs.FileMode {
	switch {
	case sc.rec(num).dir || fa&faDirectory != 0:
		return iofs.ModeDir
	case fa&0x400 != 0: // a reparse point
		return iofs.ModeSymlink
	}
	return 0
}

// addStreams adds "FILE:NAME" entries for the named streams not shown as
// xattrs.
func (f *FS) addStreams(sc *mftScan, ents []fs.DirEntry) []fs.DirEntry {
	n := len(ents)
	for i := 0; i < n; i++ {
		e := ents[i]
		r := sc.rec(uint64(e.Node))
		if r.dir || r.streams == 0 || r.streams == 1 && !f.opt.Streams {
			continue
		}
		rec, err := f.record(uint64(e.Node))
		if err != nil {
			continue
		}
		for si, name := range rec.streamNames() {
			if !f.opt.Streams {
				if s := f.streamOf(rec, rec.streamAttrs(atData, name)); s.size <= maxXattrStream {
					continue
				}
			}
			if si+1 >= 1<<16 {
				break
			}
			ents = append(ents, fs.DirEntry{Name: e.Name + ":" + name, Node: e.Node | fs.Node(si+1)<<48, Where: e.Where})
		}
	}
	return ents
}

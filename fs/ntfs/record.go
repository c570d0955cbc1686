package ntfs

import (
	"fmt"
	"sort"

	"github.com/vzsalvage/vzsalvage/fs"
)

// record is a base MFT record with the attributes of its extension
// records (through its attribute list).
type record struct {
	num      uint64
	seq      uint16
	flags    uint16
	base     uint64 // base record of an extension record, else 0
	attrs    []attr
	pos      []fs.Extent // volume ranges of the base and extension records
	problems []string
}

const (
	maxExtRecords = 4096
	maxAttrList   = 256 << 10
)

// parseRecord fixes up and parses a raw MFT record read from volume
// offset off.
func (f *FS) parseRecord(b []byte, n uint64, off int64) (*record, error) {
	if err := fixup(b, "FILE"); err != nil {
		return nil, errDamaged("MFT record %d: %v", n, err)
	}
	rec := &record{num: n, seq: le.Uint16(b[0x10:]), flags: le.Uint16(b[0x16:]), base: le.Uint64(b[0x20:]) & (1<<48 - 1)}
	if int(le.Uint16(b[0x14:])) >= len(b) || le.Uint16(b[0x14:]) < 0x30 {
		return nil, errDamaged("MFT record %d: attributes at %d", n, le.Uint16(b[0x14:]))
	}
	if len(b) >= 0x30 && le.Uint16(b[0x14:]) >= 0x30 {
		// Windows XP and later record the number: a record read from
		// the wrong place shows it.
		if got := le.Uint32(b[0x2C:]); got != 0 && uint64(got) != n&0xFFFFFFFF {
			return nil, errDamaged("MFT record %d says it is record %d", n, got)
		}
	}
	attrs, err := parseAttrs(b, f.nclu)
	rec.attrs = attrs
	if err != nil {
		rec.problems = append(rec.problems, fmt.Sprintf("MFT record %d: %v", n, err))
	}
	return rec, nil
}

// recordPos returns the volume ranges holding MFT record n.
func (f *FS) recordPos(n uint64) ([]fs.Extent, error) {
	if f.bt.recSize <= 0 || n >= uint64(f.mftSize/f.bt.recSize) {
		return nil, errDamaged("MFT record %d past the end of the MFT", n)
	}
	off := int64(n) * f.bt.recSize
	var out []fs.Extent
	for left := f.bt.recSize; left > 0; {
		vcn := off / f.cs
		i := sort.Search(len(f.mft), func(i int) bool { return f.mft[i].vcn > vcn }) - 1
		if i < 0 || vcn >= f.mft[i].vcn+f.mft[i].n || f.mft[i].lcn < 0 {
			return nil, errDamaged("MFT record %d: its place in the MFT is not mapped", n)
		}
		r := f.mft[i]
		p := (r.lcn+vcn-r.vcn)*f.cs + off%f.cs
		k := min(left, (r.vcn+r.n)*f.cs-off)
		out = append(out, fs.Extent{Physical: p, Length: k})
		off, left = off+k, left-k
	}
	return out, nil
}

// readRecord reads and parses MFT record n (base or extension), from
// $MFTMirr for records 0-3 when the MFT's copy fails.
func (f *FS) readRecord(n uint64) (*record, error) {
	pos, err := f.recordPos(n)
	if err != nil {
		return nil, err
	}
	b := make([]byte, f.bt.recSize)
	p := 0
	var rerr error
	for _, e := range pos {
		if err := f.readAt(b[p:p+int(e.Length)], e.Physical); err != nil && rerr == nil {
			rerr = err
		}
		p += int(e.Length)
	}
	var rec *record
	if rerr == nil {
		rec, err = f.parseRecord(b, n, pos[0].Physical)
	} else {
		err = rerr
	}
	if (err != nil || f.opt.Damage.Any(pos[0].Physical, f.bt.recSize, 1)) && n < 4 && f.mirror >= 0 {
		m := f.mirror + int64(n)*f.bt.recSize
		mb := make([]byte, f.bt.recSize)
		if f.readAt(mb, m) == nil {
			if mrec, merr := f.parseRecord(mb, n, m); merr == nil {
				mrec.pos = []fs.Extent{{Physical: m, Length: f.bt.recSize}}
				return mrec, nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	rec.pos = pos
	return rec, nil
}

// record returns base record n in use, with its extension records'
// attributes, through a small cache.
func (f *FS) record(n uint64) (*record, error) {
	if r, ok := f.cache.Get(n); ok {
		return r, nil
	}
	rec, err := f.readRecord(n)
	if err != nil {
		return nil, err
	}
	switch {
	case rec.flags&recInUse == 0:
		return nil, errDamaged("MFT record %d is not in use", n)
	case rec.base != 0:
		return nil, errDamaged("MFT record %d is an extension of record %d", n, rec.base)
	}
	f.loadExtensions(rec)
	f.cache.Put(n, rec)
	return rec, nil
}

// loadExtensions adds the attributes that rec's attribute list places in
// extension records.
func (f *FS) loadExtensions(rec *record) {
	var list []byte
	for _, a := range rec.attrs {
		if a.typ != atAttrList {
			continue
		}
		if a.resident {
			list = a.value
		} else {
			s := f.streamOf(rec, []attr{a})
			if s.size > maxAttrList {
				rec.problems = append(rec.problems, fmt.Sprintf("attribute list of %d bytes", s.size))
				return
			}
			list = make([]byte, s.size)
			if _, err := f.openStream(rec, s).ReadAt(list, 0); err != nil && s.size > 0 {
				rec.problems = append(rec.problems, fmt.Sprintf("attribute list: %v", err))
			}
			for _, r := range s.runs {
				if r.lcn >= 0 {
					rec.pos = append(rec.pos, fs.Extent{Physical: r.lcn * f.cs, Length: r.n * f.cs})
				}
			}
		}
	}
	if list == nil {
		return
	}
	seen := map[uint64]bool{rec.num: true}
	for p := 0; p+26 <= len(list); {
		l := int(le.Uint16(list[p+4:]))
		if l < 26 || p+l > len(list) {
			rec.problems = append(rec.problems, fmt.Sprintf("attribute list entry at %d: length %d", p, l))
			break
		}
		num, seq := ref(le.Uint64(list[p+16:]))
		p += l
		if seen[num] {
			continue
		}
		seen[num] = true
		if len(seen) > maxExtRecords {
			rec.problems = append(rec.problems, "too many extension records")
			break
		}
		ext, err := f.readRecord(num)
		switch {
		case err != nil:
			rec.problems = append(rec.problems, fmt.Sprintf("extension record %d: %v", num, err))
			continue
		case ext.flags&recInUse == 0 || ext.base != rec.num || ext.seq != seq:
			rec.problems = append(rec.problems, fmt.Sprintf("extension record %d does not belong to record %d", num, rec.num))
			continue
		}
		for _, a := range ext.attrs {
			if a.typ != atAttrList {
				rec.attrs = append(rec.attrs, a)
			}
		}
		rec.pos = append(rec.pos, ext.pos...)
		rec.problems = append(rec.problems, ext.problems...)
	}
}

// names returns a record's $FILE_NAME values, without DOS-only names.
func (rec *record) names() []fileName {
	var out []fileName
	for _, a := range rec.attrs {
		if a.typ == atFileName && a.resident {
			if fn, ok := parseFileName(a.value); ok && fn.namespace != nsDOS {
				out = append(out, fn)
			}
		}
	}
	return out
}

// stdInfo returns the $STANDARD_INFORMATION value, if any.
func (rec *record) stdInfo() []byte {
	for _, a := range rec.attrs {
		if a.typ == atStandardInfo && a.resident && len(a.value) >= 0x24 {
			return a.value
		}
	}
	return nil
}

// fileAttrs returns the Windows file attributes.
func (rec *record) fileAttrs() uint32 {
	if si := rec.stdInfo(); si != nil {
		return le.Uint32(si[0x20:])
	}
	if ns := rec.names(); len(ns) > 0 {
		return ns[0].attrs
	}
	return 0
}

// isDir reports whether the record is a directory (an $I30 index).
func (rec *record) isDir() bool {
	if rec.flags&recIsDir != 0 {
		return true
	}
	for _, a := range rec.attrs {
		if a.typ == atIndexRoot && a.name == "$I30" {
			return true
		}
	}
	return false
}

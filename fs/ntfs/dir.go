package ntfs

import (
	"fmt"

	"github.com/vzsalvage/vzsalvage/fs"
)

// indexEntry is one name of a directory index.
type indexEntry struct {
	num   uint64
	seq   uint16
	fn    fileName
	where fs.Extent
}

const (
	maxDirEntries  = 4 << 20
	maxIndexBlocks = 1 << 20
	maxBitmap      = 1 << 20
)

// indexEntries reads every entry of a directory's $I30 index: its root and
// every index block the bitmap marks in use (every block that checks, when
// the bitmap is unreadable). Problems come back as one error.
func (f *FS) indexEntries(rec *record) ([]indexEntry, []error) {
	var out []indexEntry
	var errs []error
	roots := rec.streamAttrs(atIndexRoot, "$I30")
	bs := f.bt.indexSize
	if len(roots) == 0 || !roots[0].resident || len(roots[0].value) < 0x20 {
		errs = append(errs, errDamaged("directory %d: no index root", rec.num))
	} else {
		v := roots[0].value
		if b := int64(le.Uint32(v[8:])); b >= 512 && b <= 64<<10 && b&(b-1) == 0 {
			bs = b
		}
		ents, err := parseIndex(v[0x10:], -1)
		for i := range ents {
			if len(rec.pos) > 0 {
				ents[i].where = rec.pos[0] // the directory's own record
			}
		}
		out = append(out, ents...)
		if err != nil {
			errs = append(errs, fmt.Errorf("directory %d: index root: %w", rec.num, err))
		}
	}
	allocs := rec.streamAttrs(atIndexAlloc, "$I30")
	if len(allocs) == 0 {
		return out, errs
	}
	s := f.streamOf(rec, allocs)
	sf := f.openStream(rec, s)
	var bitmap []byte
	if bm := rec.streamAttrs(atBitmap, "$I30"); len(bm) > 0 {
		bs := f.streamOf(rec, bm)
		if bs.size <= maxBitmap {
			bitmap = make([]byte, bs.size)
			if _, err := f.openStream(rec, bs).ReadAt(bitmap, 0); err != nil && bs.size > 0 {
				bitmap = nil
				errs = append(errs, fmt.Errorf("directory %d: index bitmap: %w", rec.num, err))
			}
		}
	}
	nblocks := min(s.size/bs, maxIndexBlocks)
	buf := make([]byte, bs)
	for i := int64(0); i < nblocks && len(out) < maxDirEntries; i++ {
		if bitmap != nil && (i/8 >= int64(len(bitmap)) || bitmap[i/8]&(1<<(i%8)) == 0) {
			continue
		}
		if _, err := sf.ReadAt(buf, i*bs); err != nil {
			errs = append(errs, fmt.Errorf("directory %d: index block %d: %w", rec.num, i, err))
			continue
		}
		if err := fixup(buf, "INDX"); err != nil {
			if bitmap != nil {
				errs = append(errs, errDamaged("directory %d: index block %d: %v", rec.num, i, err))
			}
			continue
		}
		where := s.physical(i*bs, f.cs)
		ents, err := parseIndex(buf[0x18:], where+0x18)
		out = append(out, ents...)
		if err != nil {
			errs = append(errs, fmt.Errorf("directory %d: index block %d: %w", rec.num, i, err))
		}
	}
	return out, errs
}

// physical returns the volume offset of stream byte off, or -1.
func (s *stream) physical(off, cs int64) int64 {
	i := s.findRun(off / cs)
	if i < 0 || s.runs[i].lcn < 0 {
		return -1
	}
	r := s.runs[i]
	return (r.lcn+off/cs-r.vcn)*cs + off%cs
}

// parseIndex parses an index header (at the start of b) and its entries;
// base is the volume offset of b (or -1).
func parseIndex(b []byte, base int64) ([]indexEntry, error) {
	if len(b) < 16 {
		return nil, errDamaged("index header of %d bytes", len(b))
	}
	start, end := int(le.Uint32(b)), int(le.Uint32(b[4:]))
	if start < 16 || end > len(b) || start > end {
		return nil, errDamaged("index entries %d..%d in %d bytes", start, end, len(b))
	}
	var out []indexEntry
	for p := start; p+16 <= end; {
		l, kl, flags := int(le.Uint16(b[p+8:])), int(le.Uint16(b[p+10:])), le.Uint16(b[p+12:])
		if l < 16 || l%8 != 0 || p+l > end {
			return out, errDamaged("index entry at %d: length %d", p, l)
		}
		if flags&2 != 0 {
			return out, nil
		}
		if kl > l-16 {
			return out, errDamaged("index entry at %d: key of %d bytes", p, kl)
		}
		if fn, ok := parseFileName(b[p+16 : p+16+kl]); ok {
			num, seq := ref(le.Uint64(b[p:]))
			e := indexEntry{num: num, seq: seq, fn: fn}
			if base >= 0 {
				e.where = fs.Extent{Physical: base + int64(p), Length: int64(l)}
			}
			out = append(out, e)
		}
		p += l
	}
	return out, errDamaged("index entries without an end marker")
}

package ntfs

import (
	iofs "io/fs"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Layout returns where a node's data and metadata lie on the volume: its
// MFT records (and a non-resident attribute list) as Meta, and for a
// directory its index blocks and bitmap; the stream's runs as Data (a
// compression unit holding LZNT1 data as one extent with Stored set to
// its allocated clusters); resident data as Inline; unmapped ranges as
// Lost. Small named streams shown as xattrs are in Attr. An Interix
// symlink's data is metadata.
func (f *FS) Layout(n fs.Node) (*fs.Layout, error) {
	rec, name, err := f.nodeRecord(n)
	if err != nil {
		return nil, err
	}
	lay := &fs.Layout{Meta: append([]fs.Extent(nil), rec.pos...)}
	if name == "" && rec.isDir() {
		for _, typ := range []uint32{atIndexAlloc, atBitmap} {
			s := f.streamOf(rec, rec.streamAttrs(typ, "$I30"))
			for _, r := range s.runs {
				if r.lcn >= 0 {
					lay.Meta = append(lay.Meta, fs.Extent{Physical: r.lcn * f.cs, Length: r.n * f.cs})
				}
			}
		}
		return lay, nil
	}
	if name == "" && !f.opt.Streams {
		for _, sn := range rec.streamNames() {
			s := f.streamOf(rec, rec.streamAttrs(atData, sn))
			if s.size <= maxXattrStream {
				for _, r := range s.runs {
					if r.lcn >= 0 {
						lay.Attr = append(lay.Attr, fs.Extent{Physical: r.lcn * f.cs, Length: r.n * f.cs})
					}
				}
			}
		}
	}
	st, err := f.Stat(n)
	if err != nil || !st.Mode.IsRegular() && st.Mode&iofs.ModeSymlink == 0 {
		return lay, nil
	}
	if _, _, ok := rec.reparse(); ok && name == "" {
		lay.Inline = true
		return lay, nil
	}
	s, err := f.stream(rec, name)
	if err != nil {
		return lay, nil
	}
	if s.resident {
		lay.Inline = true
		return lay, nil
	}
	if s.compressed {
		f.compressedLayout(lay, s)
	} else {
		for _, r := range s.runs {
			x := fs.Extent{Logical: r.vcn * f.cs, Physical: -1, Length: min(r.n*f.cs, s.size-r.vcn*f.cs)}
			if x.Length <= 0 {
				break
			}
			if r.lcn >= 0 {
				x.Physical = r.lcn * f.cs
			}
			lay.Data = append(lay.Data, x)
		}
	}
	for _, l := range s.lost {
		if x := (fs.Extent{Logical: l.vcn * f.cs, Physical: -1, Length: min(l.n*f.cs, s.size-l.vcn*f.cs)}); x.Length > 0 {
			lay.Lost = append(lay.Lost, x)
		}
	}
	if st.Mode&iofs.ModeSymlink != 0 {
		for _, x := range lay.Data {
			if x.Physical >= 0 {
				lay.Meta = append(lay.Meta, fs.Extent{Physical: x.Physical, Length: x.Span()})
			}
		}
		lay.Data = nil
	}
	return lay, nil
}

// compressedLayout lists a compressed stream unit by unit.
func (f *FS) compressedLayout(lay *fs.Layout, s *stream) {
	ub := s.unit * f.cs
	units := (s.size + ub - 1) / ub
	for u := int64(0); u < units && u < 1<<24; u++ {
		alloc, clusters, unknown := s.unitLayout(u)
		l := min(ub, s.size-u*ub)
		switch {
		case unknown:
			continue // in Lost
		case clusters == 0:
			lay.Data = append(lay.Data, fs.Extent{Logical: u * ub, Physical: -1, Length: l})
		case clusters == s.unit:
			off := u * ub
			for _, r := range alloc {
				k := min(r.n*f.cs, u*ub+l-off)
				if k > 0 {
					lay.Data = append(lay.Data, fs.Extent{Logical: off, Physical: r.lcn * f.cs, Length: k})
				}
				off += r.n * f.cs
			}
		default:
			lay.Data = append(lay.Data, fs.Extent{Logical: u * ub, Physical: alloc[0].lcn * f.cs, Length: l, Stored: alloc[0].n * f.cs})
			for _, r := range alloc[1:] {
				// The rest of the unit's stored data, elsewhere: damage
				// there spoils the unit, and Meta is the conservative place.
				lay.Meta = append(lay.Meta, fs.Extent{Physical: r.lcn * f.cs, Length: r.n * f.cs})
			}
		}
	}
}

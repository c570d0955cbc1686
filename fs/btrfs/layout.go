package btrfs

import (
	"sort"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Layout returns where a node's data and metadata lie on the volume: its
// items (inode, extent items; a directory's entries) as Meta, its extents
// as Data (a compressed extent with Stored set to its stored size), and
// in Lost the file ranges whose extent items are unreadable or whose data
// failed its checksums in an earlier read (Layout does not read data).
// Tree blocks and data are listed in the copy the reader uses.
func (f *FS) Layout(n fs.Node) (*fs.Layout, error) {
	lay, err := f.layout(n)
	if lay != nil {
		// (an item with no data, in a damaged or hostile tree, is no extent)
		lay.Meta = dropEmpty(lay.Meta)
	}
	return lay, err
}

func (f *FS) layout(n fs.Node) (*fs.Layout, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	lay := &fs.Layout{Meta: []fs.Extent{{Physical: in.at.off, Length: in.at.n}}}
	switch in.mode & 0o170000 {
	case 0o040000:
		f.iterate(in.tree.root, key{in.ino, typeDirItem, 0}, key{in.ino, typeDirIndex, ^uint64(0)}, func(it item) bool {
			if it.key.typ == typeDirItem || it.key.typ == typeDirIndex {
				lay.Meta = append(lay.Meta, fs.Extent{Physical: it.at, Length: int64(len(it.data))})
			}
			return len(lay.Meta) < 2*maxDirEntries
		})
		return lay, nil
	case 0o100000, 0o120000:
	default:
		return lay, nil
	}
	m := f.loadExtents(in)
	for _, p := range m.items {
		lay.Meta = append(lay.Meta, fs.Extent{Physical: p.off, Length: p.n})
	}
	lost := append(m.lost, f.badRuns(n)...)
	inline := len(m.exts) > 0
	for i := range m.exts {
		e := &m.exts[i]
		if e.typ != extInline {
			inline = false
		}
		l := min(e.extentLen(), in.size-e.fileOff)
		if l <= 0 {
			continue
		}
		x := fs.Extent{Logical: e.fileOff, Physical: -1, Length: l}
		switch {
		case e.typ == extInline:
			continue // in its item, listed in Meta
		case e.typ == extPrealloc || e.diskBytenr == 0:
		case e.comp != compNone:
			copies, err := f.chunks.physical(e.diskBytenr, e.diskBytes)
			if err != nil {
				lost = append(lost, run{x.Logical, l})
				continue
			}
			x.Physical, x.Stored = f.order(copies, e.diskBytes)[0], e.diskBytes
		default:
			a := e.diskBytenr + uint64(e.offset)
			copies, err := f.chunks.physical(a, l)
			if err != nil {
				lost = append(lost, run{x.Logical, l})
				continue
			}
			x.Physical = f.order(copies, l)[0]
		}
		lay.Data = append(lay.Data, cutOut(x, lost)...)
	}
	lay.Inline = inline
	for _, r := range lost {
		if l := min(r.n, in.size-r.off); l > 0 {
			lay.Lost = append(lay.Lost, fs.Extent{Logical: r.off, Physical: -1, Length: l})
		}
	}
	sort.Slice(lay.Lost, func(i, j int) bool { return lay.Lost[i].Logical < lay.Lost[j].Logical })
	return lay, nil
}

// dropEmpty drops the extents of no length.
func dropEmpty(xs []fs.Extent) []fs.Extent {
	out := xs[:0]
	for _, x := range xs {
		if x.Length > 0 {
			out = append(out, x)
		}
	}
	return out
}

// cutOut returns x without the file ranges in lost. An encoded extent is
// dropped whole if any of it is lost.
func cutOut(x fs.Extent, lost []run) []fs.Extent {
	out := []fs.Extent{x}
	for _, r := range lost {
		var next []fs.Extent
		for _, e := range out {
			lo, hi := max(e.Logical, r.off), min(e.Logical+e.Length, r.off+r.n)
			if hi <= lo {
				next = append(next, e)
				continue
			}
			if e.Stored > 0 {
				continue
			}
			if lo > e.Logical {
				next = append(next, fs.Extent{Logical: e.Logical, Physical: e.Physical, Length: lo - e.Logical})
			}
			if end := e.Logical + e.Length; hi < end {
				p := e.Physical
				if p >= 0 {
					p += hi - e.Logical
				}
				next = append(next, fs.Extent{Logical: hi, Physical: p, Length: end - hi})
			}
		}
		out = next
	}
	return out
}

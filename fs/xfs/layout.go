package xfs

import (
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/runmap"
)

// Layout returns where a node's data and metadata lie on the volume: the
// inode and its bmbt blocks, for directories and symlinks their blocks
// (metadata), for files their data extents, and the attribute fork's
// blocks (Attr). Ranges whose mapping is lost are listed in Lost.
func (f *FS) Layout(n fs.Node) (*fs.Layout, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	lay := &fs.Layout{}
	lay.Meta = append(lay.Meta, fs.Extent{Physical: in.pos, Length: int64(f.sb.inodeSize)})
	if in.forkoff != 0 && (in.aformat == fmtExtents || in.aformat == fmtBtree) {
		am := f.mapFork(in, true)
		for _, p := range am.meta {
			lay.Attr = append(lay.Attr, fs.Extent{Physical: p, Length: f.bs})
		}
		for _, e := range f.extents(am, maxFileOff, false) {
			if e.Physical >= 0 {
				lay.Attr = append(lay.Attr, fs.Extent{Physical: e.Physical, Length: e.Length})
			}
		}
	}
	if in.format != fmtExtents && in.format != fmtBtree {
		lay.Inline = in.typ() == sIFDIR || in.typ() == sIFLNK
		return lay, nil
	}
	m := f.mapFork(in, false)
	for _, p := range m.meta {
		lay.Meta = append(lay.Meta, fs.Extent{Physical: p, Length: f.bs})
	}
	blocks := uint64((in.size + f.bs - 1) / f.bs)
	dir := in.typ() == sIFDIR
	if dir {
		blocks = maxFileOff // every directory block is read, whatever the size says
	}
	lay.Data = f.extents(m, blocks, dir)
	lay.Lost = m.Lost(blocks, f.bs)
	if dir || in.typ() == sIFLNK {
		for _, e := range lay.Data {
			if e.Physical >= 0 {
				lay.Meta = append(lay.Meta, fs.Extent{Physical: e.Physical, Length: e.Length})
			}
		}
	}
	return lay, nil
}

// extents converts a fork map's runs below block limit to volume extents.
// Unwritten runs have Physical -1 (except in directories, which are read
// whatever the flag says); runs with a lost mapping are left out.
func (f *FS) extents(m *forkMap, limit uint64, dir bool) []fs.Extent {
	var out []fs.Extent
	for _, r := range m.Runs {
		if r.Off >= limit {
			break
		}
		n := min(r.N, limit-r.Off)
		at := runmap.BytePos(r.Off, f.bs)
		e := fs.Extent{Logical: at, Physical: f.fsbPos(r.Phys), Length: runmap.BytePos(r.Off+n, f.bs) - at}
		switch {
		case r.Kind == runUnknown || e.Length <= 0:
			continue // (no length: past the largest byte offset, where BytePos saturates)
		case r.Kind == runUnwritten && !dir:
			e.Physical = -1
		}
		out = append(out, e)
	}
	return out
}

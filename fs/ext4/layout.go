package ext4

import (
	"github.com/vzsalvage/vzsalvage/fs"
)

// Layout returns where a node's data and metadata lie on the volume, in the
// current view (where the journal was replayed, the journal blocks that hold
// the replayed copies). Ranges whose mapping is lost are not listed (the
// node's Stat carries a Problem for them).
func (f *FS) Layout(n fs.Node) (*fs.Layout, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	lay := &fs.Layout{}
	lay.Meta = append(lay.Meta, fs.Extent{Physical: in.pos, Length: f.inodeSize})
	if blk := in.fileACL(); blk != 0 && blk < f.sb.blocksCount {
		lay.Attr = append(lay.Attr, fs.Extent{Physical: f.blockPos(blk), Length: f.bs})
	}
	es, _ := f.rawXattrs(in)
	for _, e := range es {
		if e.vino != 0 {
			f.eaInodeLayout(lay, e.vino)
		}
	}
	if !f.hasBlockMap(in) {
		lay.Inline = in.typ() == sIFREG || in.typ() == sIFLNK || in.typ() == sIFDIR
		return lay, nil
	}
	m := f.mapInode(in)
	for _, b := range m.meta {
		lay.Meta = append(lay.Meta, fs.Extent{Physical: f.blockPos(b), Length: f.bs})
	}
	nblocks := (uint64(in.size) + uint64(f.bs) - 1) / uint64(f.bs)
	dir := in.typ() == sIFDIR
	if dir {
		nblocks = max(nblocks, maxDirBytes/uint64(f.bs)) // as dirents reads them
	}
	lay.Data = f.dataExtents(m, nblocks, dir)
	lay.Lost = m.Lost(nblocks, f.bs)
	if dir || in.typ() == sIFLNK {
		// Directory blocks and a slow symlink's target are metadata.
		for _, e := range lay.Data {
			if e.Physical >= 0 {
				lay.Meta = append(lay.Meta, fs.Extent{Physical: e.Physical, Length: e.Length})
			}
		}
	}
	return lay, nil
}

// dataExtents converts a block map's runs below nblocks to volume extents,
// split where the journal overlay replaces blocks. Unwritten runs have
// Physical -1 (except in directories, which are read whatever the flag
// says); runs with a lost mapping are left out.
func (f *FS) dataExtents(m *blockMap, nblocks uint64, dir bool) []fs.Extent {
	var out []fs.Extent
	bs := f.bs
	for _, r := range m.Runs {
		if r.Off >= nblocks {
			break
		}
		n := min(r.N, nblocks-r.Off)
		switch r.Kind {
		case runUnknown:
			continue
		case runUnwritten:
			if dir {
				break
			}
			out = append(out, fs.Extent{Logical: int64(r.Off) * bs, Physical: -1, Length: int64(n) * bs})
			continue
		}
		if f.jov == nil || !f.jov.any(r.Phys, n) {
			out = append(out, fs.Extent{Logical: int64(r.Off) * bs, Physical: int64(r.Phys) * bs, Length: int64(n) * bs})
			continue
		}
		// Cut the run around the overlaid blocks inside it.
		lb, pb, left := r.Off, r.Phys, n
		for left > 0 {
			k := f.jov.nextKey(pb)
			if k > pb {
				c := min(left, k-pb)
				out = append(out, fs.Extent{Logical: int64(lb) * bs, Physical: int64(pb) * bs, Length: int64(c) * bs})
				lb, pb, left = lb+c, pb+c, left-c
				continue
			}
			out = append(out, fs.Extent{Logical: int64(lb) * bs, Physical: f.blockPos(pb), Length: bs})
			lb, pb, left = lb+1, pb+1, left-1
		}
	}
	return out
}

// eaInodeLayout adds an EA inode (holding an attribute value) to lay.Attr.
func (f *FS) eaInodeLayout(lay *fs.Layout, ino uint32) {
	in, err := f.readInode(ino)
	if err != nil {
		return
	}
	lay.Attr = append(lay.Attr, fs.Extent{Physical: in.pos, Length: f.inodeSize})
	if !f.hasBlockMap(in) {
		return
	}
	m := f.mapInode(in)
	for _, b := range m.meta {
		lay.Attr = append(lay.Attr, fs.Extent{Physical: f.blockPos(b), Length: f.bs})
	}
	nblocks := (uint64(in.size) + uint64(f.bs) - 1) / uint64(f.bs)
	for _, e := range f.dataExtents(m, nblocks, false) {
		if e.Physical >= 0 {
			lay.Attr = append(lay.Attr, fs.Extent{Physical: e.Physical, Length: e.Length})
		}
	}
}

package ctar

import (
	"io"
	"sort"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
)

// Generation is one backup of a container: the index of its tar stream
// and a reader of that stream (a StreamReader).
type Generation struct {
	Index *Index
	R     io.ReaderAt
	// Name says where it came from (the archive's path), for reports.
	Name string
}

// Volume is a container's root filesystem as one address space: the
// newest generation's stream, then the streams of the older generations
// that filled it, one after another. Its FS is the newest tree with every
// damaged file taken, where possible, from an older generation.
type Volume struct {
	FS *FS
	// Size is the address space's size; Damage its byte ranges not known
	// to be right: the newest stream's damage, and the older bytes used
	// (tainted: another night's content), which Filled lists too.
	Size   int64
	Damage *damage.Map
	Filled *damage.Map
	// Sources says, per file taken from an older generation, which.
	Sources []Source
	parts   []part
}

// Source is a file of the tree taken from an older generation.
type Source struct {
	Path    string
	Archive string
}

type part struct {
	base, size int64
	r          io.ReaderAt
}

// NewVolume builds the volume of gens, newest first. A file of the newest
// tree whose content or headers are damaged is replaced by the member of
// the same path, size and modification time of the first older generation
// that holds it without damage.
func NewVolume(gens []Generation) *Volume {
	v := &Volume{Damage: &damage.Map{}, Filled: &damage.Map{}}
	var base int64
	for _, g := range gens {
		v.parts = append(v.parts, part{base: base, size: g.Index.Size, r: g.R})
		base += g.Index.Size
	}
	v.Size = base
	newest := gens[0].Index
	v.Damage.Merge(newest.Damage)
	v.FS = NewFS(newest, v)
	v.FS.info.Size = v.Size
	if len(gens) == 1 {
		return v
	}
	var older []map[string]*Member
	for i := 1; i < len(gens); i++ {
		older = append(older, cleanIndex(gens[i].Index))
	}
	for n := rootNode; int(n) < len(v.FS.nodes); n++ {
		nd := &v.FS.nodes[n]
		m := nd.m
		if m == nil || !hasData(m.Type) || nd.base != 0 || newest.MemberDamage(m) == nil && len(v.FS.problems[n]) == 0 {
			continue
		}
		p, _ := cleanName(m.Name)
		for i, idx := range older {
			o := idx[p]
			g := gens[i+1]
			if o == nil || o.Size != m.Size || o.time(0) != m.time(0) || g.Index.MemberDamage(o) != nil {
				continue
			}
			nd.m, nd.base = o, v.parts[i+1].base
			delete(v.FS.problems, n)
			for _, e := range o.Data() {
				v.Damage.Add(nd.base+e.Physical, e.Length, damage.Tainted)
				v.Filled.Add(nd.base+e.Physical, e.Length, damage.Tainted)
			}
			v.Sources = append(v.Sources, Source{Path: "/" + p, Archive: g.Name})
			break
		}
	}
	for _, gap := range newest.Gaps {
		v.fillGap(gens, gap)
	}
	return v
}

// fillGap places the members that an older generation stores between the
// newest's members on either side of a gap (where the newest lost its
// headers) and that the newest tree lacks: probably what the gap held,
// certainly another night's content (tainted, and listed in Filled).
func (v *Volume) fillGap(gens []Generation, gap Gap) {
	newest := gens[0].Index
	name := func(x *Index, i int) string {
		if i < 0 || i >= len(x.Members) {
			return ""
		}
		p, _ := cleanName(x.Members[i].Name)
		return p
	}
	after, before := name(newest, gap.After), name(newest, gap.After+1)
	for i := 1; i < len(gens); i++ {
		x := gens[i].Index
		lo, hi := -1, len(x.Members)
		for k := range x.Members {
			switch n := name(x, k); {
			case after != "" && n == after && lo < 0:
				lo = k
			case before != "" && n == before && k > lo:
				hi = k
			}
		}
		if after != "" && lo < 0 || before != "" && hi == len(x.Members) {
			continue
		}
		for _, m := range x.Members[lo+1 : hi] {
			p, ok := cleanName(m.Name)
			if _, there := v.FS.lookup(p); m.Config || !ok || there || x.MemberDamage(m) != nil {
				continue
			}
			base := v.parts[i].base
			v.FS.place(m, base, true)
			for _, e := range append([]fs.Extent{{Physical: m.HeaderOff, Length: m.HeaderEnd - m.HeaderOff}}, m.Data()...) {
				v.Damage.Add(base+e.Physical, e.Length, damage.Tainted)
				v.Filled.Add(base+e.Physical, e.Length, damage.Tainted)
			}
			v.Sources = append(v.Sources, Source{Path: "/" + p, Archive: gens[i].Name})
		}
		return
	}
}

// cleanIndex maps the cleaned paths of x's files to their (last) members.
func cleanIndex(x *Index) map[string]*Member {
	out := map[string]*Member{}
	for _, m := range x.Members {
		if m.Config || !hasData(m.Type) {
			continue
		}
		if p, ok := cleanName(m.Name); ok {
			out[p] = m
		}
	}
	return out
}

// ReadAt implements io.ReaderAt over the generations' streams.
func (v *Volume) ReadAt(p []byte, off int64) (int, error) {
	i := sort.Search(len(v.parts), func(i int) bool { return v.parts[i].base+v.parts[i].size > off })
	if i == len(v.parts) || off < 0 {
		return 0, io.EOF
	}
	pt := v.parts[i]
	k := min(int64(len(p)), pt.base+pt.size-off)
	n, err := pt.r.ReadAt(p[:k], off-pt.base)
	if err == nil && int64(n) < int64(len(p)) {
		err = io.EOF
	}
	return n, err
}

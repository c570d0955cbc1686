package fs

import (
	"slices"
	"testing"
)

// TestOrphanTops: a lost subtree is returned by its top directory alone,
// a lost directory whose parent is also lost comes after its parent (and
// not at all when the parent reaches it), a lost file by itself.
func TestOrphanTops(t *testing.T) {
	// 10 (dir, parent 2: reached) holds 11 (dir) which holds 12 (file);
	// 20 is a file nobody names; 30 (dir) names parent 31, which is not a
	// candidate, and holds nothing.
	children := map[uint32][]uint32{10: {11}, 11: {12}}
	parent := map[uint32]uint32{10: 2, 11: 10, 30: 31}
	reached := map[uint32]bool{1: true, 2: true}
	walk := func(d uint32) {
		Reach(d, reached, func(d uint32, visit func(uint32, bool)) {
			for _, c := range children[d] {
				visit(c, c != 12)
			}
		})
	}
	var cands []Candidate[uint32]
	for _, n := range []uint32{11, 12, 20, 10, 30} {
		p, isDir := parent[n]
		cands = append(cands, Candidate[uint32]{Node: n, Dir: isDir && n != 12, Parent: func() uint32 { return p }})
	}
	got := OrphanTops(cands, reached, walk)
	if want := []Node{10, 30, 20}; !slices.Equal(got, want) {
		t.Fatalf("OrphanTops = %v, want %v", got, want)
	}
	for _, n := range []uint32{10, 11, 12, 20, 30} {
		if !reached[n] {
			t.Errorf("%d not marked reached", n)
		}
	}
}

package xfs

import "slices"

// overlay holds the 512-byte sectors a log replay changed, by sector
// number (daddr). Built once in Open, read-only afterwards.
type overlay struct {
	sectors map[int64][]byte
	keys    []int64 // sorted, once sealed
	limit   int     // most sectors held
}

func newOverlay(limit int) *overlay {
	return &overlay{sectors: map[int64][]byte{}, limit: limit}
}

// put stores b (whole sectors) at sector daddr. It returns false, storing
// nothing, when that would pass the limit.
func (o *overlay) put(daddr int64, b []byte) bool {
	n := len(b) / logBB
	add := 0
	for i := range n {
		if o.sectors[daddr+int64(i)] == nil {
			add++
		}
	}
	if len(o.sectors)+add > o.limit {
		return false
	}
	for i := range n {
		s := o.sectors[daddr+int64(i)]
		if s == nil {
			s = make([]byte, logBB)
			o.sectors[daddr+int64(i)] = s
		}
		copy(s, b[i*logBB:(i+1)*logBB])
	}
	return true
}

// seal sorts the sector numbers for reads.
func (o *overlay) seal() {
	o.keys = make([]int64, 0, len(o.sectors))
	for k := range o.sectors {
		o.keys = append(o.keys, k)
	}
	slices.Sort(o.keys)
}

// apply copies the overlay's sectors over p, read at volume offset off.
func (o *overlay) apply(p []byte, off int64) {
	if len(o.sectors) == 0 || len(p) == 0 {
		return
	}
	first, last := off/logBB, (off+int64(len(p))-1)/logBB
	each := func(d int64) {
		s := o.sectors[d]
		if s == nil {
			return
		}
		so := d * logBB // volume offset of the sector
		lo, hi := max(so, off), min(so+logBB, off+int64(len(p)))
		copy(p[lo-off:hi-off], s[lo-so:hi-so])
	}
	if o.keys == nil {
		for d := first; d <= last; d++ {
			each(d)
		}
		return
	}
	i, _ := slices.BinarySearch(o.keys, first)
	for ; i < len(o.keys) && o.keys[i] <= last; i++ {
		each(o.keys[i])
	}
}

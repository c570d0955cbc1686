package ctar

import "github.com/vzsalvage/vzsalvage/damage"

// MemberDamage returns the byte ranges of m's content (file offsets) that
// are not known to be right, or nil: its data extents that lie in the
// stream's damage, what damage or the stream's end cut off, and all of it
// when its headers had problems or are tainted without confirmation.
func (x *Index) MemberDamage(m *Member) *damage.Map {
	if m.flags&flagVerified != 0 {
		return nil
	}
	var d damage.Map
	if len(m.Problems()) > 0 || m.HeaderTainted() && (!m.Confirmed() || m.Sparse) {
		d.Add(0, m.Size, damage.Tainted)
	}
	for _, e := range m.Data() {
		for _, r := range x.Damage.Overlaps(e.Physical, e.Length) {
			d.Add(e.Logical+r.Off-e.Physical, r.Len, r.State)
		}
	}
	for _, e := range m.Lost() {
		d.Add(e.Logical, e.Length, damage.Lost)
	}
	if d.Empty() {
		return nil
	}
	return &d
}

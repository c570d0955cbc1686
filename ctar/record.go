package ctar

import "github.com/vzsalvage/vzsalvage/damage"

// Record is what a protect record of an archive knows of its members: the
// hashes of each one's header blocks and content, as Scan computes them
// with Options.Hash.
type Record interface {
	// Lookup says whether a member of the original had header blocks
	// hashing to h.Header, and whether one of those also had content
	// hashing to h.Data.
	Lookup(h MemberHash) (header, content bool)
	// Members is the number of members of the original.
	Members() int
}

// RecordResult is what a Record said about an index.
type RecordResult struct {
	// Confirmed counts members the stream's damage touched whose headers
	// and content the record proved right.
	Confirmed int
	// Wrong counts members whose headers or content differ from every
	// member of the original (damage no decoder noticed included).
	Wrong int
	// Missing counts members of the original the index does not hold
	// (lost with their headers).
	Missing int
}

// ApplyRecord judges every member of x (scanned with Options.Hash) against
// the record of its original: a member whose header blocks and content are
// the original's is right whatever the decoder suspected (its damage is
// cleared); one whose content differs has it tainted; one whose headers
// differ from every original header is tainted whole. The index's damage
// and members change accordingly.
func (x *Index) ApplyRecord(rec Record) RecordResult {
	var res RecordResult
	if len(x.Hashes) != len(x.Members) {
		return res
	}
	matched := 0
	for i, m := range x.Members {
		header, content := rec.Lookup(x.Hashes[i])
		data := m.Data()
		switch {
		case header && content:
			matched++
			touched := x.Damage.Any(m.HeaderOff, m.HeaderEnd-m.HeaderOff, damage.Tainted)
			x.Damage.Clear(m.HeaderOff, m.HeaderEnd-m.HeaderOff)
			for _, e := range data {
				touched = touched || x.Damage.Any(e.Physical, e.Length, damage.Tainted)
				x.Damage.Clear(e.Physical, e.Length)
			}
			if touched || m.HeaderTainted() {
				res.Confirmed++
			}
			m.set(flagHeaderTainted, false)
			m.set(flagConfirmed|flagVerified, true)
		case header:
			matched++
			res.Wrong++
			for _, e := range data {
				x.Damage.Add(e.Physical, e.Length, damage.Tainted)
			}
			m.addProblem("its content differs from the original's (protect record)")
		default:
			res.Wrong++
			x.Damage.Add(m.HeaderOff, m.HeaderEnd-m.HeaderOff, damage.Tainted)
			for _, e := range data {
				x.Damage.Add(e.Physical, e.Length, damage.Tainted)
			}
			m.addProblem("its headers are not the original's (protect record)")
		}
	}
	res.Missing = max(rec.Members()-matched, 0)
	return res
}

package fs

import "github.com/vzsalvage/vzsalvage/damage"

// State is how damaged a file is (report.json "damaged_files[].state").
type State string

// File states, from the best.
const (
	StateIntact      State = ""             // no byte of the file is in damage
	StateMetadata    State = "metadata"     // the content is intact; its name or attributes may not be
	StateNameUnknown State = "name-unknown" // the content is intact; no directory names it (lost+found/#NODE)
	StateMixed       State = "mixed"        // every byte is there, some from another backup (rescue --also)
	StatePartial     State = "partial"      // some content bytes are damaged
	StateLost        State = "lost"         // no byte of the content can be trusted
)

// Rank orders states from intact (0) to lost: the worse, the higher.
func (s State) Rank() int {
	switch s {
	case StateMetadata:
		return 1
	case StateNameUnknown:
		return 2
	case StateMixed:
		return 3
	case StatePartial:
		return 4
	case StateLost:
		return 5
	}
	return 0
}

// Damaged reports whether the state is anything but intact.
func (s State) Damaged() bool { return s != StateIntact }

// Assessment says how damaged one file is.
type Assessment struct {
	State State
	// BadBytes counts content bytes that lie in damage (or could not be
	// located at all).
	BadBytes int64
	// MissingBytes counts, of the content bytes where the layout puts them,
	// those the backup lost outright (or that could not be located): the
	// copy holds zeros there. The other bad bytes hold what was decoded,
	// unverified, and may well be right.
	MissingBytes int64
	// Ranges lists the bad bytes as file offsets, in order (at most
	// MaxRanges: past that, neighbours are merged, so a range may also
	// cover good bytes, never leave out a bad one).
	Ranges []damage.Range
}

// MaxRanges bounds Assessment.Ranges.
const MaxRanges = 32

// Assess decides whether a node is damaged, given dmg (volume offsets; nil
// means none): content bytes in dmg are bad; damage to the metadata that
// locates the content (Layout.Meta: inode, extent tree), to the directory
// entry it was reached through (which holds the inode number), or a problem
// the reader found in the node itself (st.Problems) makes the whole content
// untrustworthy; damage only to its xattr blocks leaves the content intact
// ("metadata"). entry may be nil.
func Assess(st *Stat, lay *Layout, entry *DirEntry, dmg *damage.Map) Assessment {
	var a Assessment
	whole := len(st.Problems) > 0 || lay == nil
	if lay != nil {
		for _, e := range lay.Meta {
			if dmg.Any(e.Physical, e.Length, damage.Tainted) {
				whole = true
				break
			}
		}
	}
	if entry != nil && (len(entry.Problems) > 0 || entry.Where.Length > 0 && dmg.Any(entry.Where.Physical, entry.Where.Length, damage.Tainted)) {
		whole = true
	}
	attr := false
	if lay != nil {
		for _, e := range lay.Attr {
			if dmg.Any(e.Physical, e.Length, damage.Tainted) {
				attr = true
			}
		}
	}
	size := st.Size
	if !st.Mode.IsRegular() {
		size = 0
	}
	var rs []damage.Range
	if lay != nil && !lay.Inline {
		for _, e := range lay.Data {
			l := min(e.Length, size-e.Logical)
			switch {
			case l <= 0 || e.Physical < 0:
			case e.Stored > 0:
				// Encoded: one damaged stored byte spoils the whole extent.
				if dmg.Any(e.Physical, e.Stored, damage.Tainted) {
					state := damage.Tainted
					a.BadBytes += l
					if dmg.Any(e.Physical, e.Stored, damage.Lost) {
						a.MissingBytes += l
						state = damage.Lost
					}
					rs = append(rs, damage.Range{Off: e.Logical, Len: l, State: state})
				}
			default:
				a.BadBytes += dmg.Count(e.Physical, l, damage.Tainted)
				a.MissingBytes += dmg.Count(e.Physical, l, damage.Lost)
				if !whole {
					for _, r := range dmg.Overlaps(e.Physical, l) {
						lo, hi := max(r.Off, e.Physical), min(r.End(), e.Physical+l)
						rs = append(rs, damage.Range{Off: e.Logical + lo - e.Physical, Len: hi - lo, State: r.State})
					}
				}
			}
		}
		for _, e := range lay.Lost {
			l := max(0, min(e.Length, size-e.Logical))
			a.BadBytes += l
			a.MissingBytes += l
			if l > 0 {
				rs = append(rs, damage.Range{Off: e.Logical, Len: l, State: damage.Lost})
			}
		}
	}
	if whole {
		a.BadBytes = size
		rs = nil
		if size > 0 {
			rs = []damage.Range{{Off: 0, Len: size, State: damage.Lost}}
		}
	}
	a.Ranges = boundRanges(damage.FromRanges(rs).Ranges(), MaxRanges)
	switch {
	case whole && st.Mode.IsDir():
		a.State = StatePartial // its listing may be incomplete or wrong
	case whole && st.Mode.IsRegular() && size == 0:
		a.State = StateMetadata // an empty file: nothing to lose but its metadata
	case whole:
		a.State = StateLost
	case a.BadBytes > 0 && a.BadBytes >= size:
		a.State = StateLost
	case a.BadBytes > 0:
		a.State = StatePartial
	case attr:
		a.State = StateMetadata
	}
	return a
}

// boundRanges merges the closest neighbours of sorted ranges until at most
// limit remain (a merged range takes the worse state).
func boundRanges(rs []damage.Range, limit int) []damage.Range {
	rs = append([]damage.Range(nil), rs...)
	for len(rs) > limit {
		best := 0
		for i := 1; i < len(rs)-1; i++ {
			if rs[i+1].Off-rs[i].End() < rs[best+1].Off-rs[best].End() {
				best = i
			}
		}
		m := &rs[best]
		m.Len = rs[best+1].End() - m.Off
		m.State = max(m.State, rs[best+1].State)
		rs = append(rs[:best+1], rs[best+2:]...)
	}
	return rs
}

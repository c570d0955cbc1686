package fs

import "github.com/vzsalvage/vzsalvage/damage"

// File states in reports (report.json "damaged_files[].state").
const (
	StateIntact   = ""         // no byte of the file is in damage
	StatePartial  = "partial"  // some content bytes are damaged
	StateLost     = "lost"     // the content could not be read at all
	StateMetadata = "metadata" // only metadata (inode, tree, name, xattrs) is damaged
)

// Assessment says how damaged one file is.
type Assessment struct {
	State string
	// BadBytes counts content bytes that lie in damage (or could not be
	// located at all).
	BadBytes int64
}

// Assess decides whether a node is damaged: any byte of its content in dmg
// (volume offsets; nil means none), any of its metadata in dmg, or a problem
// the reader found itself (st.Problems). entry is the directory entry the
// node was reached through (its Where range counts as metadata), or nil.
func Assess(st *Stat, lay *Layout, entry *DirEntry, dmg *damage.Map) Assessment {
	var a Assessment
	meta := len(st.Problems) > 0
	if lay != nil {
		for _, e := range lay.Meta {
			if dmg.Any(e.Physical, e.Length, damage.Tainted) {
				meta = true
				break
			}
		}
	}
	if entry != nil && entry.Where.Length > 0 && dmg.Any(entry.Where.Physical, entry.Where.Length, damage.Tainted) {
		meta = true
	}
	if st.Mode.IsRegular() && lay != nil && !lay.Inline {
		for _, e := range lay.Data {
			l := e.Length
			if e.Logical+l > st.Size {
				l = st.Size - e.Logical
			}
			if l <= 0 {
				continue
			}
			if e.Physical >= 0 {
				a.BadBytes += dmg.Count(e.Physical, l, damage.Tainted)
			}
		}
	}
	if lay != nil && lay.Inline && meta && st.Mode.IsRegular() {
		a.BadBytes = st.Size
	}
	switch {
	case a.BadBytes > 0 && a.BadBytes >= st.Size:
		a.State = StateLost
	case a.BadBytes > 0:
		a.State = StatePartial
	case meta:
		a.State = StateMetadata
	}
	return a
}

package fs

import (
	iofs "io/fs"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
)

// TestAssessMissing: bad bytes count lost and tainted content, missing
// bytes only what the backup lost outright or what could not be located.
func TestAssessMissing(t *testing.T) {
	dmg := &damage.Map{}
	dmg.Add(1000, 100, damage.Tainted) // in the first extent
	dmg.Add(9000, 50, damage.Lost)     // in the second
	st := &Stat{Size: 10000, Mode: 0o644}
	lay := &Layout{
		Data: []Extent{{Logical: 0, Physical: 0, Length: 4096}, {Logical: 4096, Physical: 8192, Length: 4096}},
		Lost: []Extent{{Logical: 8192, Length: 4096}}, // 1808 bytes of it within the size
	}
	a := Assess(st, lay, nil, dmg)
	if a.State != StatePartial || a.BadBytes != 100+50+1808 || a.MissingBytes != 50+1808 {
		t.Errorf("got %+v", a)
	}
	lay.Meta = []Extent{{Physical: 1000, Length: 10}} // the extent tree is tainted
	a = Assess(st, lay, nil, dmg)
	if a.State != StateLost || a.BadBytes != 10000 || a.MissingBytes != 50+1808 {
		t.Errorf("whole: got %+v", a)
	}
	st.Mode = iofs.ModeDir | 0o755
	if a := Assess(st, lay, nil, dmg); a.State != StatePartial || a.BadBytes != 0 {
		t.Errorf("directory: got %+v", a)
	}
}

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

func TestAssessRanges(t *testing.T) {
	dmg := &damage.Map{}
	dmg.Add(10000, 100, damage.Lost)
	dmg.Add(20000, 50, damage.Tainted)
	st := &Stat{Mode: 0o644, Size: 30000}
	lay := &Layout{Data: []Extent{{Logical: 0, Physical: 8192, Length: 8192}, {Logical: 8192, Physical: 16384, Length: 24576}}}
	a := Assess(st, lay, nil, dmg)
	// volume 10000 lies in the first extent (volume 8192..): file offset 1808
	got := a.Ranges
	if len(got) != 2 || got[0] != (damage.Range{Off: 1808, Len: 100, State: damage.Lost}) ||
		got[1] != (damage.Range{Off: 8192 + 20000 - 16384, Len: 50, State: damage.Tainted}) {
		t.Errorf("ranges %+v", got)
	}
	if a.BadBytes != 150 || a.MissingBytes != 100 {
		t.Errorf("%+v", a)
	}
	// Many small ranges are merged, never dropped.
	m := &damage.Map{}
	for i := int64(0); i < 100; i++ {
		m.Add(8192+i*64, 1, damage.Tainted)
	}
	b := Assess(st, lay, nil, m)
	if len(b.Ranges) != MaxRanges || b.Ranges[0].Off != 0 || b.Ranges[len(b.Ranges)-1].End() != 99*64+1 {
		t.Errorf("%d ranges %+v", len(b.Ranges), b.Ranges)
	}
}

// TestAssessStored: damage to any stored byte of an encoded (compressed)
// extent spoils all of its file bytes, however few stored bytes it hits.
func TestAssessStored(t *testing.T) {
	dmg := &damage.Map{}
	dmg.Add(10000, 1, damage.Lost)
	st := &Stat{Size: 300000, Mode: 0o644}
	lay := &Layout{Data: []Extent{
		{Logical: 0, Physical: 0, Length: 131072, Stored: 8192},
		{Logical: 131072, Physical: 8192, Length: 131072, Stored: 4096}, // holds byte 10000
		{Logical: 262144, Physical: 12288, Length: 131072, Stored: 4096},
	}}
	a := Assess(st, lay, nil, dmg)
	if a.State != StatePartial || a.BadBytes != 131072 || a.MissingBytes != 131072 {
		t.Errorf("got %+v", a)
	}
	if len(a.Ranges) != 1 || a.Ranges[0] != (damage.Range{Off: 131072, Len: 131072, State: damage.Lost}) {
		t.Errorf("ranges %+v", a.Ranges)
	}
}

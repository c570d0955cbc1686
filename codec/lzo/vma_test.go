package lzo

import (
	"bytes"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
)

// TestVMA salvages a VMA archive compressed as vzdump does (lzop reading a
// pipe) through the VMA reader: with a 64 KiB garbage run in the middle,
// and one over a block header, no byte outside the reported damage may
// differ and nearly every cluster comes back (scripts/measure-salvage-gzlzo.sh
// measures this on a ~300 MB archive); cut in the middle, every cluster
// before the cut comes back intact.
func TestVMA(t *testing.T) {
	disk := codectest.Disk(21, 32<<20)
	arc := codectest.VMA(t, disk)
	lz := lzopStdin(t, arc)
	fh, _ := parseFileHeader(lz)
	lay := layoutOf(fh.flags)
	// a block header near the middle
	p := fh.len
	for p < len(lz)/2 {
		h, _ := lay.parseBlockHeader(lz[p:])
		p += h.len + h.srcLen
	}
	for _, at := range []int{len(lz) / 2, p - 32<<10} {
		bad := append([]byte(nil), lz...)
		codectest.Garbage(bad, at, 64<<10, 1)
		r, err := NewReader(bytes.NewReader(bad), codec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v := codectest.CheckVMA(t, r, disk)
		t.Logf("64 KiB garbage at %d: %d of %d non-zero clusters intact, %d identical, %d wrong outside the damage",
			at, v.Intact, v.NonZero, v.Identical, v.Wrong)
		if v.Wrong > 0 || v.Intact < v.NonZero*95/100 {
			t.Errorf("garbage at %d: %+v", at, v)
		}
	}
	v, before := codectest.CutVMA(t, NewReader, lz, arc, disk)
	t.Logf("cut at 50%%: %d non-zero clusters intact, %d before the cut", v.Intact, before)
	if v.Wrong > 0 || v.Intact < before {
		t.Errorf("cut: %+v, %d clusters before the cut", v, before)
	}
}

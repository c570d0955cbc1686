package gzip

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
)

// TestVMA salvages a VMA archive compressed as vzdump does (gzip
// --rsyncable, pigz --rsyncable) through the VMA reader: with a 64 KiB
// garbage run in the middle, no byte outside the reported damage may
// differ and most clusters come back (scripts/measure-salvage-gzlzo.sh
// measures this on a ~300 MB archive); cut in the middle, every cluster
// before the cut comes back intact.
func TestVMA(t *testing.T) {
	disk := codectest.Disk(21, 32<<20)
	arc := codectest.VMA(t, disk)
	gzs := map[string][]byte{"gzip --rsyncable": rsyncable(t, arc, false)}
	if _, err := exec.LookPath("pigz"); err == nil {
		gzs["pigz --rsyncable"] = rsyncable(t, arc, true)
	}
	for name, gz := range gzs {
		bad := append([]byte(nil), gz...)
		codectest.Garbage(bad, len(bad)/2, 64<<10, 1)
		r, err := NewReader(bytes.NewReader(bad), codec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v := codectest.CheckVMA(t, r, disk)
		t.Logf("%s, 64 KiB garbage at 50%%: %d of %d non-zero clusters intact, %d identical, %d wrong outside the damage",
			name, v.Intact, v.NonZero, v.Identical, v.Wrong)
		if v.Wrong > 0 || v.Intact < v.NonZero*9/10 {
			t.Errorf("%s: %+v", name, v)
		}

		v, before := codectest.CutVMA(t, NewReader, gz, arc, disk)
		t.Logf("%s, cut at 50%%: %d non-zero clusters intact, %d before the cut", name, v.Intact, before)
		if v.Wrong > 0 || v.Intact < before {
			t.Errorf("%s cut: %+v, %d clusters before the cut", name, v, before)
		}
	}
}

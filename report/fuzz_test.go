package report

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
)

// FuzzParse feeds damage.json / report.json files to Parse, as ls and cp
// read an extract directory's damage.json: no panic, damage maps normal
// and bounded, and what Parse returns reads back the same.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"devices":[{"name":"drive-scsi0","size":1048576,"damage":[{"offset":0,"length":512,"state":"lost"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		for _, d := range r.Devices {
			rs := d.Damage.Ranges()
			if len(rs) > damage.MaxRanges {
				t.Fatalf("%d ranges", len(rs))
			}
			for i, x := range rs {
				if x.Off < 0 || x.Len <= 0 || x.State == damage.OK || i > 0 && rs[i-1].End() > x.Off {
					t.Fatalf("range %d not normal: %v", i, rs)
				}
			}
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-reading: %v", err)
		}
		out2, _ := json.Marshal(r2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

package volume

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
)

// TestCutStriped cuts a striped segment at unaligned places (as a mirror
// image or a linear LV on a striped sub-LV does) and checks reads and
// damage against a byte-by-byte mapping.
func TestCutStriped(t *testing.T) {
	var devs []*device
	for i := range 3 {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(j*7 + i*31 + j>>9)
		}
		d := Disk{Name: fmt.Sprint("d", i), R: bytes.NewReader(b), Size: int64(len(b)), Damage: &damage.Map{}}
		d.Damage.Add(int64(1000+i*5000), 3000, damage.Lost)
		d.Damage.Add(int64(300_000+i*777), 100_000, damage.Tainted)
		devs = append(devs, newDevice(d))
	}
	full := seg{off: 0, n: 3 * 3 * 64 << 10 * 4, stripe: 4096, legs: []leg{{devs[0], 512}, {devs[1], 0}, {devs[2], 8192}}}
	// mapByte says where byte y of the full segment lies.
	mapByte := func(y int64) (*device, int64) {
		c := y / full.stripe
		l := full.legs[c%3]
		return l.dev, l.off + (c/3)*full.stripe + y%full.stripe
	}
	for _, cut := range [][2]int64{{0, full.n}, {5000, 100_000}, {4095, 4097}, {123_457, 300_001}} {
		segs := cutSegs([]seg{full}, cut[0], cut[1], 1000)
		mr := &mapReader{segs: append([]seg{{off: 0, n: 1000, kind: segZero}}, segs...), size: 1000 + cut[1]}
		got := make([]byte, mr.size)
		if _, err := mr.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		want := &damage.Map{}
		one := make([]byte, 1)
		for x := int64(0); x < cut[1]; x++ {
			d, off := mapByte(cut[0] + x)
			d.r.ReadAt(one, off)
			if got[1000+x] != one[0] {
				t.Fatalf("cut %v: byte %d differs", cut, x)
			}
			for _, r := range d.dmg.Overlaps(off, 1) {
				want.Add(1000+x, 1, r.State)
			}
		}
		if fmt.Sprint(mr.damage().Ranges()) != fmt.Sprint(want.Ranges()) {
			t.Errorf("cut %v: damage %v\nwant %v", cut, mr.damage().Ranges(), want.Ranges())
		}
	}
}

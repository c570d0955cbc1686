package vma

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func repairFixture(t *testing.T, entries []BlockInfo) (hdr []byte, uuid [16]byte) {
	t.Helper()
	uuid = [16]byte{0x52, 0xfd, 0xfc, 0x07, 0x21, 0x82, 0x65, 0x4f, 0x16, 0x3f, 0x5f, 0x0f, 0x9a, 0x62, 0x1d, 0x72}
	hdr = make([]byte, ExtentHeaderSize)
	if err := MarshalExtentHeader(hdr, uuid, entries); err != nil {
		t.Fatal(err)
	}
	return hdr, uuid
}

func TestRepairExtentHeader(t *testing.T) {
	var full, mixed, partial []BlockInfo
	for i := range uint32(58) {
		full = append(full, MakeBlockInfo(0xFFFF, 1, 0x2e3f+i))
		dev := uint8(1)
		if i >= 40 {
			dev = 2
		}
		mixed = append(mixed, MakeBlockInfo(0xFFFF, dev, 100+i))
		partial = append(partial, MakeBlockInfo(uint16(0x0F0F+i), 3, 7000+i))
	}
	for _, tc := range []struct {
		name    string
		entries []BlockInfo
		damage  func(b []byte)
		devs    []uint8
		want    bool
	}{
		// What a zstd salvage left in a real archive: the 0xFF of each
		// mask's low byte and the device id copied from lost zeros.
		{"device ids and mask bytes zeroed", full, func(b []byte) {
			for i := range 58 {
				b[extOffInfo+8*i+1], b[extOffInfo+8*i+3] = 0, 0
			}
		}, []uint8{1, 2}, true},
		{"some device ids of two devices zeroed", mixed, func(b []byte) {
			for _, i := range []int{3, 41, 57} {
				b[extOffInfo+8*i+3] = 0
			}
		}, []uint8{1, 2}, true},
		{"partial masks, reserved byte set", partial, func(b []byte) {
			b[extOffInfo+8*10+2] = 0x55
			b[4] = 1
		}, []uint8{1, 3}, true},
		{"block count zeroed", full, func(b []byte) { b[extOffBlockCount], b[extOffBlockCount+1] = 0, 0 }, []uint8{1}, true},
		{"a cluster number in a run changed", full, func(b []byte) { b[extOffInfo+8*5+7] ^= 1 }, []uint8{1}, true},
		{"the first cluster number changed", full, func(b []byte) { b[extOffInfo+7] ^= 1 }, []uint8{1}, false},
		{"partial mask zeroed", partial, func(b []byte) { b[extOffInfo+8*2+1] = 0 }, []uint8{3}, false},
		{"the checksum damaged", full, func(b []byte) { b[extOffMD5+3] ^= 0x10; b[extOffInfo+3] = 0 }, []uint8{1}, false},
		{"device not in the archive", full, func(b []byte) { b[extOffInfo+3] = 0 }, []uint8{2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, uuid := repairFixture(t, tc.entries)
			bad := slices.Clone(orig)
			tc.damage(bad)
			if IsExtentHeader(bad, uuid) {
				t.Fatal("damage left the header valid")
			}
			eh, ok := RepairExtentHeader(bad, uuid, tc.devs, nil)
			if ok != tc.want {
				t.Fatalf("repaired = %v, want %v", ok, tc.want)
			}
			if !ok {
				return
			}
			want, err := ParseExtentHeader(orig, uuid)
			if err != nil {
				t.Fatal(err)
			}
			if eh.BlockCount != want.BlockCount || !slices.Equal(eh.Entries, want.Entries) || eh.UUID != uuid {
				t.Errorf("repaired header differs from the original: %+v", eh)
			}
		})
	}
}

// TestRepairNeverInvents damages headers at random: whatever is repaired
// must be the original.
// TestRepairSearch: two suspect slots that no single rule mends (device
// ids of two devices lost where a run of each starts).
func TestRepairSearch(t *testing.T) {
	var entries []BlockInfo
	for i := range uint32(50) {
		dev := uint8(1)
		if i >= 20 {
			dev = 2
		}
		entries = append(entries, MakeBlockInfo(0xFFFF, dev, 100+i))
	}
	orig, uuid := repairFixture(t, entries)
	bad := slices.Clone(orig)
	suspect := make([]bool, ExtentHeaderSize)
	for _, i := range []int{0, 20} {
		bad[extOffInfo+8*i+3] = 0
		for k := range 8 {
			suspect[extOffInfo+8*i+k] = true
		}
	}
	if _, ok := RepairExtentHeader(bad, uuid, []uint8{1, 2}, nil); ok {
		t.Log("the rules alone mended it")
	}
	eh, ok := RepairExtentHeader(bad, uuid, []uint8{1, 2}, suspect)
	if !ok {
		t.Fatal("not repaired")
	}
	if !slices.Equal(eh.Entries, entries) {
		t.Errorf("repaired entries differ")
	}
}

func TestRepairNeverInvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 2000; n++ {
		var entries []BlockInfo
		for i := range uint32(1 + rng.IntN(EntriesPerExtent)) {
			entries = append(entries, MakeBlockInfo(uint16(rng.Uint32())|1, uint8(1+rng.IntN(3)), 1000+i))
		}
		orig, uuid := repairFixture(t, entries)
		bad := slices.Clone(orig)
		for k := rng.IntN(6); k >= 0; k-- {
			bad[extOffInfo+rng.IntN(ExtentHeaderSize-extOffInfo)] = byte(rng.IntN(2)) * 0xFF
		}
		eh, ok := RepairExtentHeader(bad, uuid, []uint8{1, 2, 3}, nil)
		if !ok {
			continue
		}
		want, _ := ParseExtentHeader(orig, uuid)
		if eh.BlockCount != want.BlockCount || !slices.Equal(eh.Entries, want.Entries) {
			t.Fatalf("case %d: repaired a header that is not the original", n)
		}
	}
}

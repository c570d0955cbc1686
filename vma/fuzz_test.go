package vma

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
)

// seedArchive is a small valid archive for the fuzz corpora.
func seedArchive(t testing.TB) []byte {
	rng := rand.New(rand.NewSource(1))
	arc, _ := testArchive(t, rng, [][]byte{testDisk(rng, ClusterSize+BlockSize), testDisk(rng, 2*BlockSize+100)})
	return arc
}

func FuzzParseHeader(f *testing.F) {
	arc := seedArchive(f)
	f.Add(arc[:HeaderFixedSize+512])
	f.Add([]byte("VMA\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err == nil {
			if h.Size < HeaderFixedSize || h.Size > MaxHeaderSize || h.Size > len(b) {
				t.Fatalf("size %d", h.Size)
			}
			// a parsed header marshals again
			if len(h.Devices) > 0 && len(h.Configs) < MaxConfigs {
				MarshalHeader(h)
			}
		}
	})
}

func FuzzParseExtentHeader(f *testing.F) {
	arc := seedArchive(f)
	h, _ := ParseHeader(arc)
	f.Add(arc[h.Size:h.Size+ExtentHeaderSize], h.UUID[:])
	f.Fuzz(func(t *testing.T, b, u []byte) {
		var uuid [16]byte
		copy(uuid[:], u)
		eh, err := ParseExtentHeader(b, uuid)
		if err == nil {
			n := 0
			for _, e := range eh.Entries {
				n += e.Blocks()
			}
			if n != eh.BlockCount || len(eh.Entries) > EntriesPerExtent {
				t.Fatalf("inconsistent: %d blocks, count %d", n, eh.BlockCount)
			}
		}
		IsExtentHeader(b, uuid)
		// A repair is a header whose MD5 is the one stored in b.
		var suspect []bool
		if len(b) > ExtentHeaderSize {
			suspect = make([]bool, ExtentHeaderSize)
			for i := range suspect {
				suspect[i] = b[ExtentHeaderSize]>>(i%8)&1 != 0
			}
		}
		if rh, ok := RepairExtentHeader(b, uuid, []uint8{1, 2, 3}, suspect); ok {
			re := make([]byte, ExtentHeaderSize)
			if err := MarshalExtentHeader(re, uuid, rh.Entries); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(re[extOffMD5:extOffMD5+16], b[extOffMD5:extOffMD5+16]) {
				t.Fatal("repaired header does not have the stored checksum")
			}
		}
	})
}

// FuzzReader reads mutated archives in both modes: never a panic, a hang or
// an unbounded allocation, and in salvage mode an account of every device.
func FuzzReader(f *testing.F) {
	arc := seedArchive(f)
	f.Add(arc, uint16(0), byte(0))
	f.Add(arc[:len(arc)/2], uint16(3), byte(0x55))
	f.Fuzz(func(t *testing.T, b []byte, at uint16, x byte) {
		b = append([]byte(nil), b...)
		if len(b) > 0 {
			b[int(at)%len(b)] ^= x
		}
		for _, salvage := range []bool{false, true} {
			r, err := NewReader(bytes.NewReader(b), Options{Salvage: salvage})
			if err != nil {
				continue
			}
			for i := 0; ; i++ {
				c, err := r.Next()
				if err != nil {
					if err != io.EOF && salvage {
						t.Fatalf("salvage Next: %v", err)
					}
					break
				}
				if len(c.Data) != c.Blocks()*BlockSize {
					t.Fatalf("cluster data %d bytes for mask %04x", len(c.Data), c.Mask)
				}
				if i > 1<<20 {
					t.Fatal("too many clusters")
				}
			}
			if salvage && len(r.Result().Devices) != len(r.Header().Devices) {
				t.Fatalf("result has %d devices, header %d", len(r.Result().Devices), len(r.Header().Devices))
			}
		}
	})
}

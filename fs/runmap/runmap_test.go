package runmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

func TestAppendMergesAndTrims(t *testing.T) {
	var m Map
	m.Append(Run{Off: 0, Phys: 100, N: 5})
	m.Append(Run{Off: 5, Phys: 105, N: 3})               // contiguous: merged
	m.Append(Run{Off: 6, Phys: 300, N: 4})               // overlaps 6-7: only 8-9 kept, from 302
	m.Append(Run{Off: 2, Phys: 900, N: 2})               // wholly behind: dropped
	m.Append(Run{Off: 12, N: 2, Kind: Unknown})          // after a hole
	m.Append(Run{Off: 14, Phys: 7, N: 1, Kind: Unknown}) // unknown runs merge whatever Phys says
	want := []Run{{Off: 0, Phys: 100, N: 8}, {Off: 8, Phys: 302, N: 2}, {Off: 12, N: 3, Kind: Unknown}}
	if len(m.Runs) != len(want) {
		t.Fatalf("runs %v, want %v", m.Runs, want)
	}
	for i := range want {
		if m.Runs[i] != want[i] {
			t.Errorf("run %d = %v, want %v", i, m.Runs[i], want[i])
		}
	}
	if len(m.Problems) != 2 {
		t.Errorf("problems %q, want the two double mappings", m.Problems)
	}
	for b, w := range map[uint64][2]int{0: {0, 0}, 9: {1, 1}, 10: {-1, 2}, 14: {2, 2}, 15: {-1, 3}} {
		if i, next := m.Find(b); i != w[0] || next != w[1] {
			t.Errorf("Find(%d) = %d, %d, want %d, %d", b, i, next, w[0], w[1])
		}
	}
}

func TestSortPrefersData(t *testing.T) {
	var m Map
	m.Add(Run{Off: 10, N: 4, Kind: Unknown})
	m.Add(Run{Off: 10, Phys: 50, N: 2})
	m.Add(Run{Off: 0, Phys: 20, N: 3, Kind: Unwritten})
	m.Sort()
	want := []Run{{Off: 0, Phys: 20, N: 3, Kind: Unwritten}, {Off: 10, Phys: 50, N: 2}, {Off: 12, N: 2, Kind: Unknown}}
	if len(m.Runs) != len(want) {
		t.Fatalf("runs %v, want %v", m.Runs, want)
	}
	for i := range want {
		if m.Runs[i] != want[i] {
			t.Errorf("run %d = %v, want %v", i, m.Runs[i], want[i])
		}
	}
}

func TestRead(t *testing.T) {
	const bs = 4
	vol := []byte("0123456789abcdefghijklmnopqrstuv") // 8 blocks
	m := Map{Runs: []Run{{Off: 1, Phys: 2, N: 2}, {Off: 3, Phys: 0, N: 1, Kind: Unwritten}, {Off: 5, N: 1, Kind: Unknown}}}
	read := func(p []byte, blk uint64, within int64) error {
		copy(p, vol[int64(blk)*bs+within:])
		return nil
	}
	errLost := errors.New("lost")
	lost := func(uint64) error { return errLost }
	p := bytes.Repeat([]byte{'x'}, 7*bs)
	err := m.Read(p, 0, bs, read, lost)
	want := "\x00\x00\x00\x0089abcdef\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	if string(p) != want || !errors.Is(err, errLost) {
		t.Fatalf("Read = %q, %v; want %q, lost", p, err, want)
	}
	q := make([]byte, 3)
	if err := m.Read(q, 6, bs, read, lost); err != nil || string(q) != "abc" {
		t.Fatalf("Read within a run = %q, %v", q, err)
	}
}

// FuzzSort checks that any runs give a sorted, non-overlapping, merged map
// whose Find agrees with a scan.
func FuzzSort(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Map
		for len(b) >= 12 {
			m.Add(Run{
				Off:  uint64(binary.LittleEndian.Uint32(b)),
				Phys: uint64(binary.LittleEndian.Uint32(b[4:])),
				N:    uint64(binary.LittleEndian.Uint16(b[8:])),
				Kind: b[10] % 3,
			})
			b = b[12:]
		}
		m.Sort()
		for i := 1; i < len(m.Runs); i++ {
			a, r := m.Runs[i-1], m.Runs[i]
			if a.End() > r.Off || a.N == 0 {
				t.Fatalf("runs %d and %d overlap or are empty: %v %v", i-1, i, a, r)
			}
			if a.End() == r.Off && a.Kind == r.Kind && (r.Kind == Unknown || a.Phys+a.N == r.Phys) {
				t.Fatalf("runs %d and %d not merged: %v %v", i-1, i, a, r)
			}
		}
		for i, r := range m.Runs {
			if got, _ := m.Find(r.Off + r.N - 1); got != i {
				t.Fatalf("Find(%d) = %d, want %d", r.Off+r.N-1, got, i)
			}
		}
	})
}

// TestReadHugeRuns: runs whose byte offsets do not fit in an int64 (a
// lost mapping of a whole fork: 2^54 blocks of 4 KiB, or a run the disk
// puts there) read as what they are, without a hang or a panic.
func TestReadHugeRuns(t *testing.T) {
	lost := errors.New("lost")
	read := func(p []byte, blk uint64, within int64) error { return nil }
	for _, m := range []Map{
		{Runs: []Run{{Off: 0, N: 1 << 54, Kind: Unknown}}},
		{Runs: []Run{{Off: 1 << 60, Phys: 5, N: 1 << 60}}},
		{Runs: []Run{{Off: 2, Phys: 5, N: 1<<64 - 3}}},
	} {
		for _, off := range []int64{0, 4096, 1 << 40} {
			p := bytes.Repeat([]byte{'x'}, 10000)
			m.Read(p, off, 4096, read, func(uint64) error { return lost })
			if m.Runs[0].Kind == Unknown && !bytes.Equal(p, make([]byte, len(p))) {
				t.Errorf("%v at %d: lost bytes not zeros", m.Runs, off)
			}
		}
	}
}

// TestLostHuge: a lost mapping beyond what an int64 of bytes reaches is a
// range to the end of that, not a wrapped one.
func TestLostHuge(t *testing.T) {
	m := Map{Runs: []Run{{Off: 3, N: 1 << 54, Kind: Unknown}}}
	got := m.Lost(1<<54, 4096)
	if len(got) != 1 || got[0].Logical != 3*4096 || got[0].Length != math.MaxInt64-3*4096 {
		t.Fatalf("Lost = %+v", got)
	}
}

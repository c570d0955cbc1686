package damage

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"
)

// ref is a byte-per-position model of a Map.
type ref []State

func (r ref) add(off, n int64, s State, set bool) {
	for i := off; i < off+n; i++ {
		if set || s > r[i] {
			r[i] = s
		}
	}
}

func (r ref) check(t *testing.T, m *Map) {
	t.Helper()
	got := make(ref, len(r))
	prev := Range{Off: -1}
	for _, g := range m.Ranges() {
		if g.Len <= 0 || g.State == OK || g.Off < prev.End() || (g.Off == prev.End() && g.State == prev.State) {
			t.Fatalf("not normalised: %v after %v", g, prev)
		}
		for i := g.Off; i < g.End(); i++ {
			got[i] = g.State
		}
		prev = g
	}
	for i := range r {
		if got[i] != r[i] {
			t.Fatalf("byte %d: got %v want %v (map %v)", i, got[i], r[i], m.Ranges())
		}
	}
}

func TestMapAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 300; iter++ {
		const size = 200
		model := make(ref, size)
		m := &Map{}
		for op := 0; op < 40; op++ {
			off := rng.Int63n(size - 1)
			n := rng.Int63n(size-off) + 1
			s := State(rng.Intn(4))
			set := rng.Intn(3) == 0
			if set {
				m.Set(off, n, s)
			} else {
				m.Add(off, n, s)
			}
			model.add(off, n, s, set)
			model.check(t, m)
		}
		// queries
		for q := 0; q < 20; q++ {
			off := rng.Int63n(size)
			n := rng.Int63n(size-off) + 1
			var want int64
			anyT := false
			for i := off; i < off+n; i++ {
				if model[i] >= Tainted {
					want++
					anyT = true
				}
			}
			if got := m.Count(off, n, Tainted); got != want {
				t.Fatalf("Count(%d,%d)=%d want %d", off, n, got, want)
			}
			if m.Any(off, n, Tainted) != anyT {
				t.Fatalf("Any mismatch")
			}
			sl := m.Slice(off, n)
			for _, r := range sl.Ranges() {
				for i := r.Off; i < r.End(); i++ {
					if model[off+i] != r.State {
						t.Fatalf("Slice mismatch")
					}
				}
			}
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	m := &Map{}
	m.Add(0, 65536, Lost)
	m.Add(1<<20, 4096, Tainted)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"offset":0,"length":65536,"state":"lost"},{"offset":1048576,"length":4096,"state":"tainted"}]`
	if string(b) != want {
		t.Fatalf("got %s", b)
	}
	var back Map
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Ranges()) != 2 || back.Ranges()[1] != (Range{1 << 20, 4096, Tainted}) {
		t.Fatalf("round trip: %v", back.Ranges())
	}
	empty := &Map{}
	if b, _ := json.Marshal(empty); string(b) != "[]" {
		t.Fatalf("nil map: %s", b)
	}
}

func TestFromRanges(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for iter := 0; iter < 200; iter++ {
		const size = 300
		model := make(ref, size)
		var rs []Range
		for op := 0; op < 30; op++ {
			off := rng.Int63n(size - 1)
			n := rng.Int63n(size-off) + 1
			s := State(rng.Intn(4))
			rs = append(rs, Range{off, n, s})
			model.add(off, n, s, false)
		}
		model.check(t, FromRanges(rs))
	}
}

// TestCoarsen: a coarsened map has at most max ranges and marks every byte
// the original marked, in a state at least as bad; it never unmarks one.
func TestCoarsen(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for iter := 0; iter < 100; iter++ {
		const size = 4096 * 8
		var rs []Range
		for op := 0; op < 200; op++ {
			off := rng.Int63n(size - 1)
			rs = append(rs, Range{off, rng.Int63n(min(size-off, 900)) + 1, State(rng.Intn(3) + 1)})
		}
		orig := FromRanges(rs)
		m := orig.Clone()
		max := rng.Intn(20) + 1
		merged := m.Coarsen(max)
		if m.Len() > max || merged != orig.Len()-m.Len() {
			t.Fatalf("%d ranges left of %d (max %d), merged %d", m.Len(), orig.Len(), max, merged)
		}
		for _, r := range orig.Ranges() {
			for off := r.Off; off < r.End(); off++ {
				got := m.Overlaps(off, 1)
				if len(got) != 1 || got[0].State < r.State {
					t.Fatalf("byte %d was %v, is %v after Coarsen", off, r.State, got)
				}
			}
		}
		for i := 1; i < m.Len(); i++ {
			if a, b := m.Ranges()[i-1], m.Ranges()[i]; a.End() >= b.Off && a.State == b.State || a.End() > b.Off {
				t.Fatalf("ranges not normal: %v %v", a, b)
			}
		}
	}
}

// TestUnmarshalForged: a damage.json listing every other 64 KiB cluster of
// a large device as lost, in reverse order, is read in O(n log n) and kept
// within MaxRanges.
func TestUnmarshalForged(t *testing.T) {
	var b []byte
	b = append(b, '[')
	const n = MaxRanges + 10000
	for i := n - 1; i >= 0; i-- {
		b = fmt.Appendf(b, `{"offset":%d,"length":65536,"state":"lost"},`, int64(i)*131072)
	}
	b[len(b)-1] = ']'
	var m Map
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Len() > MaxRanges || m.Count(0, n*131072, Lost) < n*65536 {
		t.Fatalf("%d ranges, %d bytes lost", m.Len(), m.Total(Lost))
	}
}

package damage

import (
	"encoding/json"
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

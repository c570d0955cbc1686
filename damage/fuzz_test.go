package damage

import (
	"encoding/json"
	"testing"
)

// FuzzMap applies a fuzzed sequence of Add, Set and Clear to a Map and to a
// byte-per-position model, and checks they agree after each step, that the
// map stays normalised, and that Count, Any, Overlaps and Slice agree with
// the model.
func FuzzMap(f *testing.F) {
	f.Add([]byte{0, 10, 20, 3, 1, 15, 5, 0, 2, 0, 255, 0})
	f.Add([]byte{0, 0, 1, 2, 0, 1, 1, 2, 0, 2, 1, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const size = 256
		m := &Map{}
		r := make(ref, size)
		for len(ops) >= 4 {
			op, off, n, s := ops[0]%3, int64(ops[1]), int64(ops[2])%64, State(ops[3]%4)
			ops = ops[4:]
			n = min(n, size-off)
			switch op {
			case 0:
				m.Add(off, n, s)
				if s != OK {
					r.add(off, n, s, false)
				}
			case 1:
				m.Set(off, n, s)
				r.add(off, n, s, true)
			case 2:
				m.Clear(off, n)
				r.add(off, n, OK, true)
			}
			r.check(t, m)
		}
		for off := int64(0); off < size; off += 17 {
			n := int64(23)
			var want int64
			for i := off; i < min(size, off+n); i++ {
				if r[i] >= Tainted {
					want++
				}
			}
			if got := m.Count(off, n, Tainted); got != want {
				t.Fatalf("Count(%d, %d) = %d, want %d", off, n, got, want)
			}
			if m.Any(off, n, Tainted) != (want > 0) {
				t.Fatalf("Any(%d, %d) disagrees with Count", off, n)
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Map
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		r.check(t, &back)
	})
}

// FuzzUnmarshalJSON: damage maps read from a damage.json an attacker may
// have written never panic and always come out normalised.
func FuzzUnmarshalJSON(f *testing.F) {
	f.Add([]byte(`[{"offset":0,"length":10,"state":"lost"},{"offset":5,"length":10,"state":"tainted"}]`))
	f.Add([]byte(`[{"offset":-5,"length":9223372036854775807,"state":"lost"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Map
		if json.Unmarshal(b, &m) != nil {
			return
		}
		prev := Range{Off: -1 << 62}
		for _, g := range m.Ranges() {
			if g.Len <= 0 || g.State == OK || g.Off < prev.End() {
				t.Fatalf("not normalised: %v after %v", g, prev)
			}
			prev = g
		}
	})
}

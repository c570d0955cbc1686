package ringcache

import "testing"

func TestEvictsOldest(t *testing.T) {
	c := New[int, string](2)
	c.Put(1, "a")
	c.Put(2, "b")
	c.Put(1, "again") // present: kept as is
	c.Put(3, "c")     // evicts 1
	if _, ok := c.Get(1); ok {
		t.Error("1 not evicted")
	}
	if v, ok := c.Get(2); !ok || v != "b" {
		t.Errorf("2: %q %v", v, ok)
	}
	if len(c.Values()) != 2 {
		t.Errorf("%d values", len(c.Values()))
	}
}

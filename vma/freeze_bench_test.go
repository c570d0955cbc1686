package vma

import "testing"

// BenchmarkFreeze: what a snapshot at an extent header costs for a 1 TiB
// device read in full (4096 pages of cluster states), and the page copies
// that the extent after it makes (its 59 clusters in one page).
func BenchmarkFreeze(b *testing.B) {
	var m clusterMap
	budget := 0
	for c := uint32(0); c < 1<<24; c += 8 {
		if err := m.set(c, cOK, &budget); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := m.freeze()
		_ = s
		for k := uint32(0); k < 59; k++ {
			m.set(uint32(i*59)%(1<<24)+k, cOK, &budget)
		}
	}
}

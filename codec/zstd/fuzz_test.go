package zstd

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
)

// FuzzDecode runs random and mutated streams through both modes: no panic,
// no hang, bounded memory, and spans that are ordered and inside the output.
func FuzzDecode(f *testing.F) {
	if files, err := filepath.Glob("../../../shared/fixtures/zstd-golden/*.zst"); err == nil {
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b, false)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, strict bool) {
		for _, so := range []bool{false, true} {
			z := newReader(bytes.NewReader(data), codec.Options{Strict: strict}, config{salvageOnly: so})
			n, _ := io.Copy(io.Discard, io.LimitReader(z, 256<<20))
			var end int64
			for _, s := range z.Spans() {
				if s.Off < end || s.Len < 0 || (s.Resync && s.MaxLen >= 0 && s.MaxLen < s.Len) {
					t.Fatalf("bad span %+v after %d", s, end)
				}
				end = s.End()
			}
			if end > n && n < 256<<20 {
				t.Fatalf("span end %d beyond output %d", end, n)
			}
			z.Close()
		}
	})
}

package zstd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
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
			codectest.Drain(t, z, len(data), 256<<20)
			z.Close()
		}
	})
}

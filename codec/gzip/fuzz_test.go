package gzip

import (
	"bytes"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
)

// FuzzReader feeds arbitrary input to both modes: no panic, bounded
// output, spans in order, problems within the input.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, strict := range []bool{false, true} {
			r, err := NewReader(bytes.NewReader(in), codec.Options{Strict: strict})
			if err != nil {
				continue
			}
			codectest.Drain(t, r, len(in), 4<<20)
		}
	})
}

package gzip

import (
	"bytes"
	"io"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
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
			const limit = 4 << 20
			n, _ := io.Copy(io.Discard, io.LimitReader(r, limit))
			var end int64
			for _, s := range r.Spans() {
				if s.Off < end || s.Len < 0 || (s.End() > n && n < limit) {
					t.Fatalf("bad spans %v (output %d)", r.Spans(), n)
				}
				end = s.End()
			}
			for _, p := range r.Problems() {
				if p.Offset < 0 || p.Offset > int64(len(in)) {
					t.Fatalf("problem offset %d outside input of %d bytes", p.Offset, len(in))
				}
			}
			switch r.Checksum() {
			case codec.ChecksumOK, codec.ChecksumMismatch, codec.ChecksumUnknown:
			default:
				t.Fatalf("checksum %q", r.Checksum())
			}
		}
	})
}

package lzo

import (
	"bytes"
	"io"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
)

// FuzzDecompress1X: no panic, no write past the room, and on success
// the output decodes again identically.
func FuzzDecompress1X(f *testing.F) {
	f.Add([]byte{0x11, 0, 0})
	f.Add([]byte{17 + 4, 'a', 'b', 'a', 'b', 0x40 | 1<<2, 0, 0x11, 0, 0})
	room := make([]byte, 0, 1<<20)
	f.Fuzz(func(t *testing.T, src []byte) {
		out, err := Decompress1X(room[:0], src)
		if len(out) > cap(room) || &out[:1][0] != &room[:1][0] {
			t.Fatalf("output escaped its room: %d bytes", len(out))
		}
		if err != nil {
			return
		}
		again, err := Decompress1X(make([]byte, 0, len(out)), src)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("exact room: %v", err)
		}
	})
}

// FuzzReader feeds arbitrary input to both modes: no panic, spans in
// order, problems within the input.
func FuzzReader(f *testing.F) {
	f.Add(append(magic[:], 0x10, 0x40))
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
		}
	})
}

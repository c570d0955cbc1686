package lzo

import (
	"bytes"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
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
			codectest.Drain(t, r, len(in), 4<<20)
		}
	})
}

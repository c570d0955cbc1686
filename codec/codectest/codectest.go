// Package codectest checks the promises every codec.Reader makes, for the
// decoders' tests and fuzz targets.
package codectest

import (
	"io"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
)

// Drain reads r to its end (at most limit bytes) and checks what a damaged
// or arbitrary input must still give: spans ordered, not overlapping,
// inside the output, and a Resync span no longer than its bound; problems
// at offsets inside the input of inLen bytes; a checksum state the codec
// package defines. It returns the number of bytes read.
func Drain(t testing.TB, r codec.Reader, inLen int, limit int64) int64 {
	t.Helper()
	n, _ := io.Copy(io.Discard, io.LimitReader(r, limit))
	var end int64
	for _, s := range r.Spans() {
		if s.Off < end || s.Len < 0 || (s.Resync && s.MaxLen >= 0 && s.MaxLen < s.Len) {
			t.Fatalf("bad span %+v after %d", s, end)
		}
		end = s.End()
	}
	if end > n && n < limit {
		t.Fatalf("span end %d beyond output %d", end, n)
	}
	for _, p := range r.Problems() {
		if p.Offset < 0 || p.Offset > int64(inLen) {
			t.Fatalf("problem offset %d outside input of %d bytes", p.Offset, inLen)
		}
	}
	switch r.Checksum() {
	case codec.ChecksumOK, codec.ChecksumMismatch, codec.ChecksumAbsent, codec.ChecksumUnknown:
	default:
		t.Fatalf("checksum %q", r.Checksum())
	}
	return n
}

package ctar

import (
	"bytes"
	"io"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
)

// FuzzScan feeds arbitrary bytes to Scan, with the middle of the input
// reported lost, and walks and reads the tree it builds: no panic, no
// unbounded allocation, every extent inside the stream.
func FuzzScan(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 1024))
	f.Fuzz(fuzzOne)
}

func fuzzOne(t *testing.T, b []byte) {
	{
		for _, spans := range [][]codec.Span{nil, {{Off: int64(len(b) / 3), Len: int64(len(b) / 5), MaxLen: -1, State: 3, Resync: len(b)%2 == 0}}} {
			x, err := Scan(&spanReader{Reader: bytes.NewReader(b), spans: spans}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range x.Members {
				for _, e := range m.Data() {
					if e.Physical < 0 || e.Length < 0 || e.Physical+e.Length > x.Size {
						t.Fatalf("%s: extent %+v outside the stream of %d", m.Name, e, x.Size)
					}
				}
				x.MemberDamage(m)
			}
			f := NewFS(x, bytes.NewReader(b))
			buf := make([]byte, 4096)
			fs.Walk(f, f.Root(), func(p string, e *fs.DirEntry, st *fs.Stat, err error) error {
				if st != nil && st.Mode.IsRegular() {
					if file, err := f.Open(st.Node); err == nil {
						file.ReadAt(buf, 0)
					}
					f.Layout(st.Node)
				}
				return nil
			})
		}
	}
}

// spanReader is a plain stream that reports fixed spans.
type spanReader struct {
	io.Reader
	spans []codec.Span
}

func (s *spanReader) Spans() []codec.Span        { return s.spans }
func (s *spanReader) Problems() []damage.Problem { return nil }
func (s *spanReader) Checksum() codec.Checksum   { return codec.ChecksumAbsent }

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
			got := map[int64][]byte{}
			x, err := Scan(&spanReader{Reader: bytes.NewReader(b), spans: spans}, Options{
				Fragment: func(start int64, p []byte, off int64) error {
					if int64(len(got[start])) != off {
						t.Fatalf("fragment %d: bytes at %d after %d", start, off, len(got[start]))
					}
					got[start] = append(got[start], p...)
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			end := int64(0)
			for _, fr := range x.Fragments {
				if fr.Off < end || fr.Size < minFragment || fr.Off+fr.Size > x.Size || x.Damage.Any(fr.Off, fr.Size, damage.Tainted) ||
					!bytes.Equal(got[fr.Off][:min(len(got[fr.Off]), int(fr.Size))], b[fr.Off:fr.Off+fr.Size]) {
					t.Fatalf("fragment %+v (after %d): out of order, short, outside the stream, damaged or not its bytes", fr, end)
				}
				end = fr.Off + fr.Size
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

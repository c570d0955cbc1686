// Package payloadtest checks the promises every payload.Payload makes, for
// the payloads' tests and fuzz targets (as codec/codectest does for the
// codecs).
package payloadtest

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/payload"
)

// maxContent bounds what the in-memory sink keeps (tests use small streams).
const maxContent = 256 << 20

// Check runs the conformance checks on p with clean, a complete
// decompressed stream of p's kind, and others, streams of other payloads:
//   - Match accepts clean's head and rejects the others', random bytes and
//     an empty head;
//   - Inspect and Scan read clean without a problem, Scan says it is intact
//     with no unit damaged, and the sink sees each unit announced before
//     its bytes, written inside its size;
//   - Scan of clean damaged by a decoder (a lost range, a tainted range, a
//     cut) at several places never fails, and every unit byte outside the
//     unit's reported damage equals the clean scan's (the golden rule);
//   - problems carry offsets inside the stream.
func Check(t *testing.T, p payload.Payload, clean []byte, others ...[]byte) {
	t.Helper()
	head := func(b []byte) []byte { return b[:min(len(b), payload.HeadSize)] }
	if !p.Match(head(clean)) {
		t.Fatalf("%s: Match rejects its own stream", p.Kind())
	}
	for _, o := range others {
		if p.Match(head(o)) {
			t.Errorf("%s: Match accepts another payload's head %q", p.Kind(), head(o)[:min(16, len(o))])
		}
	}
	if p.Match(nil) || p.Match(bytes.Repeat([]byte{0x5a, 0xa5, 0x3c}, 200)) {
		t.Errorf("%s: Match accepts an empty or random head", p.Kind())
	}
	if info, err := p.Inspect(&Damaged{R: bytes.NewReader(clean)}); err != nil || len(info.Problems) > 0 {
		t.Errorf("%s: Inspect of a clean stream: %v %v", p.Kind(), err, info)
	}
	want, res := scan(t, p, &Damaged{R: bytes.NewReader(clean)})
	if res == nil {
		t.Fatalf("%s: Scan of a clean stream failed", p.Kind())
	}
	if !res.Intact || res.ProblemCount > 0 {
		t.Errorf("%s: clean stream not intact: %d problems %v", p.Kind(), res.ProblemCount, res.Problems)
	}
	for _, u := range res.Units {
		if !u.Damage.Empty() {
			t.Errorf("%s: clean stream, unit %s damaged: %v", p.Kind(), u.Name, u.Damage.Ranges())
		}
	}
	for _, d := range damages(int64(len(clean))) {
		t.Run(d.name, func(t *testing.T) {
			r := &Damaged{R: bytes.NewReader(clean), Spans_: d.spans, Cut: d.cut}
			got, res := scan(t, p, r)
			if res == nil {
				return // nothing could be read: an error, as for any unreadable stream
			}
			checkProblems(t, res.Problems, int64(len(clean)))
			golden(t, want, got)
		})
	}
}

type damageCase struct {
	name  string
	spans []codec.Span
	cut   int64
}

// damages returns the decoder damage Check applies to a stream of n bytes.
func damages(n int64) []damageCase {
	var out []damageCase
	for _, at := range []float64{0, 0.1, 0.33, 0.5, 0.9} {
		off := int64(float64(n) * at)
		l := min(64<<10, n-off)
		out = append(out,
			damageCase{name: fmt.Sprintf("lost at %.0f%%", at*100), spans: []codec.Span{{Off: off, Len: l, MaxLen: -1, State: damage.Lost}}},
			damageCase{name: fmt.Sprintf("tainted at %.0f%%", at*100), spans: []codec.Span{{Off: off, Len: min(700, l), MaxLen: -1, State: damage.Tainted}}})
		if off > 0 {
			out = append(out, damageCase{name: fmt.Sprintf("cut at %.0f%%", at*100), cut: off})
		}
	}
	return out
}

// content is what a sink received: the units by name and their bytes.
type content struct {
	units map[string]payload.Unit
	byID  map[int]string
	data  map[string][]byte
}

// scan runs p.Scan into an in-memory sink; a failed Scan gives nil.
func scan(t *testing.T, p payload.Payload, r codec.Reader) (*content, *payload.Result) {
	t.Helper()
	s := &memSink{t: t, c: &content{units: map[string]payload.Unit{}, byID: map[int]string{}, data: map[string][]byte{}}, ids: map[int]string{}}
	res, err := p.Scan(r, s, payload.Options{})
	if err != nil {
		t.Logf("%s: Scan: %v", p.Kind(), err)
		return nil, nil
	}
	for _, u := range res.Units {
		s.c.units[u.Name] = u
		s.c.byID[u.ID] = u.Name
	}
	return s.c, res
}

type memSink struct {
	t     *testing.T
	c     *content
	ids   map[int]string
	total int
}

func (s *memSink) Unit(u payload.Unit) error {
	s.ids[u.ID] = u.Name
	return nil
}

func (s *memSink) WriteAt(id int, p []byte, off int64) error {
	name, ok := s.ids[id]
	if !ok {
		s.t.Errorf("WriteAt of unit %d, never announced", id)
		return nil
	}
	if off < 0 || off+int64(len(p)) > maxContent || s.total > maxContent {
		s.t.Fatalf("unit %s: write of %d bytes at %d", name, len(p), off)
	}
	b := s.c.data[name]
	if need := off + int64(len(p)); int64(len(b)) < need {
		s.total += int(need) - len(b)
		b = append(b, make([]byte, need-int64(len(b)))...)
	}
	copy(b[off:], p)
	s.c.data[name] = b
	return nil
}

// golden checks that every byte of every unit outside its damage equals
// the clean stream's (units are matched by name, or by ID when damage cost
// the name, as when a VM's header is lost; bytes past a unit's clean size
// must be zeros).
func golden(t *testing.T, want, got *content) {
	t.Helper()
	for name, u := range got.units {
		wname := name
		if _, ok := want.units[name]; !ok {
			wname = want.byID[u.ID]
		}
		if _, ok := want.units[wname]; !ok {
			// a unit the damage made up: it must say so
			if u.Damage.Empty() {
				t.Errorf("unit %s (size %d) is not in the clean stream but reports no damage", name, u.Size)
			}
			continue
		}
		a, b := want.data[wname], got.data[name]
		for off := int64(0); off < u.Size; off++ {
			x, y := at(a, off), at(b, off)
			if x != y && !u.Damage.Any(off, 1, damage.Tainted) {
				t.Errorf("unit %s: byte %d is %#x, not %#x, outside the reported damage %v", name, off, y, x, u.Damage.Ranges())
				break
			}
		}
	}
}

func at(b []byte, off int64) byte {
	if off < int64(len(b)) {
		return b[off]
	}
	return 0
}

func checkProblems(t *testing.T, ps []damage.Problem, n int64) {
	t.Helper()
	for _, p := range ps {
		if p.Offset > n+(1<<20) {
			t.Errorf("problem offset %d past the stream's %d bytes: %s", p.Offset, n, p)
		}
	}
}

// Damaged is a codec.Reader over R that reports Spans_ as damage (lost
// spans read as zeros, tainted ones as their bytes with one bit flipped)
// and ends at Cut (if > 0): a decoder's output as the payloads see it.
type Damaged struct {
	R      io.Reader
	Spans_ []codec.Span
	Cut    int64
	pos    int64
}

// Read implements io.Reader.
func (d *Damaged) Read(p []byte) (int, error) {
	if d.Cut > 0 && d.pos >= d.Cut {
		return 0, io.EOF
	}
	if d.Cut > 0 && int64(len(p)) > d.Cut-d.pos {
		p = p[:d.Cut-d.pos]
	}
	n, err := d.R.Read(p)
	for _, s := range d.Spans_ {
		lo, hi := max(s.Off, d.pos), min(s.End(), d.pos+int64(n))
		for i := lo; i < hi; i++ {
			if s.State == damage.Lost {
				p[i-d.pos] = 0
			} else {
				p[i-d.pos] ^= 0x10
			}
		}
	}
	d.pos += int64(n)
	return n, err
}

// Spans implements codec.Reader: the spans that start before what was read.
func (d *Damaged) Spans() []codec.Span {
	var out []codec.Span
	for _, s := range d.Spans_ {
		if s.Off < d.pos {
			out = append(out, s)
		}
	}
	return out
}

// Problems implements codec.Reader.
func (d *Damaged) Problems() []damage.Problem { return nil }

// Checksum implements codec.Reader.
func (d *Damaged) Checksum() codec.Checksum { return codec.ChecksumAbsent }

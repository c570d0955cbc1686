package gzip

import (
	"bytes"
	stdflate "compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// decode reads a whole stream.
func decode(t testing.TB, in []byte, opt codec.Options) (codec.Reader, []byte, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(in), opt)
	if err != nil {
		return nil, nil, err
	}
	out, err := io.ReadAll(r)
	return r, out, err
}

// diskData is test data like a guest disk's, generated from a seed (the
// same on every machine).
func diskData(n int) []byte { return codectest.Disk(7, n) }

// rsyncable returns data compressed as vzdump does: gzip --rsyncable, or
// pigz --rsyncable when pig is set (skipping the test without pigz).
func rsyncable(t testing.TB, data []byte, pig bool) []byte {
	if pig {
		return testimg.Compress(t, data, "pigz", "--rsyncable", "-n")
	}
	return testimg.Compress(t, data, "gzip", "--rsyncable", "-n")
}

// vzdumpStreams returns data compressed as vzdump does (gzip --rsyncable,
// pigz --rsyncable when installed) and by gzip without sync points.
func vzdumpStreams(t testing.TB, data []byte) map[string][]byte {
	s := map[string][]byte{
		"gzip --rsyncable": rsyncable(t, data, false),
		"gzip -6":          testimg.Compress(t, data, "gzip", "-n"),
	}
	if _, err := exec.LookPath("pigz"); err == nil {
		s["pigz --rsyncable"] = rsyncable(t, data, true)
	}
	return s
}

// streams returns data compressed the ways vzdump does it, and a few more
// shapes (no --rsyncable, names, multiple members).
func streams(t *testing.T, data []byte) map[string][]byte {
	s := map[string][]byte{
		"gzip --rsyncable":  rsyncable(t, data, false),
		"gzip -6 with name": testimg.Compress(t, data, "gzip"),
		"gzip -1":           testimg.Compress(t, data, "gzip", "-1"),
	}
	third := len(data) / 3
	s["three members"] = append(append(testimg.Compress(t, data[:third], "gzip", "--rsyncable"),
		testimg.Compress(t, data[third:2*third], "gzip", "-9")...), testimg.Compress(t, data[2*third:], "gzip")...)
	if _, err := exec.LookPath("pigz"); err == nil {
		s["pigz --rsyncable"] = rsyncable(t, data, true)
		s["pigz -p 2 with comment"] = testimg.Compress(t, data, "pigz", "-p", "2", "-C", "a comment")
	} else {
		t.Log("pigz not installed: its streams are not tested")
	}
	return s
}

func TestCleanStreams(t *testing.T) {
	data := diskData(3 << 20)
	for name, gz := range streams(t, data) {
		for _, strict := range []bool{false, true} {
			r, out, err := decode(t, gz, codec.Options{Strict: strict})
			if err != nil {
				t.Fatalf("%s strict=%v: %v", name, strict, err)
			}
			if !bytes.Equal(out, data) {
				t.Errorf("%s strict=%v: output differs (%d bytes, want %d)", name, strict, len(out), len(data))
			}
			if len(r.Spans()) != 0 || len(r.Problems()) != 0 || r.Checksum() != codec.ChecksumOK {
				t.Errorf("%s: spans %v problems %v checksum %s", name, r.Spans(), r.Problems(), r.Checksum())
			}
		}
	}
}

func TestEdgeStreams(t *testing.T) {
	empty := testimg.Compress(t, nil, "gzip")
	tests := []struct {
		name string
		in   []byte
		out  []byte
		sum  codec.Checksum
		err  bool // NewReader fails
	}{
		{name: "empty input", in: nil, err: true},
		{name: "not gzip", in: []byte("hello world"), err: true},
		{name: "magic only", in: []byte{0x1f, 0x8b}, sum: codec.ChecksumUnknown},
		{name: "empty member", in: empty, out: []byte{}, sum: codec.ChecksumOK},
		{name: "trailing zeros", in: append(append([]byte{}, empty...), make([]byte, 1000)...), out: []byte{}, sum: codec.ChecksumOK},
		{name: "empty members", in: bytes.Repeat(empty, 3), out: []byte{}, sum: codec.ChecksumOK},
	}
	for _, tt := range tests {
		r, out, err := decode(t, tt.in, codec.Options{})
		if tt.err {
			if err == nil {
				t.Errorf("%s: no error", tt.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.out != nil && !bytes.Equal(out, tt.out) {
			t.Errorf("%s: output %q", tt.name, out)
		}
		if r.Checksum() != tt.sum {
			t.Errorf("%s: checksum %s, want %s (problems %v)", tt.name, r.Checksum(), tt.sum, r.Problems())
		}
	}
}

// TestRealVMA reads the gzipped VMA that Proxmox wrote.
func TestRealVMA(t *testing.T) {
	in, err := os.ReadFile(testutil.Fixture(t, "pve-real-truncated.vma.gz"))
	if err != nil {
		t.Fatal(err)
	}
	r, out, err := decode(t, in, codec.Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(out)
	if len(out) != 538112 || hex.EncodeToString(sum[:]) != "9c649a8f6ddd65034b6e24f76f104b2ab213f43015fd36a6d49477b9b8841ad4" {
		t.Errorf("got %d bytes, sha256 %x", len(out), sum)
	}
	if r.Checksum() != codec.ChecksumOK {
		t.Errorf("checksum %s", r.Checksum())
	}
}

// verdict is what check found of a salvaged stream.
type verdict struct {
	good      int64 // bytes outside the spans, checked equal to the original
	unchecked int64 // bytes outside the spans between two Resync spans: their true offset is unknown
	wrong     int64 // bytes outside the spans that differ
}

// check verifies the Reader's promise on damaged input, for a single damage:
// every byte outside the spans equals the original, before the first
// Resync span at the same offset, after the last one at the offset the
// stream's end gives (whole says the input was not cut short), unless a
// member's CRC failed with no span (silent damage: nothing could say
// where). It reports the first wrong byte as a test error.
func check(t testing.TB, what string, orig, out []byte, r codec.Reader, whole bool) verdict {
	t.Helper()
	var v verdict
	sp := r.Spans()
	for i := 1; i < len(sp); i++ {
		if sp[i].Off < sp[i-1].End() {
			t.Errorf("%s: spans overlap or out of order: %v", what, sp)
		}
	}
	if r.Checksum() == codec.ChecksumMismatch && len(sp) == 0 {
		return v
	}
	first, last := -1, -1
	for i, s := range sp {
		if s.Resync {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	shift, after := int64(0), false
	segment := func(a, b int64) {
		if a >= b {
			return
		}
		if after && !whole {
			v.unchecked += b - a
			return
		}
		o := a + shift
		if o < 0 || o+(b-a) > int64(len(orig)) || !bytes.Equal(out[a:b], orig[o:o+b-a]) {
			if v.wrong == 0 {
				t.Errorf("%s: wrong bytes outside the spans in [%d,%d) (shift %d, spans %v, problems %v)", what, a, b, shift, short(sp), r.Problems())
			}
			v.wrong += b - a
			return
		}
		v.good += b - a
	}
	pos := int64(0)
	for i, s := range sp {
		end := min(s.Off, int64(len(out)))
		if first >= 0 && i > first && i <= last {
			v.unchecked += max(end-pos, 0)
		} else {
			segment(pos, end)
		}
		pos = s.End()
		if i == last {
			shift, after = int64(len(orig))-int64(len(out)), true
		}
	}
	segment(pos, int64(len(out)))
	return v
}

// short abbreviates a long list of spans for a message.
func short(sp []codec.Span) []codec.Span {
	if len(sp) > 8 {
		return sp[:8]
	}
	return sp
}

func TestDamage(t *testing.T) {
	data := diskData(2 << 20)
	gzs := streams(t, data)
	var stats = map[string][3]int{} // cases, with spans, silent
	for name, gz := range gzs {
		for _, d := range testimg.Damagers {
			var v verdict
			const seeds = 6
			for seed := range uint64(seeds) {
				rng := rand.New(rand.NewPCG(seed, 7))
				bad := d.Do(append([]byte(nil), gz...), rng)
				what := name + "/" + d.Name
				r, out, err := decode(t, bad, codec.Options{})
				if err != nil {
					if d.Name == "truncation" && len(bad) < 2 {
						continue
					}
					t.Errorf("%s seed %d: %v", what, seed, err)
					continue
				}
				c := check(t, what, data, out, r, d.Name != "truncation")
				v.good += c.good
				v.unchecked += c.unchecked
				st := stats[d.Name]
				st[0]++
				if len(r.Spans()) > 0 {
					st[1]++
				}
				if r.Checksum() == codec.ChecksumMismatch {
					st[2]++
				}
				stats[d.Name] = st
				if r.Checksum() == codec.ChecksumOK && !bytes.Equal(out, data) {
					t.Errorf("%s seed %d: checksum ok but output differs", what, seed)
				}
				if d.Name == "truncation" {
					if r.Checksum() == codec.ChecksumOK || !bytes.HasPrefix(data, out) {
						t.Errorf("%s seed %d: truncated stream: checksum %s, prefix %v", what, seed, r.Checksum(), bytes.HasPrefix(data, out))
					}
				}
				// Strict mode fails on every change that matters.
				_, sout, serr := decode(t, bad, codec.Options{Strict: true})
				if serr == nil && !bytes.Equal(sout, data) {
					t.Errorf("%s seed %d: strict mode accepted damaged data", what, seed)
				}
				if serr != nil && !errors.Is(serr, codec.ErrCorrupt) && !errors.Is(serr, codec.ErrTruncated) {
					t.Errorf("%s seed %d: strict error %v wraps neither ErrCorrupt nor ErrTruncated", what, seed, serr)
				}
			}
			t.Logf("%-24s %-18s recovered %5.1f%% intact, %d bytes between losses", name, d.Name, 100*float64(v.good)/float64(seeds*len(data)), v.unchecked)
		}
	}
	for k, v := range stats {
		t.Logf("%-18s cases %d, with spans %d, checksum mismatch (silent) %d", k, v[0], v[1], v[2])
	}
}

// TestResyncNextMember damages the second of three members: the first and
// third must come out intact, the third after a Resync span.
func TestResyncNextMember(t *testing.T) {
	data := diskData(1 << 20)
	third := len(data) / 3
	m1 := testimg.Compress(t, data[:third], "gzip")
	m2 := testimg.Compress(t, data[third:2*third], "gzip")
	m3 := testimg.Compress(t, data[2*third:], "gzip")
	for _, at := range []struct {
		name string
		off  int
	}{{"header", 0}, {"deflate data", len(m2) / 2}, {"trailer", len(m2) - 3}} {
		bad := append(append(append([]byte{}, m1...), m2...), m3...)
		p := len(m1) + at.off
		clear(bad[p : p+3])
		bad[p] = 0x55
		r, out, err := decode(t, bad, codec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, data[:third]) || !bytes.HasSuffix(out, data[2*third:]) {
			t.Errorf("%s: first or last member not intact (spans %v)", at.name, r.Spans())
		}
		if r.Checksum() == codec.ChecksumOK || len(r.Problems()) == 0 {
			t.Errorf("%s: checksum %s, problems %v", at.name, r.Checksum(), r.Problems())
		}
		check(t, at.name, data, out, r, true)
		for _, s := range r.Spans() {
			if s.Off < int64(third) {
				t.Errorf("%s: span %v inside the intact first member", at.name, s)
			}
		}
		t.Logf("%s: spans %v problems %v", at.name, short(r.Spans()), r.Problems())
	}
}

// TestResume puts a 64 KiB garbage run in the middle of streams as vzdump
// writes them (and one without --rsyncable): the decoder must resume after
// it, lose only around it, and leave no wrong byte outside the spans.
func TestResume(t *testing.T) {
	data := diskData(8 << 20)
	for name, gz := range vzdumpStreams(t, data) {
		for _, pct := range []int{35, 65} {
			bad := append([]byte(nil), gz...)
			codectest.Garbage(bad, len(bad)*pct/100, 64<<10, uint64(pct))
			r, out, err := decode(t, bad, codec.Options{})
			if err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("%s %d%%", name, pct)
			v := check(t, what, data, out, r, true)
			resyncs := 0
			for _, s := range r.Spans() {
				if s.Resync {
					resyncs++
				}
			}
			frac := float64(v.good) / float64(len(data))
			t.Logf("%s: %.2f%% intact, %d spans, %d resyncs", what, 100*frac, len(r.Spans()), resyncs)
			if resyncs != 1 || v.unchecked != 0 || frac < 0.6 || r.Checksum() != codec.ChecksumUnknown {
				t.Errorf("%s: %d resyncs, %d bytes unchecked, %.2f%% intact, checksum %s (problems %v)", what, resyncs, v.unchecked, 100*frac, r.Checksum(), r.Problems())
			}
		}
	}
}

// TestTruncation: a stream cut anywhere gives back every byte before the
// cut; those since the last sync point are reported tainted (garbage that
// runs on over the trailer would look the same), none before. Garbage
// over the last blocks and the trailer leaves no wrong byte outside the
// spans.
func TestTruncation(t *testing.T) {
	data := diskData(2 << 20)
	gz := rsyncable(t, data, false)
	for _, cut := range []int{len(gz) / 3, len(gz) / 2, len(gz) - 100, len(gz) - 9} {
		r, out, err := decode(t, gz[:cut], codec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, out) || r.Checksum() != codec.ChecksumUnknown {
			t.Errorf("cut at %d: prefix %v, checksum %s", cut, bytes.HasPrefix(data, out), r.Checksum())
		}
		if ps := r.Problems(); len(ps) != 1 || ps[0].Kind != damage.Truncated {
			t.Errorf("cut at %d: problems %v, want one of kind truncated", cut, ps)
		}
		for _, s := range r.Spans() {
			if s.Len > 0 && (s.State != damage.Tainted || s.End() != int64(len(out)) || s.Len > 64<<10) {
				t.Errorf("cut at %d (%d bytes out): span %v, want only a short taint at the end", cut, len(out), s)
			}
		}
		if int64(len(out)) < int64(len(data))*int64(cut)/int64(len(gz))/2 {
			t.Errorf("cut at %d: only %d bytes", cut, len(out))
		}
	}
	for seed := range uint64(20) {
		bad := append([]byte(nil), gz...)
		rng := rand.New(rand.NewPCG(seed, 1))
		end := len(bad) - 8*rng.IntN(2) // over the trailer, or not
		codectest.Garbage(bad, end-1-rng.IntN(3000), end, seed)
		r, out, err := decode(t, bad, codec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, "garbage at the end", data, out, r, true)
	}
}

// fullHeader builds a member with every optional header field (FEXTRA,
// FNAME, FCOMMENT, FHCRC), which gzip itself never writes; `gzip -t`
// confirms it is valid.
func fullHeader(t *testing.T, payload []byte, badHCRC bool) []byte {
	h := []byte{id1, id2, cmDeflate, flagHCRC | flagExtra | flagName | flagComment, 0, 0, 0, 0, 0, 3,
		4, 0, 'A', 'B', 0, 0, 'n', 'a', 'm', 'e', 0, 'h', 'i', 0}
	c := crc32.ChecksumIEEE(h)
	if badHCRC {
		c++
	}
	h = append(h, byte(c), byte(c>>8))
	var body bytes.Buffer
	w, _ := stdflate.NewWriter(&body, 6)
	w.Write(payload)
	w.Close()
	h = append(h, body.Bytes()...)
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(payload)), uint32(len(payload)))
}

func TestFullHeader(t *testing.T) {
	payload := []byte("every optional gzip header field")
	good := fullHeader(t, payload, false)
	f := t.TempDir() + "/h.gz"
	os.WriteFile(f, good, 0o600)
	testutil.Run(t, "gzip", "-t", f)
	r, out, err := decode(t, good, codec.Options{Strict: true})
	if err != nil || !bytes.Equal(out, payload) || r.Checksum() != codec.ChecksumOK {
		t.Fatalf("good header: %v %q %s", err, out, r.Checksum())
	}
	bad := fullHeader(t, payload, true)
	r, out, err = decode(t, bad, codec.Options{})
	if err != nil || !bytes.Equal(out, payload) || len(r.Problems()) != 1 {
		t.Fatalf("bad header CRC: %v %q %v", err, out, r.Problems())
	}
	if _, _, err := decode(t, bad, codec.Options{Strict: true}); !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("bad header CRC, strict: %v", err)
	}
}

package gzip

import (
	"bytes"
	stdflate "compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// decode reads a whole stream; it fails the test on a panic or a Read that
// returns more than the input could hold.
func decode(t testing.TB, in []byte, opt codec.Options) (codec.Reader, []byte, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(in), opt)
	if err != nil {
		return nil, nil, err
	}
	out, err := io.ReadAll(r)
	return r, out, err
}

// streams returns the test corpus compressed the ways vzdump does it, and
// a few more shapes (names, multiple members).
func streams(t *testing.T, data []byte) map[string][]byte {
	s := map[string][]byte{
		"gzip --rsyncable":  testimg.Compress(t, data, "gzip", "--rsyncable", "-n"),
		"gzip -6 with name": testimg.Compress(t, data, "gzip"),
		"gzip -1":           testimg.Compress(t, data, "gzip", "-1"),
	}
	third := len(data) / 3
	s["three members"] = append(append(testimg.Compress(t, data[:third], "gzip", "--rsyncable"),
		testimg.Compress(t, data[third:2*third], "gzip", "-9")...), testimg.Compress(t, data[2*third:], "gzip")...)
	if _, err := exec.LookPath("pigz"); err == nil {
		s["pigz --rsyncable"] = testimg.Compress(t, data, "pigz", "--rsyncable")
		s["pigz -p 2 with comment"] = testimg.Compress(t, data, "pigz", "-p", "2", "-C", "a comment")
	} else {
		t.Log("pigz not installed: its streams are not tested")
	}
	return s
}

func TestCleanStreams(t *testing.T) {
	data := testimg.Corpus(t, 2<<20)
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

// damager changes a copy of a compressed stream the ways disks and RAM do.
// check verifies the Reader's promise on damaged input: before the first
// Resync span, every byte outside the spans equals the original, unless
// only the checksum failed (then no span can say where); truncated output
// is an exact prefix. It returns how many bytes were recovered intact.
func check(t *testing.T, what string, orig, out []byte, r codec.Reader) int64 {
	t.Helper()
	sp := r.Spans()
	for i := 1; i < len(sp); i++ {
		if sp[i].Off < sp[i-1].End() {
			t.Errorf("%s: spans overlap or out of order: %v", what, sp)
		}
	}
	if r.Checksum() == codec.ChecksumMismatch {
		// A member failed its CRC: its damage has no place, and the
		// interface lets its bytes stand outside every span.
		return 0
	}
	if len(sp) == 0 && !bytes.Equal(out, orig) {
		t.Errorf("%s: no span, checksum %s, but output differs (problems %v)", what, r.Checksum(), r.Problems())
		return 0
	}
	var good int64
	pos := int64(0)
	limit := int64(len(out))
	for _, s := range sp {
		end := min(s.Off, limit)
		if pos < end {
			if end > int64(len(orig)) || !bytes.Equal(out[pos:end], orig[pos:end]) {
				t.Errorf("%s: wrong bytes outside spans in [%d,%d) (spans %v, problems %v)", what, pos, end, sp, r.Problems())
				return good
			}
			good += end - pos
		}
		if s.Resync {
			return good
		}
		pos = s.End()
	}
	if pos < limit {
		if limit > int64(len(orig)) || !bytes.Equal(out[pos:], orig[pos:limit]) {
			t.Errorf("%s: wrong bytes after the last span from %d (spans %v, problems %v)", what, pos, sp, r.Problems())
			return good
		}
		good += limit - pos
	}
	return good
}

func TestDamage(t *testing.T) {
	data := testimg.Corpus(t, 3<<20)
	gzs := streams(t, data)
	var stats = map[string][3]int{} // cases, with spans, silent
	for name, gz := range gzs {
		for _, d := range testimg.Damagers {
			var recovered, total int64
			for seed := range uint64(8) {
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
				recovered += check(t, what, data, out, r)
				total += int64(len(data))
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
			t.Logf("%-24s %-18s recovered %5.1f%% intact", name, d.Name, 100*float64(recovered)/float64(max(total, 1)))
		}
	}
	for k, v := range stats {
		t.Logf("%-18s cases %d, with spans %d, checksum mismatch %d", k, v[0], v[1], v[2])
	}
}

// TestResyncNextMember damages the second of three members: the first and
// third must come out intact, the third after a Resync span.
func TestResyncNextMember(t *testing.T) {
	data := testimg.Corpus(t, 1<<20)
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
		check(t, at.name, data, out, r)
		for _, s := range r.Spans() {
			if s.Off < int64(third) {
				t.Errorf("%s: span %v inside the intact first member", at.name, s)
			}
		}
		t.Logf("%s: spans %v problems %v", at.name, r.Spans(), r.Problems())
	}
}

// TestHeldOutputTainted: after a deflate error the output decoded shortly
// before it is reported Tainted, and bytes from well before are not.
func TestHeldOutputTainted(t *testing.T) {
	data := testimg.Corpus(t, 8<<20)
	gz := testimg.Compress(t, data, "gzip", "--rsyncable", "-n")
	bad := append([]byte(nil), gz...)
	p := len(bad) * 3 / 4 &^ 4095
	clear(bad[p : p+4096])
	r, out, err := decode(t, bad, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var tainted bool
	for _, s := range r.Spans() {
		if s.State == damage.Tainted {
			tainted = true
			if s.Off == 0 || s.Len > maxHold {
				t.Errorf("taint %v reaches far back", s)
			}
		}
	}
	if !tainted {
		t.Errorf("no tainted span: %v", r.Spans())
	}
	check(t, "zeroed page", data, out, r)
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

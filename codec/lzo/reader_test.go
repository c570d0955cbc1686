package lzo

import (
	"bytes"
	"errors"
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
func diskData(n int) []byte { return codectest.Disk(11, n) }

// lzopStdin compresses data the way vzdump does: lzop reading a pipe.
func lzopStdin(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testutil.RequireTool(t, "lzop"), append(args, "-c")...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func streams(t *testing.T, data []byte) map[string][]byte {
	half := len(data) / 2
	return map[string][]byte{
		"lzop (stdin)":       lzopStdin(t, data),
		"lzop -9 file":       testimg.Compress(t, data, "lzop", "-9"),
		"lzop -1":            testimg.Compress(t, data, "lzop", "-1"),
		"lzop --crc32":       testimg.Compress(t, data, "lzop", "--crc32"),
		"two files appended": append(testimg.Compress(t, data[:half], "lzop"), testimg.Compress(t, data[half:], "lzop", "-7")...),
	}
}

func TestCleanStreams(t *testing.T) {
	data := diskData(2 << 20)
	s := streams(t, data)
	s["lzop --no-checksum"] = testimg.Compress(t, data, "lzop", "--no-checksum")
	for name, lz := range s {
		for _, strict := range []bool{false, true} {
			r, out, err := decode(t, lz, codec.Options{Strict: strict})
			if err != nil {
				t.Fatalf("%s strict=%v: %v", name, strict, err)
			}
			if !bytes.Equal(out, data) {
				t.Errorf("%s: output differs (%d bytes, want %d)", name, len(out), len(data))
			}
			want := codec.ChecksumOK
			if name == "lzop --no-checksum" {
				want = codec.ChecksumAbsent
			}
			if len(r.Spans()) != 0 || len(r.Problems()) != 0 || r.Checksum() != want {
				t.Errorf("%s: spans %v problems %v checksum %s", name, r.Spans(), r.Problems(), r.Checksum())
			}
		}
	}
}

func TestEdgeStreams(t *testing.T) {
	empty := lzopStdin(t, nil)
	tests := []struct {
		name string
		in   []byte
		sum  codec.Checksum
		err  bool
	}{
		{name: "empty input", err: true},
		{name: "not lzop", in: []byte("hello, world"), err: true},
		{name: "magic only", in: magic[:], sum: codec.ChecksumUnknown},
		{name: "empty file", in: empty, sum: codec.ChecksumOK},
		{name: "zero padding", in: append(append([]byte{}, empty...), make([]byte, 700)...), sum: codec.ChecksumOK},
		{name: "trailing garbage", in: append(append([]byte{}, empty...), "junk"...), sum: codec.ChecksumOK},
		{name: "no end marker", in: empty[:len(empty)-4], sum: codec.ChecksumUnknown},
	}
	for _, tt := range tests {
		r, out, err := decode(t, tt.in, codec.Options{})
		if tt.err {
			if err == nil {
				t.Errorf("%s: no error", tt.name)
			}
			continue
		}
		if err != nil || len(out) != 0 {
			t.Errorf("%s: %v, %d bytes", tt.name, err, len(out))
			continue
		}
		if r.Checksum() != tt.sum {
			t.Errorf("%s: checksum %s, want %s (problems %v)", tt.name, r.Checksum(), tt.sum, r.Problems())
		}
	}
}

// check verifies that every byte outside the spans equals the original:
// at the same offset before the first Resync span, and after it at the
// same offset give or take whole blocks (the Resync span's length is an
// estimate). It returns the number of intact bytes.
func check(t *testing.T, what string, orig, out []byte, r codec.Reader) int64 {
	t.Helper()
	sp := r.Spans()
	var good int64
	pos, shift := int64(0), int64(0)
	segment := func(a, b int64) bool {
		if a >= b {
			return true
		}
		for k := range int64(129) {
			d := (k + 1) / 2 // 0, 1, -1, 2, -2, ...: whole blocks the estimate may be off by
			if k%2 == 0 {
				d = -d
			}
			o := a + shift + d*blockSize
			if d != 0 && shift == 0 && !resynced(sp, a) {
				break
			}
			if o >= 0 && o+(b-a) <= int64(len(orig)) && bytes.Equal(out[a:b], orig[o:o+b-a]) {
				shift += d * blockSize
				good += b - a
				return true
			}
		}
		t.Errorf("%s: wrong bytes outside spans in [%d,%d) (spans %v, problems %v)", what, a, b, sp, r.Problems())
		return false
	}
	for i, s := range sp {
		if i > 0 && s.Off < sp[i-1].End() {
			t.Errorf("%s: spans overlap: %v", what, sp)
		}
		if !segment(pos, min(s.Off, int64(len(out)))) {
			return good
		}
		pos = s.End()
	}
	segment(pos, int64(len(out)))
	return good
}

func resynced(sp []codec.Span, off int64) bool {
	for _, s := range sp {
		if s.Resync && s.Off < off {
			return true
		}
	}
	return false
}

func TestDamage(t *testing.T) {
	data := diskData(3 << 20)
	for name, lz := range streams(t, data) {
		for _, d := range testimg.Damagers {
			var recovered, total int64
			var resyncs int
			for seed := range uint64(8) {
				rng := rand.New(rand.NewPCG(seed, 9))
				bad := d.Do(append([]byte(nil), lz...), rng)
				what := name + "/" + d.Name
				r, out, err := decode(t, bad, codec.Options{})
				if err != nil {
					if len(bad) < len(magic) {
						continue
					}
					t.Errorf("%s seed %d: %v", what, seed, err)
					continue
				}
				recovered += check(t, what, data, out, r)
				total += int64(len(data))
				for _, s := range r.Spans() {
					if s.Resync {
						resyncs++
					}
				}
				if r.Checksum() == codec.ChecksumOK && !bytes.Equal(out, data) {
					t.Errorf("%s seed %d: checksum ok but output differs", what, seed)
				}
				if ps := r.Problems(); d.Name == "truncation" && len(bad) > len(magic) && (len(ps) == 0 || ps[len(ps)-1].Kind != damage.Truncated) {
					t.Errorf("%s seed %d: problems %v, the last not of kind truncated", what, seed, ps)
				}
				if !bytes.Equal(bad, lz) && bytes.Equal(out, data) && len(r.Problems()) == 0 && r.Checksum() != codec.ChecksumOK {
					t.Errorf("%s seed %d: intact output, no problem, checksum %s", what, seed, r.Checksum())
				}
				_, sout, serr := decode(t, bad, codec.Options{Strict: true})
				if serr == nil && !bytes.Equal(sout, data) {
					t.Errorf("%s seed %d: strict mode accepted damaged data", what, seed)
				}
				if serr != nil && !errors.Is(serr, codec.ErrCorrupt) && !errors.Is(serr, codec.ErrTruncated) {
					t.Errorf("%s seed %d: strict error %v", what, seed, serr)
				}
			}
			t.Logf("%-20s %-18s recovered %5.1f%% intact, %d resyncs", name, d.Name, 100*float64(recovered)/float64(max(total, 1)), resyncs)
		}
	}
}

// TestBlockHeaderDamage damages each field of one block header: a damaged
// length is survived through the checksum, a damaged checksum taints
// exactly that block (its bytes are the decoder's best guess, here right).
func TestBlockHeaderDamage(t *testing.T) {
	data := diskData(2 << 20)
	lz := testimg.Compress(t, data, "lzop")
	fh, _ := parseFileHeader(lz)
	lay := layoutOf(fh.flags)
	// The third block's header.
	p := fh.len
	for range 2 {
		h, _ := lay.parseBlockHeader(lz[p:])
		p += h.len + h.srcLen
	}
	third := int64(2 * blockSize)
	tests := []struct {
		name    string
		field   int   // byte offset in the block header
		intact  bool  // every byte survives
		tainted int64 // bytes in spans
	}{
		{"uncompressed length", 1, true, 0},
		{"compressed length", 6, true, 0},
		{"compressed length high", 4, true, 0},
		{"checksum", 9, true, blockSize},
	}
	for _, tt := range tests {
		bad := append([]byte(nil), lz...)
		bad[p+tt.field] ^= 0x10
		r, out, err := decode(t, bad, codec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, tt.name, data, out, r)
		if tt.intact != bytes.Equal(out, data) || len(r.Problems()) == 0 {
			t.Errorf("%s: intact %v, problems %v, spans %v", tt.name, bytes.Equal(out, data), r.Problems(), r.Spans())
		}
		var tainted int64
		for _, s := range r.Spans() {
			if s.State != damage.Tainted || s.Off != third {
				t.Errorf("%s: span %v, want a taint at %d", tt.name, s, third)
			}
			tainted += s.Len
		}
		if tainted != tt.tainted {
			t.Errorf("%s: tainted %d, want %d (spans %v problems %v)", tt.name, tainted, tt.tainted, r.Spans(), r.Problems())
		}
		if len(out) != len(data) {
			t.Errorf("%s: output %d bytes, want %d", tt.name, len(out), len(data))
		}
		t.Logf("%s: spans %v problems %v", tt.name, r.Spans(), r.Problems())
	}
}

// TestFileHeaderDamage: a damaged lzop header is reported, and the blocks
// are still read with lzop's defaults.
func TestFileHeaderDamage(t *testing.T) {
	data := diskData(1 << 20)
	lz := lzopStdin(t, data)
	for _, at := range []int{10, 16, 20} { // version, method, flags
		bad := append([]byte(nil), lz...)
		bad[at] ^= 0x04
		r, out, err := decode(t, bad, codec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) || len(r.Problems()) == 0 {
			t.Errorf("byte %d: intact %v, problems %v", at, bytes.Equal(out, data), r.Problems())
		}
		if _, _, err := decode(t, bad, codec.Options{Strict: true}); !errors.Is(err, codec.ErrCorrupt) {
			t.Errorf("byte %d: strict: %v", at, err)
		}
	}
}

// TestLzopAgrees: what lzop -t rejects, we report.
func TestLzopAgrees(t *testing.T) {
	data := diskData(1 << 20)
	lz := lzopStdin(t, data)
	dir := t.TempDir()
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 3))
		bad := testimg.Damagers[1].Do(append([]byte(nil), lz...), rng)
		f := dir + "/x.lzo"
		if err := os.WriteFile(f, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		lzopOK := exec.Command(testutil.RequireTool(t, "lzop"), "-t", "-q", f).Run() == nil
		r, _, err := decode(t, bad, codec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ours := len(r.Problems()) == 0
		if lzopOK != ours {
			t.Errorf("seed %d: lzop -t ok %v, we ok %v (%v)", seed, lzopOK, ours, r.Problems())
		}
	}
}

package zstd

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// failFastRead reads src with the FailFast decoder.
func failFastRead(src []byte) ([]byte, codec.Checksum, error) {
	z, err := NewReader(bytes.NewReader(src), codec.Options{Strict: true, FailFast: true})
	if err != nil {
		return nil, "", err
	}
	if _, ok := z.(*failFast); !ok {
		return nil, "", errors.New("NewReader did not return the FailFast decoder")
	}
	// (payload reads it without a ReadAhead of its own; the full
	// decoder, whose salvage runs on its reader's goroutine, gets one)
	if _, ok := z.(codec.SelfAhead); !ok {
		return nil, "", errors.New("the FailFast decoder is not a codec.SelfAhead")
	}
	out, err := io.ReadAll(z)
	sum := z.Checksum()
	z.(io.Closer).Close()
	return out, sum, err
}

// agree checks the FailFast decoder against the full one on src: when it
// accepts src, the full decoder (salvaging) finds nothing wrong and gives
// the same bytes, with the checksum verified; when it fails, it says so
// with ErrCorrupt or ErrTruncated. It reports whether it accepted.
func agree(t testing.TB, name string, src []byte) bool {
	t.Helper()
	out, sum, err := failFastRead(src)
	if err != nil {
		if !errors.Is(err, codec.ErrCorrupt) && !errors.Is(err, codec.ErrTruncated) {
			t.Errorf("%s: FailFast error %v, want ErrCorrupt or ErrTruncated", name, err)
		}
		return false
	}
	full := decode(src, codec.Options{}, config{})
	if sum != codec.ChecksumOK || full.err != nil || full.problems > 0 || len(full.spans) > 0 || full.sum != codec.ChecksumOK || !bytes.Equal(out, full.out) {
		t.Errorf("%s: FailFast accepted %d bytes (checksum %s); the full decoder: err %v, %d problems, %d spans, checksum %s, %d bytes, equal %v",
			name, len(out), sum, full.err, full.problems, len(full.spans), full.sum, len(full.out), bytes.Equal(out, full.out))
	}
	return true
}

// TestFailFast: the FailFast decoder reads clean streams made by the zstd
// CLI (one frame, several frames, skippable frames between), and refuses,
// as the full decoder's strict mode does, damaged ones: cut anywhere, a
// byte changed in headers or contents, bytes after the last frame; and one
// without a checksum (which the full decoder reads, saying it has none).
func TestFailFast(t *testing.T) {
	arc := archive(t)
	if !agree(t, "archive", arc) {
		t.Fatal("the pinned archive is refused")
	}
	full, err := NewReader(bytes.NewReader(arc), codec.Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := full.(codec.SelfAhead); ok {
		t.Fatal("the full decoder (its salvage runs on its reader's goroutine) is a codec.SelfAhead")
	}
	full.(io.Closer).Close()
	st := archiveST(t)
	skippable := []byte{0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	multi := append(append(append([]byte(nil), st...), skippable...), smallStream(t)...)
	if !agree(t, "frames", multi) {
		t.Fatal("two frames with a skippable one between are refused")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	accepted := 0
	for i := 0; i < 60; i++ {
		b := bytes.Clone(st)
		var name string
		switch i % 4 {
		case 0:
			b = b[:rng.IntN(len(b))]
			name = "cut"
		case 1:
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			name = "byte"
		case 2:
			b[rng.IntN(min(len(b), 64))] ^= byte(1 << rng.IntN(8)) // headers
			name = "header"
		default:
			b = append(b, make([]byte, 1+rng.IntN(8))...)
			b[len(b)-1] = byte(rng.Uint32())
			name = "trailing"
		}
		if agree(t, name, b) {
			accepted++
		}
	}
	if accepted > 0 {
		t.Errorf("%d damaged streams of 60 accepted", accepted)
	}
	noCheck := zstdCLI(t, vmaData(t)[:256<<10], "--no-check")
	if out, _, err := failFastRead(noCheck); err == nil {
		t.Errorf("a stream without checksum read (%d bytes)", len(out))
	}
}

// TestFailFastGolden: zstd's golden frames, valid and invalid.
func TestFailFastGolden(t *testing.T) {
	dir := testutil.Fixture(t, "zstd-golden")
	files, _ := filepath.Glob(filepath.Join(dir, "*.zst"))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		agree(t, filepath.Base(f), src)
	}
}

// FuzzFailFast: whatever the input, the FailFast decoder accepts it only
// if the full decoder finds nothing wrong and gives the same bytes.
func FuzzFailFast(f *testing.F) {
	f.Add(smallStream(f))
	if files, err := filepath.Glob("../../../shared/fixtures/zstd-golden/*.zst"); err == nil {
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { agree(t, "input", data) })
}

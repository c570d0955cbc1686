package zstd

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestGolden decodes zstd's own edge-case frames: the valid ones must
// decode, the invalid ones must fail in strict mode and be reported
// damaged in salvage mode.
func TestGolden(t *testing.T) {
	dir := testutil.Fixture(t, "zstd-golden")
	// Expected output of the valid frames (from the frames' own content:
	// 131068 literal zero bytes; nothing; 1 MiB of zeros from RLE blocks;
	// "Hello World!\n").
	want := map[string][]byte{
		"golden-decompression--block-128k.zst":      make([]byte, 131068),
		"golden-decompression--empty-block.zst":     {},
		"golden-decompression--rle-first-block.zst": make([]byte, 1<<20),
		"golden-decompression--zeroSeq_2B.zst":      []byte("Hello World!\n"),
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.zst"))
	if len(files) != 7 {
		t.Fatalf("found %d golden frames, want 7", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		valid := !strings.Contains(name, "errors")
		for _, strict := range []bool{true, false} {
			z, _ := NewReader(bytes.NewReader(src), codec.Options{Strict: strict})
			out, err := io.ReadAll(z)
			damaged := len(z.Problems()) > 0 || len(z.Spans()) > 0 || z.Checksum() == codec.ChecksumMismatch
			switch {
			case valid && (err != nil || damaged || !bytes.Equal(out, want[name])):
				t.Errorf("%s strict=%v: err %v, problems %v, %d bytes, equal %v", name, strict, err, z.Problems(), len(out), bytes.Equal(out, want[name]))
			case !valid && strict && !errors.Is(err, codec.ErrCorrupt) && !errors.Is(err, codec.ErrTruncated):
				t.Errorf("%s strict: err %v, want ErrCorrupt", name, err)
			case !valid && !strict && (err != nil || !damaged):
				t.Errorf("%s salvage: err %v, not reported damaged", name, err)
			}
			if !valid && !strict {
				t.Logf("%s: %v", name, z.Problems())
			}
		}
	}
}

// TestWindowLimit refuses frames whose window exceeds MaxWindow.
func TestWindowLimit(t *testing.T) {
	// Frame header: magic, descriptor 0 (window descriptor present), window
	// exponent 19 -> 512 MiB.
	src := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 19 << 3, 0x01, 0x00, 0x00}
	for _, strict := range []bool{true, false} {
		z, _ := NewReader(bytes.NewReader(src), codec.Options{Strict: strict})
		if _, err := io.ReadAll(z); err == nil || !strings.Contains(err.Error(), "256 MiB") {
			t.Errorf("strict=%v: err %v, want the window limit", strict, err)
		}
	}
}

// TestSilentFlip: a flip in raw literal bytes is invisible to the decoder;
// only the checksum can tell, and no span may be invented.
func TestSilentFlip(t *testing.T) {
	orig, c := vmaData(t)[:stPrefix], archiveST(t)
	ref := newRefMap(t, c, orig)
	for _, b := range ref.blocks {
		bh := parseBlockHeader(c[b.In:])
		if bh.typ != blockRaw {
			continue
		}
		d := append([]byte(nil), c...)
		d[b.In+3+int64(bh.clen)/2] ^= 4
		got := decode(d, codec.Options{}, config{})
		if got.err != nil || len(got.spans) != 0 || got.sum != codec.ChecksumMismatch {
			t.Fatalf("err %v, spans %v, checksum %s; want no span and a mismatch", got.err, got.spans, got.sum)
		}
		return
	}
	t.Fatal("no raw block in the data")
}

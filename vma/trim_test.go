package vma_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/zstd"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/vma"
)

// retained is what a read of a damaged stream kept at most, and what it
// passed in all.
type retained struct {
	codecSpans int // the decoder's spans (codec.Trimmer): those ahead of the reader, and a few behind
	reader     int // the VMA reader's own items (Reader.Retained)
	passed     int // the spans Options.Spans saw: all there were
	damaged    int // garbage runs written
}

// readDamaged makes the VMA stream of a disk of mib MiB (testimg.DiskData),
// compresses it with the zstd CLI as vzdump does, writes a 4 KiB garbage
// run every 192 KiB of the archive, and reads it with the VMA reader over
// the zstd decoder, counting what both keep after every cluster. With
// check, it reads it again without trimming and compares the accounts.
func readDamaged(t *testing.T, mib int, check bool) retained {
	disk := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(disk, testimg.DiskData(mib<<20, 5), 0o600); err != nil {
		t.Fatal(err)
	}
	var s bytes.Buffer
	if _, err := testimg.WriteVMA(&s, []testimg.Disk{{Name: "drive-scsi0", Path: disk}}, nil, 1); err != nil {
		t.Fatal(err)
	}
	arc := testimg.Compress(t, s.Bytes(), "zstd", "-q", "--threads=1")
	var out retained
	g := rand.New(rand.NewPCG(uint64(mib), 9))
	for p := 64 << 10; p+4096 < len(arc); p += 192 << 10 {
		for i := p; i < p+4096; i++ {
			arc[i] = byte(g.Uint32())
		}
		out.damaged++
	}
	dec, err := zstd.NewReader(bytes.NewReader(arc), codec.Options{Coarse: true})
	if err != nil {
		t.Fatal(err)
	}
	var spans []codec.Span
	vr, err := vma.NewReader(dec, vma.Options{Salvage: true, Spans: func(s codec.Span) { spans = append(spans, s) }})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := vr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sp := dec.Spans()
		dead := 0
		for _, s := range sp {
			if codec.Dead(s, vr.Passed()) {
				dead++
			}
		}
		if dead > max(63, (len(sp)-dead)/4) {
			t.Fatalf("the decoder keeps %d spans the reader passed, and %d it did not", dead, len(sp)-dead)
		}
		if a := vr.Ahead(); a > maxAhead {
			t.Fatalf("the reader buffers %d bytes past the spans it passed", a)
		}
		out.codecSpans = max(out.codecSpans, len(dec.Spans()))
		out.reader = max(out.reader, vr.Retained())
	}
	out.passed = len(spans)
	if check {
		// the same read without trimming: the same spans, the same account
		dec, _ := zstd.NewReader(bytes.NewReader(arc), codec.Options{Coarse: true})
		var all []codec.Span
		ref := readAll(t, untrimmed{dec.(resizer)}, func(s codec.Span) { all = append(all, s) })
		if !reflect.DeepEqual(spans, all) || !reflect.DeepEqual(vr.Result(), ref) {
			t.Fatalf("trimming changed the account: %d spans, %d without", len(spans), len(all))
		}
		if fin := dec.Spans(); !reflect.DeepEqual(all, fin) {
			for i := range min(len(all), len(fin)) {
				if all[i] != fin[i] {
					t.Logf("%d: %+v %+v", i, all[i], fin[i])
					break
				}
			}
			t.Fatalf("Options.Spans did not see the decoder's final spans: %d, %d: %+v %+v", len(all), len(fin), all[len(all)-2:], fin[len(fin)-2:])
		}
	}
	return out
}

// resizer is a decoder that resizes (a zstd Reader).
type resizer interface {
	codec.Reader
	codec.Resizer
}

// untrimmed hides a decoder's TrimSpans.
type untrimmed struct{ resizer }

func readAll(t *testing.T, dec codec.Reader, spans func(codec.Span)) *vma.Result {
	vr, err := vma.NewReader(dec, vma.Options{Salvage: true, Spans: spans})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := vr.Next()
		if errors.Is(err, io.EOF) {
			return vr.Result()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestRetainedBounded: reading a long damaged stream, the decoder keeps
// only the spans ahead of the VMA reader, in what the reader buffers
// (at most maxAhead bytes: an extent broken by a loss makes it look up to
// 16 MiB on for the next header), and at most a quarter as many (or 63)
// behind it; the reader folds what it consulted into a few numbers.
// Neither grows with the stream's length or its number of damaged places:
// a stream four times as long, with four times the damaged places, passes
// four times the spans and keeps a fraction of them.
func TestRetainedBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	a, b := readDamaged(t, 24, true), readDamaged(t, 96, false)
	t.Logf("24 MiB disk: %+v; 96 MiB: %+v", a, b)
	if b.passed < 3*a.passed {
		t.Fatalf("the longer stream passed %d spans, the shorter %d: the test does not make the spans grow", b.passed, a.passed)
	}
	for _, r := range []retained{a, b} {
		if r.reader > maxRetainedReader {
			t.Errorf("kept %d items in the reader, want at most %d", r.reader, maxRetainedReader)
		}
	}
	if b.codecSpans > b.passed/3 {
		t.Errorf("kept %d of %d spans in the decoder", b.codecSpans, b.passed)
	}
}

// maxAhead bounds what the VMA reader buffers past the spans it passed
// (maxTailWiden, an extent and the room it searches).
const maxAhead = 32 << 20

// maxRetainedReader bounds the VMA reader's own items (measured: 11).
const maxRetainedReader = 100

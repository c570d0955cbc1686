package extract

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
)

func TestSubtract(t *testing.T) {
	r := func(off, n int64) damage.Range { return damage.Range{Off: off, Len: n} }
	for _, tc := range []struct {
		a, b, want []damage.Range
	}{
		{[]damage.Range{r(0, 10)}, nil, []damage.Range{r(0, 10)}},
		{[]damage.Range{r(0, 10)}, []damage.Range{r(0, 10)}, nil},
		{[]damage.Range{r(0, 10)}, []damage.Range{r(2, 3)}, []damage.Range{r(0, 2), r(5, 5)}},
		{[]damage.Range{r(0, 10), r(20, 10)}, []damage.Range{r(5, 20)}, []damage.Range{r(0, 5), r(25, 5)}},
		{[]damage.Range{r(10, 10)}, []damage.Range{r(0, 5), r(12, 2), r(16, 1), r(30, 5)}, []damage.Range{r(10, 2), r(14, 2), r(17, 3)}},
	} {
		if got := subtract(tc.a, tc.b); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("subtract(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestChangeLogUndoRedo(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	orig := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	if err := os.WriteFile(img, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := NewChangeLog(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.open(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		off int64
		p   []byte
	}{{100, []byte("XXXX")}, {102, []byte("YYYYYY")}, {0, orig[:16]}, {16000, bytes.Repeat([]byte{0}, 384)}} {
		if err := l.write(f, w.p, w.off); err != nil {
			t.Fatal(err)
		}
	}
	want := append([]byte(nil), orig...)
	copy(want[100:], "XXYYYYYY")
	clear(want[16000:])
	if n, _ := l.Changes(); n != 3 {
		t.Errorf("%d changes logged, want 3 (a write of the bytes already there is none)", n)
	}
	read := func() []byte { b, _ := os.ReadFile(img); return b }
	if !bytes.Equal(read(), want) {
		t.Fatal("writes not applied")
	}
	if err := l.Undo(); err != nil || !bytes.Equal(read(), orig) {
		t.Fatalf("undo: %v", err)
	}
	if err := l.Redo(); err != nil || !bytes.Equal(read(), want) {
		t.Fatalf("redo: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
		t.Errorf("the log file was left behind")
	}
}

// TestOverlay reads the clean archive in place over the images a damaged
// copy of it gave (the output before its first damaged span is the same;
// a truncation has none, so nothing is skipped there): the images
// become those of a fresh read of the clean archive, byte for byte,
// without writing again what lies before the damage; undone, they are the
// damaged read's again, and redone the clean read's.
func TestOverlay(t *testing.T) {
	_, dir, arc, clean := realZstdArchive(t)
	fresh, err := Extract(arc, filepath.Join(dir, "fresh"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	blocks := zstdBlocks(t, clean)
	for i, tc := range []struct {
		name  string
		apply func(b []byte, rng *rand.Rand) []byte
	}{
		{"64 KiB garbage run at 30%", func(b []byte, rng *rand.Rand) []byte {
			p := len(b) * 3 / 10
			rng.Read(b[p : p+65536])
			return b
		}},
		{"damaged block header at 60%", func(b []byte, rng *rand.Rand) []byte {
			p := blocks[len(blocks)*6/10]
			b[p], b[p+1], b[p+2] = 0xff, 0xff, 0xff
			return b
		}},
		{"truncated at 70%", func(b []byte, rng *rand.Rand) []byte { return b[:len(b)*7/10] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			bad := filepath.Join(tmp, "bad", filepath.Base(arc))
			os.Mkdir(filepath.Dir(bad), 0o755)
			if err := os.WriteFile(bad, tc.apply(append([]byte(nil), clean...), rand.New(rand.NewSource(int64(i)))), 0o644); err != nil {
				t.Fatal(err)
			}
			first, err := Extract(bad, filepath.Join(tmp, "first"), Options{Map: true})
			if err != nil {
				t.Fatal(err)
			}
			before := map[string][]byte{}
			for name, p := range first.Images {
				before[name], _ = os.ReadFile(p)
			}
			from := max(first.Map.First(), 0)
			log, err := NewChangeLog(filepath.Join(tmp, "log"))
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			// in the first case the root disk has no image to write over:
			// a fresh one gets every cluster, those before the damage too
			notOver := ""
			if i == 0 {
				notOver = "drive-scsi0"
			}
			images := map[string]string{}
			for name, p := range first.Images {
				if name != notOver {
					images[name] = p
				}
			}
			over := &Overlay{Images: images, Written: first.Written, From: from, Log: log}
			res, err := Extract(arc, filepath.Join(tmp, "again"), Options{Overlay: over})
			if err != nil {
				t.Fatal(err)
			}
			n, changed := log.Changes()
			t.Logf("from stream offset %d: %d bytes not written again, %d changes (%d bytes)", from, over.Skipped, n, changed)
			if from > 0 && over.Skipped == 0 || n == 0 && notOver == "" {
				t.Errorf("nothing skipped or nothing changed")
			}
			same := func(what string, want map[string][]byte) {
				t.Helper()
				for name, p := range first.Images {
					w := want[name]
					switch {
					case name == notOver && what == "in place":
						p = res.Images[name]
					case name == notOver:
						w = before[name] // not written over
					case res.Images[name] != p:
						t.Errorf("%s: read into %s, not in place", name, res.Images[name])
					}
					got, _ := os.ReadFile(p)
					if !bytes.Equal(got, w) {
						t.Errorf("%s: %s: the image differs", what, name)
					}
				}
			}
			want := map[string][]byte{}
			for name, p := range fresh.Images {
				want[name], _ = os.ReadFile(p)
			}
			same("in place", want)
			if err := log.Undo(); err != nil {
				t.Fatal(err)
			}
			same("undone", before)
			if err := log.Redo(); err != nil {
				t.Fatal(err)
			}
			same("redone", want)
			if i > 0 {
				return
			}
			// too many write ranges to compare: the read fails, and
			// undone its changes leave the first images
			if err := log.Undo(); err != nil {
				t.Fatal(err)
			}
			defer func(n int) { maxWrites = n }(maxWrites)
			maxWrites = 3
			log2, err := NewChangeLog(filepath.Join(tmp, "log2"))
			if err != nil {
				t.Fatal(err)
			}
			defer log2.Close()
			over = &Overlay{Images: first.Images, Written: first.Written, From: from, Log: log2}
			if _, err := Extract(arc, filepath.Join(tmp, "budget"), Options{Overlay: over}); !errors.Is(err, ErrOverlayWrites) {
				t.Fatalf("over the budget: %v", err)
			}
			if err := log2.Undo(); err != nil {
				t.Fatal(err)
			}
			same("over the budget, undone", before)
		})
	}
}

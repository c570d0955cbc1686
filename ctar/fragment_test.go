package ctar

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestFragments: where the headers after a loss fail (they copied the
// lost bytes), the runs of content the decoder vouches for come back as
// fragments with exactly the stream's bytes: a member's content whole
// when only its header and padding are damaged, its own trailing zeros
// left out with the padding when that decoded untainted (the ambiguity a
// fragment's report states), and nothing for short or all-zero runs. In
// an archive without decoder damage (garbage in a plain tar), none.
func TestFragments(t *testing.T) {
	tarBin := testutil.RequireTool(t, "tar")
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(5))
	text := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(rng.Intn(26))
		}
		return b
	}
	files := map[string][]byte{
		"a.txt": text(1000),
		"b.bin": append(text(600), make([]byte, 100)...),
		"c.txt": text(50),
		"d.txt": text(2048),
		"e.bin": make([]byte, 300),
	}
	names := []string{"a.txt", "b.bin", "c.txt", "d.txt", "e.bin"}
	for n, b := range files {
		must(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
	}
	arc := filepath.Join(dir, "x.tar")
	var args []string
	for _, n := range names {
		args = append(args, "./"+n) // as vzdump's tar names them
	}
	testutil.Run(t, tarBin, append([]string{"cf", arc, "--format=gnu", "-C", dir}, args...)...)
	clean, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	x, err := Scan(codec.Plain(bytes.NewReader(clean)), Options{})
	if err != nil || len(x.Members) != len(names) {
		t.Fatalf("%v %d members", err, len(x.Members))
	}

	// the decoder lost a.txt's header; every later header failed its
	// checksum, and with the padding after each content (b.bin's aside)
	// and the end blocks it is tainted, but for the start of c.txt's name
	// (after b.bin's padding: the run ends before it)
	b := bytes.Clone(clean)
	var dm damage.Map
	dm.Add(0, int64(len(b)), damage.Tainted)
	dm.Set(0, BlockSize, damage.Lost)
	for i, m := range x.Members {
		copy(b[m.HeaderOff+100:m.HeaderOff+200], bytes.Repeat([]byte{'X'}, 100))
		end := m.HeaderEnd + m.Size
		if i == 1 {
			end = m.HeaderEnd + pad(m.Size) + 64
		}
		dm.Clear(m.HeaderEnd, end-m.HeaderEnd)
	}
	var spans []codec.Span
	for _, r := range dm.Ranges() {
		spans = append(spans, codec.Span{Off: r.Off, Len: r.Len, MaxLen: -1, State: r.State})
	}
	var streamed []Fragment
	bufs := map[int64][]byte{}
	y, err := Scan(&spanReader{Reader: bytes.NewReader(b), spans: spans}, Options{
		Fragment: func(start int64, p []byte, off int64) error {
			if int64(len(bufs[start])) != off {
				t.Errorf("fragment %d: bytes at %d after %d", start, off, len(bufs[start]))
			}
			bufs[start] = append(bufs[start], p...)
			return nil
		},
		FragmentEnd: func(fr Fragment, keep bool) error {
			if keep {
				streamed = append(streamed, fr)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := x.Members
	want := []Fragment{
		{Off: m[0].HeaderEnd, Size: 1000},
		{Off: m[1].HeaderEnd, Size: 600, Trimmed: 424}, // its 100 zeros went with the padding
		{Off: m[3].HeaderEnd, Size: 2048},
	}
	if !slices.Equal(y.Fragments, want) || !slices.Equal(streamed, want) {
		t.Errorf("fragments %+v (streamed %+v), want %+v", y.Fragments, streamed, want)
	}
	for _, fr := range want {
		if got := bufs[fr.Off]; !bytes.Equal(got[:min(int64(len(got)), fr.Size)], clean[fr.Off:fr.Off+fr.Size]) {
			t.Errorf("fragment at %d: not the stream's bytes", fr.Off)
		}
	}
	if len(y.Members) != 0 {
		t.Errorf("%d members found among damaged headers", len(y.Members))
	}

	// garbage in a plain tar: the decoder vouches for it, no fragment
	g := bytes.Clone(clean)
	copy(g[m[1].HeaderOff+100:m[1].HeaderOff+200], bytes.Repeat([]byte{'X'}, 100))
	z, err := Scan(codec.Plain(bytes.NewReader(g)), Options{})
	if err != nil || len(z.Fragments) != 0 || len(z.Gaps) == 0 {
		t.Errorf("plain tar with garbage: %v, fragments %+v, gaps %+v", err, z.Fragments, z.Gaps)
	}
}

package gzip

import (
	"bytes"
	"compress/flate"
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec/codectest"
)

// inflateAll decodes a raw deflate stream with the inflater.
func inflateAll(t testing.TB, comp []byte) ([]byte, error) {
	in := &input{src: bytes.NewReader(comp)}
	h := newHistory(1 << 20)
	f := &inflater{in: in, h: h}
	if err := f.startAt(0); err != nil {
		return nil, err
	}
	var out []byte
	for {
		h.reserve(64<<10 + maxMatch)
		ev, err := f.step(h.pos() + 64<<10)
		out = append(out, h.buf[h.r:h.w]...)
		h.r = h.w
		if err != nil || ev == evEnd {
			return out, err
		}
	}
}

func TestInflate(t *testing.T) {
	data := codectest.Disk(3, 3<<20)
	rng := rand.New(rand.NewPCG(1, 1))
	small := make([]byte, 1000)
	for i := range small {
		small[i] = byte(rng.IntN(4))
	}
	for _, d := range [][]byte{nil, []byte("a"), small, data} {
		for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, 1, 6, 9} {
			var b bytes.Buffer
			w, _ := flate.NewWriter(&b, level)
			w.Write(d[:len(d)/2])
			w.Flush()
			w.Write(d[len(d)/2:])
			w.Close()
			out, err := inflateAll(t, b.Bytes())
			if err != nil || !bytes.Equal(out, d) {
				t.Fatalf("level %d, %d bytes: %v, output %d bytes, equal %v", level, len(d), err, len(out), bytes.Equal(out, d))
			}
		}
	}
}

// TestHistoryKeepsWindow: however much output was returned and slid out,
// the window before the first byte not returned stays, so that output
// dropped back to there still has a window behind it.
func TestHistoryKeepsWindow(t *testing.T) {
	h := newHistory(1 << 20)
	for range 20 {
		h.reserve(300 << 10)
		h.w += 300 << 10
		h.r = h.w - 100
	}
	h.truncate(h.base + int64(h.r))
	if h.w < window {
		t.Fatalf("%d bytes before the write position", h.w)
	}
}

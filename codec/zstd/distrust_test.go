package zstd

import (
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// TestDistrust: garbage inside a raw block decodes without an error and
// only the checksum notices it; with its input range distrusted, the
// block's output (and what copies it) is tainted, and every wrong byte
// lies in a span.
func TestDistrust(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 4<<20)
	for p := 0; p < len(data); p += 128 << 10 {
		run := data[p : p+128<<10]
		if rng.IntN(2) == 0 {
			for i := range run {
				run[i] = byte(rng.Uint32())
			}
		} else {
			for i := range run {
				run[i] = "abcdefgh"[rng.IntN(8)]
			}
		}
	}
	clean := zstdCLI(t, data)
	var raw []int64
	fh, err := parseFrameHeader(clean)
	if err != nil {
		t.Fatal(err)
	}
	for pos := int64(fh.size); ; {
		bh := parseBlockHeader(clean[pos:])
		if bh.typ == blockRaw && bh.clen >= 64<<10 {
			raw = append(raw, pos)
		}
		pos += 3 + int64(bh.clen)
		if bh.last {
			break
		}
	}
	if len(raw) == 0 {
		t.Skip("no raw block")
	}
	bad := append([]byte(nil), clean...)
	at := raw[len(raw)/2] + 1000
	for i := at; i < at+4096; i++ {
		bad[i] = byte(rng.Uint32())
	}
	plain := decode(bad, codec.Options{}, config{})
	if len(plain.spans) != 0 || plain.sum != codec.ChecksumMismatch {
		t.Fatalf("garbage in a raw block was not silent: %d spans, checksum %s", len(plain.spans), plain.sum)
	}
	d := decode(bad, codec.Options{Distrust: []damage.Range{{Off: at, Len: 4096}}}, config{})
	if len(d.spans) == 0 || len(d.out) != len(data) {
		t.Fatalf("distrusted block not tainted: %d spans, %d bytes", len(d.spans), len(d.out))
	}
	var tainted int64
	for _, s := range d.spans {
		tainted += s.Len
	}
	wrong := 0
	for i := range data {
		if d.out[i] == data[i] {
			continue
		}
		in := false
		for _, s := range d.spans {
			in = in || s.Off <= int64(i) && int64(i) < s.End()
		}
		if !in {
			wrong++
		}
	}
	t.Logf("%d bytes tainted in %d spans", tainted, len(d.spans))
	if wrong > 0 {
		t.Errorf("%d wrong bytes outside the spans", wrong)
	}
}

package protect

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// TestEncoderMatchesOneChunkAtATime: the encoder's chunk hashes and parity
// (columns added in groups) are those of the layout's definition, each
// chunk added to its stripe's parity on its own, for files of one segment
// and of several, a short last segment, columns past the file's end, and
// writes of every size.
func TestEncoderMatchesOneChunkAtATime(t *testing.T) {
	def, err := ParityFor(DefaultOverhead)
	if err != nil {
		t.Fatal(err)
	}
	small := Parity{Code: codeName, DataShards: 20, ParityShards: 3, ShardSize: 64, Stripes: 40, MinStripes: 4}
	g := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		p    Parity
		size int64
	}{
		{def, 1}, {def, 4096}, {def, 5<<20 + 123}, {def, 40<<20 + 4096*7},
		{small, 1}, {small, 64 * 20 * 40}, {small, 3*64*20*40 + 1000}, {small, 2*64*20*40 - 64}, {small, 64*20*40 + 64*4*13 + 5},
	} {
		data := make([]byte, c.size)
		for i := range data {
			data[i] = byte(g.Uint32())
		}
		type seg struct {
			hashes []uint64
			parity []byte
		}
		var got []seg
		enc, err := newEncoder(c.p, c.size, func(s segment, hs []uint64, par []byte) error {
			got = append(got, seg{append([]uint64(nil), hs...), bytes.Clone(par)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for b := data; len(b) > 0; {
			n := min(len(b), 1+g.IntN(3*c.p.ShardSize*c.p.Stripes))
			if g.IntN(4) == 0 {
				n = min(len(b), 1+g.IntN(100))
			}
			enc.Write(b[:n])
			b = b[n:]
		}
		if enc.err != nil || !enc.done() {
			t.Fatalf("%d bytes: err %v, done %v", c.size, enc.err, enc.done())
		}
		if n := c.p.segments(c.size); int64(len(got)) != n {
			t.Fatalf("%d bytes: %d segments, want %d", c.size, len(got), n)
		}
		rs, err := newRS(c.p.DataShards, c.p.ParityShards)
		if err != nil {
			t.Fatal(err)
		}
		for i, sg := range got {
			s := c.p.segment(c.size, int64(i))
			S := c.p.ShardSize
			parity := make([]byte, c.p.parityLen(s))
			rows := make([][]byte, c.p.ParityShards)
			for j := 0; j < s.shards; j++ {
				chunk := make([]byte, S)
				n := copy(chunk, data[s.start+int64(j*S):s.start+min(s.length, int64((j+1)*S))])
				if h := xxhash.Sum64(chunk[:n]); sg.hashes[j] != h {
					t.Fatalf("%d bytes: segment %d chunk %d: hash %x, want %x", c.size, i, j, sg.hashes[j], h)
				}
				col, st := j/s.stripes, j%s.stripes
				for r := range rows {
					rows[r] = parity[(r*s.stripes+st)*S : (r*s.stripes+st+1)*S]
				}
				if err := rs.EncodeIdx(chunk, col, rows); err != nil {
					t.Fatal(err)
				}
			}
			if len(sg.hashes) != s.shards {
				t.Fatalf("%d bytes: segment %d: %d chunk hashes, want %d", c.size, i, len(sg.hashes), s.shards)
			}
			if !bytes.Equal(sg.parity, parity) {
				t.Fatalf("%d bytes: segment %d: parity differs", c.size, i)
			}
		}
	}
}

// BenchmarkEncoder: chunk hashes and parity of 256 MiB at the default
// layout, written in 256 KiB pieces as protect's read-ahead does.
func BenchmarkEncoder(b *testing.B) {
	p, err := ParityFor(DefaultOverhead)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 256<<20)
	g := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(g.Uint32())
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		enc, err := newEncoder(p, int64(len(data)), func(segment, []uint64, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		for o := 0; o < len(data); o += 256 << 10 {
			enc.Write(data[o : o+256<<10])
		}
		if !enc.done() {
			b.Fatal("not done")
		}
	}
}

package protect

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// TestEncoderMatchesOneChunkAtATime: the encoder's chunk hashes and parity
// (columns added in groups) are those of the layout's definition, each
// chunk added to its stripe's parity on its own, for files of one segment
// and of several, a short last segment, columns past the file's end, and
// writes of every size; both when the bytes are written (copied) and when
// they are read into the buffers it lends, as protect's read-ahead does
// (on goroutines of their own, given back in any order), and when a
// lent read stops short and Write gives the rest.
func TestEncoderMatchesOneChunkAtATime(t *testing.T) {
	def, err := ParityFor(DefaultOverhead)
	if err != nil {
		t.Fatal(err)
	}
	small := Parity{Code: codeName, DataShards: 20, ParityShards: 3, ShardSize: 64, Stripes: 40, MinStripes: 4}
	g := rand.New(rand.NewPCG(3, 4))
	for _, mode := range []string{"write", "held", "held+write"} {
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
			var got []encodedSegment
			enc, err := newEncoder(c.p, c.size, func(s segment, hs []uint64, par []byte) error {
				got = append(got, encodedSegment{append([]uint64(nil), hs...), bytes.Clone(par)})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			maxPiece := 3 * c.p.ShardSize * c.p.Stripes
			switch mode {
			case "write":
				writeRandom(enc, data, maxPiece, g)
			case "held":
				if n := lendRandom(enc, data, maxPiece, g.Uint64()); n != len(data) {
					t.Fatalf("%s, %d bytes: %d held", mode, c.size, n)
				}
			case "held+write":
				cut := g.IntN(len(data) + 1)
				n := lendRandom(enc, data[:cut], maxPiece, g.Uint64())
				writeRandom(enc, data[n:], maxPiece, g)
			}
			enc.free()
			if enc.err != nil || !enc.done() {
				t.Fatalf("%s, %d bytes: err %v, done %v", mode, c.size, enc.err, enc.done())
			}
			checkEncoded(t, fmt.Sprintf("%s, %d bytes", mode, c.size), c.p, data, got)
		}
	}
}

type encodedSegment struct {
	hashes []uint64
	parity []byte
}

// writeRandom writes data to enc in pieces of random sizes.
func writeRandom(enc *encoder, data []byte, maxPiece int, g *rand.Rand) {
	for b := data; len(b) > 0; {
		n := min(len(b), 1+g.IntN(maxPiece))
		if g.IntN(4) == 0 {
			n = min(len(b), 1+g.IntN(100))
		}
		enc.Write(b[:n])
		b = b[n:]
	}
}

// lendRandom reads data into the buffers enc lends, as archive's
// read-ahead does: pieces of random sizes handed to Hold on a goroutine
// of its own, and given back once both Hold and a "decoder" goroutine
// (which takes its time now and then) are done with them. It returns the
// bytes held: all of data, or fewer when it ends in a short read.
func lendRandom(enc *encoder, data []byte, maxPiece int, seed uint64) int {
	type piece struct {
		b       []byte
		release func()
		refs    *atomic.Int32
	}
	done := func(p piece) {
		if p.refs.Add(-1) == 0 {
			p.release()
		}
	}
	hold, dec := make(chan piece, 64), make(chan piece, 4)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for p := range hold {
			enc.Hold(p.b)
			done(p)
		}
	}()
	go func() {
		defer wg.Done()
		g := rand.New(rand.NewPCG(seed, 2))
		for p := range dec {
			if g.IntN(8) == 0 {
				time.Sleep(time.Duration(g.IntN(200)) * time.Microsecond)
			}
			done(p)
		}
	}()
	g := rand.New(rand.NewPCG(seed, 1))
	stop := make(chan struct{})
	off := 0
	for {
		b, release := enc.Buffer(1+g.IntN(maxPiece), stop)
		n := copy(b, data[off:])
		off += n
		p := piece{b[:n], release, new(atomic.Int32)}
		p.refs.Store(1)
		if n > 0 {
			p.refs.Add(1)
			hold <- p
		}
		dec <- p
		if n < len(b) {
			break
		}
	}
	close(hold)
	close(dec)
	wg.Wait()
	return off
}

// checkEncoded compares what the encoder emitted for data with the
// layout's definition.
func checkEncoded(t *testing.T, what string, p Parity, data []byte, got []encodedSegment) {
	t.Helper()
	size := int64(len(data))
	if n := p.segments(size); int64(len(got)) != n {
		t.Fatalf("%s: %d segments, want %d", what, len(got), n)
	}
	rs, err := newRS(p.DataShards, p.ParityShards)
	if err != nil {
		t.Fatal(err)
	}
	for i, sg := range got {
		s := p.segment(size, int64(i))
		S := p.ShardSize
		parity := make([]byte, p.parityLen(s))
		rows := make([][]byte, p.ParityShards)
		for j := 0; j < s.shards; j++ {
			chunk := make([]byte, S)
			n := copy(chunk, data[s.start+int64(j*S):s.start+min(s.length, int64((j+1)*S))])
			if h := xxhash.Sum64(chunk[:n]); sg.hashes[j] != h {
				t.Fatalf("%s: segment %d chunk %d: hash %x, want %x", what, i, j, sg.hashes[j], h)
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
			t.Fatalf("%s: segment %d: %d chunk hashes, want %d", what, i, len(sg.hashes), s.shards)
		}
		if !bytes.Equal(sg.parity, parity) {
			t.Fatalf("%s: segment %d: parity differs", what, i)
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

// TestEncoderSizeChanged: bytes past the size the encoder was made for,
// read into its buffers or written, are an error, and fewer bytes leave
// it not done; neither leaves a reader waiting.
func TestEncoderSizeChanged(t *testing.T) {
	p := Parity{Code: codeName, DataShards: 20, ParityShards: 3, ShardSize: 64, Stripes: 40, MinStripes: 4}
	size := int64(3*64*20*40 + 1000)
	data := make([]byte, size+5000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, c := range []struct {
		n    int64
		lend bool
	}{{size + 5000, true}, {size + 1, false}, {size - 1, true}, {size / 2, false}} {
		enc, err := newEncoder(p, size, func(segment, []uint64, []byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if c.lend {
			lendRandom(enc, data[:c.n], 3000, 7)
		} else {
			enc.Write(data[:c.n])
		}
		enc.free()
		if c.n > size && enc.err == nil || c.n < size && (enc.err != nil || enc.done()) {
			t.Fatalf("%d bytes of %d (lent %v): err %v, done %v", c.n, size, c.lend, enc.err, enc.done())
		}
	}
}

package archive

import (
	"bytes"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPrefetchFillAsync: reads through FillAsync (a goroutine copying into
// the caller's buffer), mixed with plain Reads, give the file's bytes in
// order, and the taps see every byte read, also when the read stops early.
func TestPrefetchFillAsync(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, stopAt := range []int{len(data), 1 << 20} {
		var mu sync.Mutex
		var tapped bytes.Buffer
		tap := func(b []byte) {
			mu.Lock()
			tapped.Write(b)
			mu.Unlock()
		}
		p := newPrefetch(bytes.NewReader(data), 64<<10, 2, []func([]byte){tap}, nil)
		var got []byte
		for i := 0; len(got) < stopAt; i++ {
			buf := make([]byte, 1+rng.IntN(200<<10))
			var n int
			var err error
			if i%3 == 2 {
				n, err = p.Read(buf)
			} else {
				r := <-p.FillAsync(buf)
				n, err = r.N, r.Err
			}
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		p.Close()
		if !bytes.Equal(got, data[:len(got)]) || len(got) < stopAt {
			t.Fatalf("stop at %d: read %d bytes, equal %v", stopAt, len(got), bytes.Equal(got, data[:len(got)]))
		}
		if tapped.Len() < len(got) || !bytes.Equal(tapped.Bytes(), data[:tapped.Len()]) {
			t.Fatalf("stop at %d: taps saw %d bytes (read %d)", stopAt, tapped.Len(), len(got))
		}
	}
}

// ringHolder lends consecutive pieces of a ring of buffers, waiting for a
// buffer's pieces to come back before it lends it again, as protect's
// encoder does with its groups.
type ringHolder struct {
	bufs    [][]byte
	free    chan int
	cur     int // buffer lent from (-1: none)
	off     int
	out     []atomic.Int32 // pieces of each buffer not given back
	mu      sync.Mutex
	held    bytes.Buffer
	lent    atomic.Int64
	release atomic.Int64
}

func newRingHolder(n, size int) *ringHolder {
	h := &ringHolder{free: make(chan int, n), cur: -1, out: make([]atomic.Int32, n)}
	for i := range n {
		h.bufs = append(h.bufs, make([]byte, size))
		h.free <- i
	}
	return h
}

func (h *ringHolder) Buffer(n int, stop <-chan struct{}) ([]byte, func()) {
	if h.cur < 0 || h.off == len(h.bufs[h.cur]) {
		if h.cur >= 0 {
			h.done(h.cur)
		}
		select {
		case h.cur = <-h.free:
		case <-stop:
			h.cur = -1
			return nil, nil
		}
		h.off = 0
		h.out[h.cur].Store(1)
	}
	i := h.cur
	b := h.bufs[i][h.off:min(len(h.bufs[i]), h.off+n)]
	h.off += len(b)
	h.out[i].Add(1)
	h.lent.Add(1)
	var once atomic.Bool
	return b, func() {
		if !once.CompareAndSwap(false, true) {
			panic("released twice")
		}
		h.release.Add(1)
		h.done(i)
	}
}

func (h *ringHolder) done(i int) {
	if h.out[i].Add(-1) == 0 {
		h.free <- i
	}
}

func (h *ringHolder) Hold(b []byte) {
	h.mu.Lock()
	h.held.Write(b)
	h.mu.Unlock()
}

// TestPrefetchHolder: with a Holder the file is read into its buffers,
// the reader gets the file's bytes in order, the Holder and the taps see
// every byte read, and every buffer lent is given back once, also when
// the reader stops early; Close returns while the Holder waits for room.
func TestPrefetchHolder(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, stopAt := range []int{len(data), 1 << 20, 0} {
		// (room for 4 chunks in the holder's buffers and 8 in the
		// read-ahead: the reader waits for the holder)
		h := newRingHolder(2, 100<<10)
		var tapped bytes.Buffer
		p := newPrefetch(bytes.NewReader(data), 64<<10, 8, []func([]byte){func(b []byte) { tapped.Write(b) }}, h)
		var got []byte
		for len(got) < stopAt {
			buf := make([]byte, 1+rng.IntN(200<<10))
			r := <-p.FillAsync(buf)
			got = append(got, buf[:r.N]...)
			if r.Err == io.EOF {
				break
			}
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		if stopAt == 0 {
			time.Sleep(10 * time.Millisecond) // (the reader waits for room)
		}
		p.Close()
		if !bytes.Equal(got, data[:len(got)]) || len(got) < stopAt {
			t.Fatalf("stop at %d: read %d bytes, equal %v", stopAt, len(got), bytes.Equal(got, data[:len(got)]))
		}
		held := h.held.Bytes()
		if len(held) < len(got) || !bytes.Equal(held, data[:len(held)]) || !bytes.Equal(tapped.Bytes(), held) {
			t.Fatalf("stop at %d: the holder saw %d bytes, the tap %d (read %d)", stopAt, len(held), tapped.Len(), len(got))
		}
		if l, r := h.lent.Load(), h.release.Load(); l != r {
			t.Fatalf("stop at %d: %d buffers lent, %d given back", stopAt, l, r)
		}
	}
}

package archive

import (
	"bytes"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
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
		p := newPrefetch(bytes.NewReader(data), 64<<10, 2, []func([]byte){tap})
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

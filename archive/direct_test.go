package archive

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// TestDirectFillAsync: reads through direct's FillAsync (into the
// caller's buffer, on a goroutine) mixed with plain Reads give the file's
// bytes in order and end with io.EOF.
func TestDirectFillAsync(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	d := &direct{r: bytes.NewReader(data)}
	var got []byte
	for i := 0; ; i++ {
		buf := make([]byte, 1+rng.IntN(2<<20))
		var n int
		var err error
		if i%3 == 2 {
			n, err = d.Read(buf)
		} else {
			r := <-d.FillAsync(buf)
			n, err = r.N, r.Err
			if err == nil && n != min(len(buf), directMax) {
				t.Fatalf("FillAsync read %d of %d bytes before the end", n, len(buf))
			}
		}
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, equal %v", len(got), bytes.Equal(got, data))
	}
}

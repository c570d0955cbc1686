package codec

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
)

// resizable is a test decoder: data with one Resync span whose length can
// be changed, rewinding the output.
type resizable struct {
	pre, post []byte
	gap       int
	pos       int
	resized   bool
	fail      bool
}

func (r *resizable) out() []byte {
	return append(append(append([]byte(nil), r.pre...), make([]byte, r.gap)...), r.post...)
}

func (r *resizable) Read(p []byte) (int, error) {
	o := r.out()
	if r.pos >= len(o) {
		return 0, io.EOF
	}
	n := copy(p, o[r.pos:min(len(o), r.pos+1+rand.Intn(5000))])
	r.pos += n
	return n, nil
}

func (r *resizable) Spans() []Span {
	if r.pos <= len(r.pre) {
		return nil
	}
	return []Span{{Off: int64(len(r.pre)), Len: int64(r.gap), State: damage.Lost, Resync: !r.resized, MaxLen: 1 << 20}}
}
func (r *resizable) Problems() []damage.Problem { return nil }
func (r *resizable) Checksum() Checksum         { return ChecksumUnknown }
func (r *resizable) Resize(off, n int64) error {
	if r.fail || off != int64(len(r.pre)) {
		return ErrCannotResize
	}
	r.gap, r.resized, r.pos = int(n), true, int(off)
	return nil
}

func TestReadAheadResize(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, fail := range []bool{false, true} {
		pre, post := make([]byte, 30000), make([]byte, 50000)
		rng.Read(pre)
		rng.Read(post)
		dec := &resizable{pre: pre, post: post, gap: 1000, fail: fail}
		a := ReadAhead(dec, 4096, 3)
		got := make([]byte, 40000)
		if _, err := io.ReadFull(a, got); err != nil {
			t.Fatal(err)
		}
		err := a.Resize(30000, 2000)
		if fail != errors.Is(err, ErrCannotResize) {
			t.Fatalf("fail=%v: %v", fail, err)
		}
		rest, err := io.ReadAll(a)
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		if fail {
			want = append(append(append([]byte(nil), pre...), make([]byte, 1000)...), post...)
			got = append(got, rest...)
		} else {
			want = append(append(append([]byte(nil), pre...), make([]byte, 2000)...), post...)
			got = append(got[:30000], rest...)
			if sp := a.Spans(); len(sp) != 1 || sp[0].Resync || sp[0].Len != 2000 {
				t.Fatalf("spans after resize: %+v", sp)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("fail=%v: output differs (%d vs %d bytes)", fail, len(got), len(want))
		}
		a.Close()
	}
}

// lending is resizable as a Lender, counting the slices lent and not given
// back.
type lending struct {
	resizable
	out map[*byte]bool
}

func (l *lending) Lend(n int) ([]byte, error) {
	b := make([]byte, n)
	k, err := l.Read(b)
	if k > 0 {
		l.out[&b[0]] = true
	}
	return b[:k], err
}

func (l *lending) Return(b []byte) { delete(l.out, &b[0]) }

// TestReadAheadResizeReturnsLoans: every Resize of a Lender's read-ahead
// gives back what the reader had given back too (else the decoder keeps
// them lent for ever and cannot reuse its buffer), so the loans stay
// bounded however many times the output is resized. (On one thread the
// reader's give-backs are still waiting in the read-ahead when it stops.)
func TestReadAheadResizeReturnsLoans(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	pre, post := make([]byte, 30000), make([]byte, 50000)
	dec := &lending{resizable: resizable{pre: pre, post: post, gap: 1000}, out: map[*byte]bool{}}
	a := ReadAhead(dec, 4096, 3)
	defer a.Close()
	for i := 0; i < 50; i++ {
		if _, err := io.ReadFull(a, make([]byte, 31000)); err != nil {
			t.Fatal(err)
		}
		if err := a.Resize(30000, int64(1000+i)); err != nil {
			t.Fatal(err)
		}
		if n := len(dec.out); n > 2*3+4 {
			t.Fatalf("after %d resizes, %d slices still lent", i+1, n)
		}
	}
}

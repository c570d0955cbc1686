package codec

import (
	"io"

	"github.com/vzsalvage/vzsalvage/damage"
)

// ReadAhead runs r in its own goroutine, decoding up to depth chunks of
// size bytes ahead of the reader, so that decoding and what consumes its
// output use two cores. Spans, Problems and Checksum are those the decoder
// had reported when the bytes returned so far were produced. Close stops
// the goroutine (it must be called unless Read returned an error or EOF).
func ReadAhead(r Reader, size, depth int) *Ahead {
	a := &Ahead{
		full: make(chan chunk, depth),
		free: make(chan []byte, depth+1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for i := 0; i < depth+1; i++ {
		a.free <- make([]byte, size)
	}
	go a.produce(r)
	return a
}

// Ahead is a read-ahead decoder; see ReadAhead.
type Ahead struct {
	full chan chunk
	free chan []byte
	stop chan struct{}
	done chan struct{}

	cur      chunk
	off      int
	spans    []Span
	problems []damage.Problem
	sum      Checksum
	err      error
}

type chunk struct {
	buf      []byte
	n        int
	err      error
	spans    []Span
	problems []damage.Problem
	sum      Checksum
}

func (a *Ahead) produce(r Reader) {
	defer close(a.done)
	defer close(a.full)
	for {
		var buf []byte
		select {
		case buf = <-a.free:
		case <-a.stop:
			return
		}
		n, err := io.ReadFull(r, buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		c := chunk{buf: buf, n: n, err: err, spans: r.Spans(), problems: r.Problems()}
		if err != nil {
			c.sum = r.Checksum()
		}
		select {
		case a.full <- c:
		case <-a.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read implements io.Reader.
func (a *Ahead) Read(p []byte) (int, error) {
	for a.off >= a.cur.n {
		if a.err != nil {
			return 0, a.err
		}
		if a.cur.buf != nil {
			a.free <- a.cur.buf
			a.cur.buf = nil
		}
		c, ok := <-a.full
		if !ok {
			a.err = io.EOF
			return 0, io.EOF
		}
		a.cur, a.off = c, 0
		a.spans, a.problems = c.spans, c.problems
		if c.err != nil {
			a.err, a.sum = c.err, c.sum
		}
	}
	n := copy(p, a.cur.buf[a.off:a.cur.n])
	a.off += n
	return n, nil
}

// Spans implements Reader.
func (a *Ahead) Spans() []Span { return a.spans }

// Problems implements Reader.
func (a *Ahead) Problems() []damage.Problem { return a.problems }

// Checksum implements Reader.
func (a *Ahead) Checksum() Checksum {
	if a.sum == "" {
		return ChecksumUnknown
	}
	return a.sum
}

// Close stops the decoding goroutine and waits for it to end.
func (a *Ahead) Close() error {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
	return nil
}

package codec

import (
	"io"

	"github.com/vzsalvage/vzsalvage/damage"
)

// ReadAhead runs r in its own goroutine, decoding up to depth chunks of
// size bytes ahead of the reader, so that decoding and what consumes its
// output use two cores. Spans, Problems and Checksum are those the decoder
// had reported when the bytes returned so far were produced. If r is a
// Resizer, so is the result. Close stops the goroutine.
func ReadAhead(r Reader, size, depth int) *Ahead {
	a := &Ahead{r: r, size: size, depth: depth}
	a.start()
	return a
}

// Ahead is a read-ahead decoder; see ReadAhead.
type Ahead struct {
	r           Reader
	size, depth int

	full chan chunk
	free chan []byte
	stop chan struct{}
	done chan struct{}

	pending  []chunk // chunks decoded before a failed Resize, to be read first
	leftover *chunk  // a chunk the producer decoded when told to stop
	cur      chunk
	off      int
	spans    []Span
	problems []damage.Problem
	sum      Checksum
	err      error
}

type chunk struct {
	own      bool // buf belongs to the current free list
	buf      []byte
	n        int
	err      error
	spans    []Span
	problems []damage.Problem
	sum      Checksum
}

// start launches the producer goroutine.
func (a *Ahead) start() {
	a.full = make(chan chunk, a.depth)
	a.free = make(chan []byte, a.depth+1)
	a.stop = make(chan struct{})
	a.done = make(chan struct{})
	for i := 0; i < a.depth+1; i++ {
		a.free <- make([]byte, a.size)
	}
	a.cur, a.off, a.err, a.sum = chunk{}, 0, nil, ""
	go a.produce(a.r, a.full, a.free, a.stop, a.done)
}

func (a *Ahead) produce(r Reader, full chan<- chunk, free <-chan []byte, stop, done chan struct{}) {
	defer close(done)
	defer close(full)
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-stop:
			return
		}
		n, err := io.ReadFull(r, buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		c := chunk{own: true, buf: buf, n: n, err: err, spans: r.Spans(), problems: r.Problems()}
		if err != nil {
			c.sum = r.Checksum()
		}
		select {
		case full <- c:
		case <-stop:
			a.leftover = &c // read only after done is closed
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
		if a.cur.buf != nil && a.cur.own {
			a.free <- a.cur.buf
		}
		a.cur.buf = nil
		var c chunk
		if len(a.pending) > 0 {
			c, a.pending = a.pending[0], a.pending[1:]
		} else {
			var ok bool
			if c, ok = <-a.full; !ok {
				a.err = io.EOF
				return 0, io.EOF
			}
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

// Resize implements Resizer when the decoder does: it stops the read-ahead,
// drops what was decoded ahead, resizes, and starts again from off.
func (a *Ahead) Resize(off, trueLen int64) error {
	rs, ok := a.r.(Resizer)
	if !ok {
		return ErrCannotResize
	}
	a.halt()
	// what was decoded ahead, in order, in case the resize fails
	var ahead []chunk
	if a.off < a.cur.n || a.cur.err != nil {
		ahead = append(ahead, chunk{buf: a.cur.buf[a.off:a.cur.n], n: a.cur.n - a.off, err: a.cur.err,
			spans: a.cur.spans, problems: a.cur.problems, sum: a.cur.sum})
	}
	ahead = append(ahead, a.pending...)
	for c := range a.full {
		c.own = false
		ahead = append(ahead, c)
	}
	if a.leftover != nil {
		a.leftover.own = false
		ahead = append(ahead, *a.leftover)
		a.leftover = nil
	}
	err := rs.Resize(off, trueLen)
	spans, problems := a.spans, a.problems
	newSpans, newProblems := a.r.Spans(), a.r.Problems()
	a.start()
	if err != nil {
		a.pending = ahead
		a.spans, a.problems = spans, problems
		if len(ahead) > 0 && ahead[len(ahead)-1].err != nil {
			// the decoder had already ended: nothing more to produce
			a.halt()
			a.full = make(chan chunk)
			close(a.full)
		}
		return err
	}
	a.spans, a.problems = newSpans, newProblems
	return nil
}

// halt stops the producer and waits for it.
func (a *Ahead) halt() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

// Close stops the decoding goroutine and waits for it to end.
func (a *Ahead) Close() error {
	a.halt()
	return nil
}

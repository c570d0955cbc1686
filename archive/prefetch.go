package archive

import "io"

// The read-ahead of Payload: depth chunks of size bytes (small chunks: a
// buffer's pages cost more to touch the first time than to copy).
const (
	prefetchChunk = 256 << 10
	prefetchDepth = 4
)

// prefetch reads r in its own goroutine, up to depth chunks of size bytes
// ahead, so that reading the file (system calls and copies) does not take
// time from the decoder. tap, if not nil, sees each chunk as it is read.
// Close stops it.
type prefetch struct {
	full chan pchunk
	free chan []byte
	stop chan struct{}
	done chan struct{}
	cur  pchunk
	off  int
	err  error
}

type pchunk struct {
	b   []byte
	n   int
	err error
}

func newPrefetch(r io.Reader, size, depth int, tap func([]byte)) *prefetch {
	p := &prefetch{full: make(chan pchunk, depth), free: make(chan []byte, depth+1),
		stop: make(chan struct{}), done: make(chan struct{})}
	for i := 0; i < depth+1; i++ {
		p.free <- make([]byte, size)
	}
	go func() {
		defer close(p.done)
		defer close(p.full)
		for {
			var b []byte
			select {
			case b = <-p.free:
			case <-p.stop:
				return
			}
			n, err := io.ReadFull(r, b)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			if tap != nil && n > 0 {
				tap(b[:n])
			}
			select {
			case p.full <- pchunk{b, n, err}:
			case <-p.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *prefetch) Read(b []byte) (int, error) {
	for p.off >= p.cur.n {
		if p.err != nil {
			return 0, p.err
		}
		if p.cur.b != nil {
			p.free <- p.cur.b
			p.cur.b = nil
		}
		c, ok := <-p.full
		if !ok {
			p.err = io.EOF
			return 0, io.EOF
		}
		p.cur, p.off = c, 0
		if c.err != nil {
			p.err = c.err
		}
	}
	n := copy(b, p.cur.b[p.off:p.cur.n])
	p.off += n
	return n, nil
}

// Close stops the reading goroutine and waits for it.
func (p *prefetch) Close() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	return nil
}

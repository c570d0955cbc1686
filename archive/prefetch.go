package archive

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/vzsalvage/vzsalvage/codec"
)

// The read-ahead of Payload: depth chunks of size bytes (small chunks: a
// buffer's pages cost more to touch the first time than to copy), and with
// taps up to tapLag more chunks that a tap has not seen yet.
const (
	prefetchChunk = 256 << 10
	prefetchDepth = 4
	tapLag        = 12
	holdLag       = 1024 // chunks a Holder's channel has room for
)

// prefetch reads r in its own goroutine, up to depth chunks of size bytes
// ahead, so that reading the file (system calls and copies) does not take
// time from the decoder. Each of taps sees every chunk in order on a
// goroutine of its own, beside the decoder: a chunk goes back to be read
// into once the decoder and every tap are done with it. With a Holder,
// the chunks are read into its buffers and it sees them too, on a
// goroutine of its own. Close stops the goroutines.
type prefetch struct {
	full   chan pchunk
	taps   []chan pchunk
	holder Holder
	free   chan *pbuf
	stop   chan struct{}
	done   chan struct{}  // the reading goroutine ended
	tapd   sync.WaitGroup // the tap goroutines
	cur    pchunk
	off    int
	err    error
}

// A Holder is a tap that keeps the file's bytes past the call without a
// copy: prefetch reads the file into the buffers it lends (protect's
// parity encoder, which needs many MiB of the file side by side, lends
// its own) and hands each one to Hold once read.
type Holder interface {
	// Buffer returns where the file's next bytes are read, at most n
	// (all of it is read into but at the end of the file), and release,
	// which prefetch calls once the decoder and every tap are done with
	// it. It may wait for room until stop is closed: it returns nil then.
	Buffer(n int, stop <-chan struct{}) (b []byte, release func())
	// Hold is called on a goroutine of its own with the bytes read into
	// each buffer, in order (not for a buffer nothing was read into).
	Hold(b []byte)
}

type pbuf struct {
	b       []byte
	refs    atomic.Int32 // readers of the chunk not done with it
	release func()       // a Holder's buffer: how to give it back
}

type pchunk struct {
	buf *pbuf
	n   int
	err error
}

func newPrefetch(r io.Reader, size, depth int, taps []func([]byte), h Holder) *prefetch {
	bufs := depth + 1
	if len(taps) > 0 {
		bufs += tapLag
	}
	p := &prefetch{full: make(chan pchunk, depth), free: make(chan *pbuf, bufs), holder: h,
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, fn := range taps {
		ch := make(chan pchunk, bufs)
		p.taps = append(p.taps, ch)
		p.tapd.Add(1)
		go p.tap(fn, ch)
	}
	if h != nil {
		// (room for the chunks of a Holder's buffers too, which it
		// bounds itself)
		ch := make(chan pchunk, holdLag)
		p.taps = append(p.taps, ch)
		p.tapd.Add(1)
		go p.tap(h.Hold, ch)
	}
	go p.read(r, size, bufs)
	return p
}

// read is the reading goroutine: it fills the buffers, bufs at most, made
// as they are first needed.
func (p *prefetch) read(r io.Reader, size, bufs int) {
	defer close(p.done)
	defer close(p.full)
	defer func() {
		for _, ch := range p.taps {
			close(ch)
		}
	}()
	made := 0
	for {
		var b *pbuf
		if p.holder != nil {
			hb, release := p.holder.Buffer(size, p.stop)
			if hb == nil {
				return
			}
			b = &pbuf{b: hb, release: release}
		} else {
			select {
			case b = <-p.free:
			default:
				if made < bufs {
					b = &pbuf{b: make([]byte, size)}
					made++
					break
				}
				select {
				case b = <-p.free:
				case <-p.stop:
					return
				}
			}
		}
		n, err := io.ReadFull(r, b.b)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		c := pchunk{b, n, err}
		b.refs.Store(1)
		if n > 0 {
			b.refs.Add(int32(len(p.taps)))
			for _, ch := range p.taps {
				ch <- c // (room for every buffer of ours; a Holder lends more, and its tap drains it)
			}
		}
		select {
		case p.full <- c:
		case <-p.stop:
			p.release(b)
			return
		}
		if err != nil {
			return
		}
	}
}

// tap is a tap's goroutine: it hands the chunks read to fn in order,
// until the reading goroutine ends.
func (p *prefetch) tap(fn func([]byte), ch chan pchunk) {
	defer p.tapd.Done()
	for c := range ch {
		fn(c.buf.b[:c.n])
		p.release(c.buf)
	}
}

// release marks a reader of b done with it.
func (p *prefetch) release(b *pbuf) {
	if b.refs.Add(-1) == 0 {
		if b.release != nil {
			b.release()
			return
		}
		p.free <- b // (room for every buffer)
	}
}

func (p *prefetch) Read(b []byte) (int, error) {
	for p.off >= p.cur.n {
		if p.err != nil {
			return 0, p.err
		}
		if p.cur.buf != nil {
			p.release(p.cur.buf)
			p.cur.buf = nil
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
	n := copy(b, p.cur.buf.b[p.off:p.cur.n])
	p.off += n
	return n, nil
}

// FillAsync implements codec.AsyncFiller: a goroutine copies into b what
// is read ahead, as Read, and goes on while more is already read.
func (p *prefetch) FillAsync(b []byte) <-chan codec.FillResult {
	ch := make(chan codec.FillResult, 1)
	go func() {
		n, err := p.Read(b)
		for err == nil && n < len(b) && p.ready() {
			var k int
			k, err = p.Read(b[n:])
			n += k
		}
		ch <- codec.FillResult{N: n, Err: err}
	}()
	return ch
}

// ready reports whether Read would return at once: bytes of the current
// chunk are left or the next chunk is read already.
func (p *prefetch) ready() bool {
	return p.off < p.cur.n || p.err == nil && len(p.full) > 0
}

// Close stops the reading goroutine and waits for it, and for the taps to
// see every chunk read.
func (p *prefetch) Close() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.tapd.Wait()
	if p.holder != nil {
		// the chunks read that the decoder will not read are done with:
		// the Holder may wait for its buffers (a caller closes the
		// decoder first, which then reads no more)
		if p.cur.buf != nil {
			p.release(p.cur.buf)
			p.cur.buf = nil
		}
		for c := range p.full {
			p.release(c.buf)
		}
	}
	return nil
}

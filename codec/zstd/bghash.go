package zstd

import (
	"sync"

	"github.com/cespare/xxhash/v2"
)

// On the clean path the frame's hash (its content checksum) is computed on
// a goroutine beside the decoder, a batch of output at a time: the decoder's
// goroutine is what limits a read's speed, and hashing is an eighth of its
// work. The bytes handed to the hasher stay unchanged until it is done:
// the history is not slid or moved while a batch is out (stepClean waits
// before a reserve that would), and every way out of the clean path, and
// every use of the hash or copy of the decoding state, waits first
// (hashSync).

// hashBatch is how much output is hashed at a time.
const hashBatch = 1 << 20

// bgHash runs the batches in order on a goroutine that ends when it has
// none left (so that a Reader dropped unclosed leaves none behind).
type bgHash struct {
	mu      sync.Mutex
	queue   [][]byte
	running bool
	idle    chan struct{} // closed when the running goroutine ends
}

// add queues b to be written to d.
func (g *bgHash) add(d *xxhash.Digest, b []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queue = append(g.queue, b)
	if !g.running {
		g.running = true
		g.idle = make(chan struct{})
		go g.work(d, g.idle)
	}
}

func (g *bgHash) work(d *xxhash.Digest, idle chan struct{}) {
	defer close(idle)
	for {
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.queue = g.queue[:0]
			g.running = false
			g.mu.Unlock()
			return
		}
		b := g.queue[0]
		g.queue[0] = nil
		g.queue = g.queue[1:]
		g.mu.Unlock()
		d.Write(b)
	}
}

// wait returns once every batch queued is hashed.
func (g *bgHash) wait() {
	g.mu.Lock()
	idle, running := g.idle, g.running
	g.mu.Unlock()
	if running {
		<-idle
	}
}

// hashAhead queues the clean path's output not yet hashed when there is a
// batch of it (or any, with all). Outside the clean path the output is
// hashed as it is decoded (hashOut), and a second pass (donor) hashes as
// it releases (hashTo).
func (z *Reader) hashAhead(all bool) {
	if z.donor != nil || z.state != stClean {
		return
	}
	end := z.h.pos()
	if z.lagHash {
		end = min(end, max(z.hold.rel, z.bgFrom)) // (checkpoint.go)
	}
	if end == z.bgFrom || end-z.bgFrom < hashBatch && !all {
		return
	}
	if z.bgFrom < z.h.base || z.bgFrom > end {
		// (cannot happen: the history does not slide while output is
		// unhashed) the checksum is then not compared
		z.exact = false
		z.bgFrom = end
		return
	}
	z.bg.add(&z.hash, z.h.buf[z.bgFrom-z.h.base:end-z.h.base])
	z.bgFrom = end
}

// hashSync hashes the output not yet hashed and waits until it is.
func (z *Reader) hashSync() {
	z.hashAhead(true)
	z.bg.wait()
}

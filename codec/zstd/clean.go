package zstd

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	kzstd "github.com/klauspost/compress/zstd"
)

// The clean path: klauspost/compress decodes a frame as fast as it can, on
// its concurrent stream decoder (reading and literals, sequences, and their
// execution on three goroutines), fed by a feeder that hands it exactly one
// frame. So that on the first error our own decoder can rebuild the carried
// state (tables, repeat offsets) and take over at the failing block, every
// block's output is matched with the block that made it:
//
//   - the feeder, on klauspost's reading goroutine, parses each block
//     header it hands out and queues a record of the block: where it
//     starts and ends, its kind, and whether it decodes to no output at
//     all (a block whose emptiness cannot be told from its first bytes is
//     refused: our decoder takes over there);
//   - klauspost's WriteTo, on a goroutine of ours, writes each block's
//     output in one Write, in order, and no Write for an empty block; each
//     Write waits until the Reader's goroutine has copied the bytes into
//     the history (stepClean), which takes the next non-empty record for
//     them after the empty ones before it.
//
// So the Reader knows, as with a decoder that returns one block at a time,
// which input made which output (hold.go's marks), and at an error the
// failing block is the first record not matched. While klauspost runs only
// the feeder touches the input; the Reader's goroutine touches it again
// once WriteTo has returned (klauspost's goroutines have then ended).

// retainBlocks is how many blocks before the current one are kept for
// rebuilding state at a handover.
const retainBlocks = 8

// cleanConcurrency is how many blocks klauspost decodes at once. Measured
// on two cores (klauspost alone, to io.Discard, a 345 MiB archive): 1:
// 276 ms, 2: 300, 4: 220, 8: 197, 16: 183; a 119 MiB one: 1: 448, 4: 311,
// 8: 274, 16: 278.
const cleanConcurrency = 8

// maxQueued bounds the records queued (klauspost has at most
// cleanConcurrency blocks in flight, so this is never reached).
const maxQueued = 1024

var (
	errBadHeader = errors.New("zstd: bad block header")
	errCleanStop = errors.New("zstd: clean path stopped")
)

const (
	itemBlock = iota
	itemChecksum
	itemEnd
)

// blockRec is the feeder's record of a block it handed to klauspost.
type blockRec struct {
	start, end int64 // header offset; end of its content (and the checksum, after the last)
	want       int   // output bytes of a raw or RLE block, -1 for compressed
	soft       bool  // raw or RLE
	empty      bool  // decodes to no output
	last       bool
}

// feeder is the io.Reader klauspost reads one frame through. Apart from the
// queue and rel, it is used by klauspost's reading goroutine only while
// klauspost runs.
type feeder struct {
	in    *input
	fh    frameHeader
	pos   int64 // next byte to hand out (from the frame's magic)
	limit int64 // end of the structure parsed so far
	next  int   // what lies at limit
	bad   bool  // stop before the block at limit-3 (invalid or refused)

	sum    uint32 // the frame's checksum field
	hasSum bool

	mu    sync.Mutex
	queue []blockRec // records not yet matched with output
	head  int
	rel   atomic.Int64 // input the Reader no longer needs (release)
}

func (f *feeder) reset(in *input, start int64, fh frameHeader) {
	f.in, f.fh, f.pos, f.limit = in, fh, start, start+int64(fh.size)
	f.next, f.bad, f.sum, f.hasSum = itemBlock, false, 0, false
	f.queue, f.head = f.queue[:0], 0
	f.rel.Store(0)
}

// push queues a record; false when the queue is full.
func (f *feeder) push(r blockRec) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue)-f.head >= maxQueued {
		return false
	}
	if f.head > 0 && f.head == len(f.queue) {
		f.queue, f.head = f.queue[:0], 0
	}
	f.queue = append(f.queue, r)
	return true
}

// front returns the first record not matched, if any.
func (f *feeder) front() (blockRec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.head == len(f.queue) {
		return blockRec{}, false
	}
	return f.queue[f.head], true
}

// pop drops the first record.
func (f *feeder) pop() {
	f.mu.Lock()
	f.head++
	f.mu.Unlock()
}

func (f *feeder) Read(p []byte) (int, error) {
	if r := f.rel.Load(); r > 0 {
		f.in.release(r)
	}
	if f.pos == f.limit {
		if f.bad {
			return 0, errBadHeader
		}
		switch f.next {
		case itemEnd:
			return 0, io.EOF
		case itemChecksum:
			b := f.in.at(f.limit, 4)
			if len(b) == 4 {
				f.sum, f.hasSum = le32(b), true
			}
			f.limit += int64(len(b))
			f.next = itemEnd
		case itemBlock:
			f.nextBlock()
		}
		if f.pos == f.limit {
			return 0, io.ErrUnexpectedEOF
		}
	}
	b := f.in.at(f.pos, int(min(int64(len(p)), f.limit-f.pos)))
	if len(b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, b)
	f.pos += int64(n)
	return n, nil
}

// nextBlock parses the block header at limit and queues its record, or
// stops there (bad).
func (f *feeder) nextBlock() {
	b := f.in.at(f.limit, 3)
	if len(b) < 3 {
		f.limit += int64(len(b))
		f.next = itemEnd
		return
	}
	bh := parseBlockHeader(b)
	r := blockRec{start: f.limit, end: f.limit + 3 + int64(bh.clen), want: bh.size, soft: bh.typ != blockCompressed, last: bh.last}
	ok := plausible(bh, f.fh.blockMax) &&
		!(bh.last && !frameEndsAt(f.in, r.end, f.fh.checksum))
	if ok && bh.typ == blockCompressed {
		r.want = -1
		r.empty, ok = emptyOutput(f.in.at(r.end-int64(bh.clen), min(bh.clen, 8)))
	} else {
		r.empty = bh.size == 0
	}
	if bh.last && f.fh.checksum {
		r.end += 4
	}
	if !f.push(r) || !ok {
		// Our decoder takes over at this header and decides (a last
		// block must be followed by the frame's end).
		f.bad = true
		f.limit += 3
		return
	}
	f.limit += 3 + int64(bh.clen)
	if bh.last {
		f.next = itemEnd
		if f.fh.checksum {
			f.next = itemChecksum
		}
	}
}

// emptyOutput reports whether a compressed block whose content starts with
// b decodes to no output (only when its literals are empty and it has no
// sequences); ok is false when that cannot be told (a literals section
// header too short, or compressed literals of size 0).
func emptyOutput(b []byte) (empty, ok bool) {
	lh, err := parseLitHeader(b)
	switch {
	case err != nil:
		return false, false
	case lh.regen > 0:
		return false, true
	case lh.typ >= litCompressed || lh.hsize+lh.csize >= len(b):
		return false, false
	}
	return b[lh.hsize+lh.csize] == 0, true
}

// cleanRun is the Reader's side of the clean path: the goroutine running
// klauspost's WriteTo, and the blocks whose output was taken.
type cleanRun struct {
	out     chan []byte   // a block's output, from Write
	ack     chan struct{} // the Reader has copied it
	stop    chan struct{} // closed: Write fails, WriteTo returns
	end     chan error    // WriteTo's result
	running bool

	ring     [retainBlocks]int64 // starts of the latest blocks taken
	n        int                 // blocks taken in the frame
	inEnd    int64               // input end of the latest block taken
	lastDone bool                // the latest block taken was the frame's last
}

// sink is the io.Writer klauspost writes the frame's blocks to.
type sink struct{ c *cleanRun }

func (s sink) Write(b []byte) (int, error) {
	select {
	case s.c.out <- b:
	case <-s.c.stop:
		return 0, errCleanStop
	}
	select {
	case <-s.c.ack:
		return len(b), nil
	case <-s.c.stop:
		return 0, errCleanStop
	}
}

// startClean starts klauspost on the frame at pos.
func (z *Reader) startClean(fh frameHeader) error {
	if z.kd == nil {
		kd, err := newKlauspost()
		if err != nil {
			return err
		}
		z.kd = kd
	}
	c := &z.clean
	*c = cleanRun{out: c.out, ack: c.ack, end: c.end, inEnd: z.pos + int64(fh.size)}
	if c.out == nil {
		c.out, c.ack, c.end = make(chan []byte), make(chan struct{}), make(chan error, 1)
	}
	c.stop = make(chan struct{})
	z.feed.reset(&z.in, z.pos, fh)
	// (from here until WriteTo returns, the input is the feeder's)
	if err := z.kd.Reset(&z.feed); err != nil {
		return err
	}
	c.running = true
	go func(kd *kzstd.Decoder, c *cleanRun) {
		_, err := kd.WriteTo(sink{c})
		c.end <- err
	}(z.kd, c)
	z.state = stClean
	return nil
}

// leaveClean, while klauspost runs, stops it and hands over to our decoder
// (Resize, which restores an earlier state, needs the input back).
func (z *Reader) leaveClean() {
	if !z.clean.running {
		return
	}
	z.stopClean()
	if err := z.endClean(false); err != nil {
		z.err = err
		z.close()
	}
}

// stopClean stops klauspost and waits until it has: the input is then the
// Reader's again.
func (z *Reader) stopClean() {
	c := &z.clean
	if !c.running {
		return
	}
	close(c.stop)
	<-c.end
	c.running = false
}

// taken records that the block r's output was taken (or, for an empty
// block, that klauspost decoded it).
func (z *Reader) taken(r blockRec) {
	c := &z.clean
	z.feed.pop()
	c.ring[c.n%retainBlocks] = r.start
	c.n++
	c.inEnd, c.lastDone = r.end, r.last
	if c.n >= retainBlocks {
		// the blocks a handover rebuilds from start at the oldest kept
		z.feed.rel.Store(c.ring[c.n%retainBlocks])
	}
}

// match takes the record of the block whose output (n bytes) klauspost
// wrote, after the empty blocks before it; false when the next record
// cannot have made it, or the block would break the frame's content size
// (klauspost would fail on it after writing its output).
func (z *Reader) match(n int) (blockRec, bool) {
	for {
		r, ok := z.feed.front()
		switch {
		case !ok:
			return r, false
		case r.empty:
			z.taken(r)
			continue
		case r.want >= 0 && n != r.want || r.want < 0 && n > z.fh.blockMax:
			return r, false
		}
		if cs := z.fh.contentSize; cs >= 0 && (z.frameN+int64(n) > cs || r.last && z.frameN+int64(n) != cs) {
			return r, false
		}
		z.taken(r)
		return r, true
	}
}

// stepClean takes the output of klauspost's next block.
func (z *Reader) stepClean() error {
	c := &z.clean
	select {
	case b := <-c.out:
		r, ok := z.match(len(b))
		if !ok {
			z.stopClean()
			return z.endClean(false)
		}
		n := len(b)
		if len(z.h.buf)-z.h.w < n || !z.h.unlent(z.h.w, z.h.w+n) {
			// the reserve may slide or move the output being hashed
			z.hashSync()
		}
		z.h.reserve(n)
		copy(z.h.buf[z.h.w:], b)
		c.ack <- struct{}{}
		z.h.w += n
		z.frameN += int64(n)
		z.hashAhead(false)
		z.markDecoded(r.end, r.soft, int64(n))
		return nil
	case err := <-c.end:
		c.running = false
		return z.endClean(err == nil)
	}
}

// endClean ends the clean path once klauspost has returned (atEnd: it
// decoded the whole frame): at the frame's end, or by a handover.
func (z *Reader) endClean(atEnd bool) error {
	z.hashSync()
	f := &z.feed
	if atEnd {
		// the frame's empty blocks after the last output
		for r, ok := f.front(); ok && r.empty; r, ok = f.front() {
			z.taken(r)
		}
	}
	if _, left := f.front(); left || !z.clean.lastDone || f.next != itemEnd || f.pos != f.limit || f.bad {
		return z.handover()
	}
	// the frame's hash is complete
	z.hashHeld()
	z.pos = f.pos
	z.state = stFrame
	z.markBlock(z.pos, false)
	z.in.release(z.pos)
	if !z.fh.checksum {
		z.sums[sumAbsent]++
		return nil
	}
	if !f.hasSum {
		return z.truncated(z.pos, "input ends inside the frame checksum")
	}
	return z.checkSum(z.pos-4, f.sum)
}

// handover moves from klauspost to our decoder at the first block whose
// output was not taken (after the last one taken, when the input ends
// there): it rebuilds the carried state from the retained blocks before it.
func (z *Reader) handover() error {
	c := &z.clean
	z.pos = c.inEnd
	if r, ok := z.feed.front(); ok {
		z.pos = r.start
	}
	if c.n > 0 {
		if c.n > retainBlocks {
			z.d.forget()
		}
		for i := max(0, c.n-retainBlocks); i < c.n; i++ {
			p := c.ring[i%retainBlocks]
			b := z.in.at(p, 3)
			if len(b) < 3 {
				z.d.forget()
				continue
			}
			bh := parseBlockHeader(b)
			if bh.typ != blockCompressed {
				continue
			}
			content := z.in.at(p+3, bh.clen)
			if len(content) < bh.clen {
				z.d.forget()
				continue
			}
			z.d.decodeCompressed(content, modeState)
		}
		z.nblocks = int64(c.n)
		z.blkIn = z.pos - z.frameIn - int64(z.fh.size)
		z.decN, z.decIn, z.decOut = z.nblocks, z.blkIn, z.frameN
	}
	z.state = stBlocks
	z.saveCheckpoint()
	z.hashHeld()
	z.lagHash = false
	z.h.keepBack = 0
	return nil
}

func newKlauspost() (*kzstd.Decoder, error) { return newKlauspostOn(nil, false) }

// newKlauspostOn returns klauspost's concurrent stream decoder over r, as
// both the clean path (which hashes the frame itself) and failFast (which
// lets it check the checksum) use it.
func newKlauspostOn(r io.Reader, checksum bool) (*kzstd.Decoder, error) {
	return kzstd.NewReader(r,
		kzstd.WithDecoderConcurrency(cleanConcurrency),
		kzstd.IgnoreChecksum(!checksum),
		kzstd.WithDecoderMaxWindow(MaxWindow),
		kzstd.WithDecoderMaxMemory(1<<62),
	)
}

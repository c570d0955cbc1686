package zstd

import (
	"errors"
	"io"
	"runtime"
	"sync"

	"github.com/cespare/xxhash/v2"
	kzstd "github.com/klauspost/compress/zstd"
)

// The clean path: klauspost/compress decodes a frame on several cores (its
// concurrent stream decoder runs the literals, the sequences and their
// execution in a pipeline), fed by a feeder that hands it exactly one frame
// and keeps the last blocks' input. Its WriteTo, run in a goroutine of its
// own, gives the output of one block per Write; the feeder's record of the
// block headers says which block each Write comes from (a block decodes to
// nothing exactly when its headers say so), and that goroutine also hashes
// the output for the frame checksum.
//
// A block's output is trusted once the next one has arrived or the frame
// has ended without an error: an error may come with stale bytes in place
// of the failing block's output. On the first error our own decoder takes
// over at the block after the last trusted one, rebuilding the carried
// state (tables, repeat offsets) from the blocks before it, exactly as if
// klauspost had decoded one block at a time.

// retainBlocks is how many blocks before the handover block the feeder
// keeps for rebuilding state there.
const retainBlocks = 8

// ringBlocks is how many block records the feeder keeps. klauspost reads a
// few blocks ahead of its output; a frame that makes it read more than
// ringBlocks-2*retainBlocks blocks without output (empty blocks) is handed
// to our decoder there.
const ringBlocks = 128

var (
	errBadHeader  = errors.New("zstd: bad block header")
	errUnmatched  = errors.New("zstd: output does not match the block headers")
	errCleanAbort = errors.New("zstd: clean path stopped")
)

const (
	itemBlock = iota
	itemChecksum
	itemEnd
)

// blockRec is what the feeder knows of a block from its headers.
type blockRec struct {
	start, end int64 // the block header's offset; the end of its content
	soft       bool  // raw or RLE
	// exact is the block's output size when its headers give it, else -1;
	// least is the least it can be.
	exact, least int
}

// feeder is the io.Reader klauspost reads one frame through, from its own
// goroutine; every field is guarded by mu.
type feeder struct {
	mu     sync.Mutex
	in     *input
	fh     frameHeader
	start  int64 // the frame's magic
	pos    int64 // next byte to hand out
	limit  int64 // end of the structure parsed so far
	next   int   // what lies at limit
	bad    bool  // the header before limit is invalid: stop there
	closed bool  // the clean path is over: hand out nothing more

	recs    [ringBlocks]blockRec // ring of the latest block records
	nblk    int                  // blocks seen in the frame
	matched int                  // blocks before matched were matched to output (or are empty)
	trusted int                  // blocks before trusted have trusted output
	sum     uint32               // the frame's checksum field
	hasSum  bool
}

func (f *feeder) reset(in *input, start int64, fh frameHeader) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.in, f.fh, f.start, f.pos, f.limit = in, fh, start, start, start+int64(fh.size)
	f.next, f.bad, f.closed = itemBlock, false, false
	f.nblk, f.matched, f.trusted = 0, 0, 0
	f.sum, f.hasSum = 0, false
}

// rec returns block i's record (it must still be in the ring).
func (f *feeder) rec(i int) blockRec { return f.recs[i%ringBlocks] }

// oldest returns the first block still in the ring.
func (f *feeder) oldest() int { return max(f.nblk-ringBlocks, 0) }

func (f *feeder) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, errCleanAbort
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

// nextBlock parses the block header at limit and records the block.
func (f *feeder) nextBlock() {
	b := f.in.at(f.limit, 3)
	if len(b) < 3 {
		f.limit += int64(len(b))
		f.next = itemEnd
		return
	}
	bh := parseBlockHeader(b)
	start := f.limit
	rec := blockRec{start: start, end: start + 3 + int64(bh.clen), soft: bh.typ != blockCompressed, exact: -1, least: 1}
	f.recs[f.nblk%ringBlocks] = rec
	f.nblk++
	// Keep the input of the blocks a handover may rebuild state from.
	if keep := max(f.trusted-retainBlocks, f.oldest()); keep > 0 {
		f.in.release(f.rec(keep).start)
	}
	if !plausible(bh, f.fh.blockMax) || f.nblk-f.trusted > ringBlocks-2*retainBlocks ||
		bh.last && !frameEndsAt(f.in, rec.end, f.fh.checksum) {
		// Our decoder takes over at this header (or before) and decides
		// (a last block must be followed by the frame's end).
		f.bad = true
		f.limit += 3
		return
	}
	rec.exact, rec.least = blockOutput(f.in, bh, start)
	f.recs[(f.nblk-1)%ringBlocks] = rec
	f.limit = rec.end
	if bh.last {
		f.next = itemEnd
		if f.fh.checksum {
			f.next = itemChecksum
		}
	}
}

// blockOutput returns the output size of the block at start when its
// headers give it (else -1) and the least it can be: a raw or RLE block's
// size; for a compressed block, its literals and at least 3 bytes per
// sequence (its literals alone when it has none).
func blockOutput(in *input, bh blockHeader, start int64) (exact, least int) {
	if bh.typ != blockCompressed {
		return bh.size, bh.size
	}
	lh, err := parseLitHeader(in.at(start+3, min(bh.clen, 5)))
	if err != nil || lh.hsize+lh.csize >= bh.clen {
		return -1, 1
	}
	s := in.at(start+3+int64(lh.hsize+lh.csize), 3)
	nseq := 0
	switch {
	case len(s) < 1:
		return -1, 1
	case s[0] < 128:
		nseq = int(s[0])
	case s[0] < 255 && len(s) >= 2:
		nseq = int(s[0]-128)<<8 | int(s[1])
	case s[0] == 255 && len(s) >= 3:
		nseq = int(s[1]) | int(s[2])<<8 + 0x7F00
	default:
		return -1, 1
	}
	if nseq == 0 {
		return lh.regen, lh.regen
	}
	return -1, lh.regen + 3*nseq
}

// match returns the block that an output of n bytes comes from: the next
// block that does not decode to nothing. It fails when that block was not
// handed out or its headers say another size.
func (f *feeder) match(n int) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.matched < f.oldest() {
		return 0, false
	}
	i := f.matched
	for i < f.nblk && f.recs[i%ringBlocks].exact == 0 {
		i++
	}
	if i >= f.nblk {
		return 0, false
	}
	r := f.rec(i)
	if n <= 0 || n > f.fh.blockMax || n < r.least || r.exact >= 0 && n != r.exact {
		return 0, false
	}
	f.matched = i + 1
	return i, true
}

// trust records that block i's output, and that of the blocks before it,
// is trusted, and returns its record.
func (f *feeder) trust(i int) blockRec {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trusted = i + 1
	return f.rec(i)
}

// close stops handing out input; after it, the fields may be read without
// the lock by the goroutine that called it.
func (f *feeder) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

// cleanBlock is one block's output on its way from klauspost's WriteTo to
// the Reader: valid until acknowledged.
type cleanBlock struct {
	b   []byte
	idx int
	sum xxhash.Digest // the frame's output hashed through this block
}

// clean is the Reader's side of the clean path.
type clean struct {
	f feeder
	// pos is the end of the latest trusted block's input: the chain of
	// block headers was read that far (for the hold, as inPos).
	pos int64

	blocks chan cleanBlock
	ack    chan struct{}
	stop   chan struct{}
	done   chan struct{}
	err    error // WriteTo's result, once done is closed
	active bool  // the goroutine was started and not waited for

	pend  cleanBlock // the latest block received, not trusted yet
	pendN int        // its size; 0: none
	sum   xxhash.Digest
	recvd int // Writes received
	w     *blockWriter
	// salvaged: our decoder has taken over once (Concurrent is false
	// from then on)
	salvaged bool
}

// blockWriter receives klauspost's output, one block per Write.
type blockWriter struct {
	c     *clean
	hash  bool
	sum   xxhash.Digest
	calls int // Writes, matched or not
}

func (w *blockWriter) Write(b []byte) (int, error) {
	w.calls++
	i, ok := w.c.f.match(len(b))
	if !ok {
		return 0, errUnmatched
	}
	if w.hash {
		w.sum.Write(b)
	}
	select {
	case w.c.blocks <- cleanBlock{b: b, idx: i, sum: w.sum}:
	case <-w.c.stop:
		return 0, errCleanAbort
	}
	select {
	case <-w.c.ack:
	case <-w.c.stop:
		return 0, errCleanAbort
	}
	return len(b), nil
}

// startClean starts klauspost on the frame whose header fh is at pos.
func (z *Reader) startClean(fh frameHeader) error {
	if z.kd == nil {
		kd, err := newKlauspost()
		if err != nil {
			return err
		}
		z.kd = kd
	}
	c := &z.feed
	c.f.reset(&z.in, z.pos, fh)
	if err := z.kd.Reset(&c.f); err != nil {
		return err
	}
	c.pos, c.pendN, c.recvd = z.pos, 0, 0
	c.sum.Reset()
	c.blocks, c.ack = make(chan cleanBlock), make(chan struct{})
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	c.active = true
	w := &blockWriter{c: c, hash: z.donor == nil}
	w.sum.Reset()
	c.w = w
	go func(kd *kzstd.Decoder) {
		defer close(c.done)
		_, c.err = kd.WriteTo(w)
	}(z.kd)
	z.state = stClean
	return nil
}

// stopClean stops the clean path's goroutine and waits for it (before the
// Reader touches the input again).
func (z *Reader) stopClean() {
	c := &z.feed
	if !c.active {
		return
	}
	close(c.stop)
	<-c.done
	c.f.close()
	c.active = false
}

// stepClean takes the next block's output from klauspost.
func (z *Reader) stepClean() error {
	c := &z.feed
	select {
	case b := <-c.blocks:
		z.trustPending()
		n := len(b.b)
		z.h.reserve(n)
		copy(z.h.buf[z.h.w:z.h.w+n], b.b)
		z.h.w += n
		z.frameN += int64(n)
		c.ack <- struct{}{}
		c.recvd++
		c.pend, c.pendN = b, n
		c.pend.b = nil
		return nil
	case <-c.done:
	}
	c.active = false
	c.f.close()
	f := &c.f
	if c.err == nil && f.next == itemEnd && f.pos == f.limit && !f.bad {
		z.trustPending()
		if z.donor == nil {
			z.hash = c.sum
		}
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
	return z.handover()
}

// trustPending trusts the latest block received: a mark for its output.
func (z *Reader) trustPending() {
	c := &z.feed
	if c.pendN == 0 {
		return
	}
	r := c.f.trust(c.pend.idx)
	c.pos, c.sum = r.end, c.pend.sum
	z.markDecoded(r.end, r.soft, int64(c.pendN))
	c.pendN = 0
}

// handover moves from klauspost to our decoder at the block after the
// last trusted one: it rebuilds the carried state from the retained blocks
// before it. The latest block received is trusted when klauspost went on
// after it (another Write came, or the error is the feeder's own: a bad
// header, the input's end) or decodes one block at a time; otherwise its
// output may be stale bytes in place of its own, and is dropped.
func (z *Reader) handover() error {
	c := &z.feed
	f := &c.f
	if c.pendN > 0 && (cleanConcurrency() == 1 || c.w.calls > c.recvd || laterBlockError(c.err)) {
		z.trustPending()
	}
	if c.pendN > 0 {
		z.h.w -= c.pendN
		z.frameN -= int64(c.pendN)
		c.pendN = 0
	}
	if z.donor == nil {
		z.hash = c.sum
	}
	at := f.trusted
	switch {
	case f.nblk == 0:
		z.pos = z.frameIn + int64(z.fh.size)
	case at >= f.nblk:
		z.pos = f.rec(f.nblk - 1).end
	default:
		z.pos = f.rec(at).start
	}
	first := max(at-retainBlocks, f.oldest(), 0)
	if first > 0 {
		z.d.forget()
	}
	for i := first; i < min(at, f.nblk); i++ {
		p := f.rec(i).start
		b := z.in.at(p, 3)
		if len(b) < 3 {
			z.d.forget()
			continue
		}
		bh := parseBlockHeader(b)
		if bh.typ != blockCompressed {
			continue
		}
		cb := z.in.at(p+3, bh.clen)
		if len(cb) < bh.clen {
			z.d.forget()
			continue
		}
		z.d.decodeCompressed(cb, modeState)
	}
	z.nblocks = int64(at)
	z.blkIn = z.pos - z.frameIn - int64(z.fh.size)
	z.decN, z.decIn, z.decOut = z.nblocks, z.blkIn, z.frameN
	z.state = stBlocks
	c.salvaged = true
	return nil
}

// laterBlockError reports whether err is one that klauspost gives for a
// block whose header or input could not be read: that block's output is
// empty, and the output before it is its blocks' own.
func laterBlockError(err error) bool {
	for _, e := range []error{errBadHeader, io.ErrUnexpectedEOF, kzstd.ErrReservedBlockType,
		kzstd.ErrWindowSizeExceeded, kzstd.ErrCompressedSizeTooBig, kzstd.ErrBlockTooSmall} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Concurrent implements codec.Concurrent: until our decoder has taken
// over, klauspost decodes on goroutines of its own.
func (z *Reader) Concurrent() bool {
	return cleanConcurrency() > 1 && !z.cfg.salvageOnly && z.err == nil && z.pending == 0 &&
		z.state != stBlocks && !z.feed.salvaged
}

// cleanConcurrency is how many blocks klauspost decodes at once: one
// per core, up to 4 (1 decodes synchronously, on the WriteTo goroutine).
func cleanConcurrency() int { return min(runtime.GOMAXPROCS(0), 4) }

func newKlauspost() (*kzstd.Decoder, error) {
	return kzstd.NewReader(nil,
		kzstd.WithDecoderConcurrency(cleanConcurrency()),
		kzstd.IgnoreChecksum(true),
		kzstd.WithDecoderMaxWindow(MaxWindow),
		kzstd.WithDecoderMaxMemory(1<<62),
	)
}

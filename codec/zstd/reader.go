// Package zstd decodes zstd streams (RFC 8878) and salvages damaged ones.
//
// Clean input goes through github.com/klauspost/compress/zstd's concurrent
// stream decoder, fed one frame at a time, each block's output matched with
// the block that made it (clean.go). At the first error our own decoder, written from RFC
// 8878, takes over at the failing block and goes on past damage: every
// output byte is clean or tainted (tracked as ranges), a match copies the
// taint of its source, unknown repeat offsets and entropy tables are never
// guessed, and lost blocks become Lost spans. Frames without a content
// checksum are decoded by our decoder from the start, since nothing else
// would verify them.
//
// The parts: the Reader (reader.go) reads frames and hands out output,
// spans and problems; clean.go is the clean path; blocks.go is our block
// loop, where the plain block decoder (block.go, with huffman.go, fse.go)
// writes output into the history (history.go: the window and which bytes
// are tainted) and the salvage policy (salvage.go) decides what damaged
// input means; hold.go holds output back until the chain after it is
// checked; resize.go keeps losses of unknown length and decodes again
// when one's true length is known; donor.go is the second pass.
package zstd

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	kzstd "github.com/klauspost/compress/zstd"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// Reader is a zstd decoder's output stream with its damage account. It
// implements codec.Reader, codec.Resizer, codec.Trimmer and io.Closer.
type Reader struct {
	blk    block // the block stepBlock decodes (kept here: no allocation per block)
	strict bool
	coarse bool // codec.Options.Coarse
	cfg    config
	in     input
	h      history
	d      decoder // the plain block decoder
	sv     salvage // the salvage policy

	spans    []codec.Span // released spans
	frozen   int          // spans[:frozen] were handed out: they must not change
	problems []damage.Problem
	nprob    int // problems found (some not kept: codec.Options.MaxProblems)
	maxProb  int
	hold     holder // output and spans not released yet
	scratch  []codec.Span

	run // the decoding state a Resize restores

	gap gap        // the latest Resync loss
	cp  checkpoint // what Resize needs to decode again after it

	kd    *kzstd.Decoder
	feed  feeder
	clean cleanRun

	donor    codec.Donor // a second pass's donor (donor.go), or nil
	gapKnown bool        // the latest loss has its true length from the donor
	gapLoss  codec.Loss  // that loss, as the first pass made it
	losses   []codec.Loss

	pending int64 // Lost placeholder bytes still to write
	// bg hashes the clean path's output (bghash.go); bgFrom is the output
	// offset of the first byte not yet handed to it.
	bg     bgHash
	bgFrom int64
	closed bool
	err    error

	// A first pass's checkpoint at its first handover (checkpoint.go).
	wantCkpt, ckptTried bool
	ckpt                atomic.Pointer[Checkpoint]
	// lagHash: the clean path hashes only released output (a first pass
	// keeping a checkpoint, until its first handover).
	lagHash bool
}

// run is the Reader's decoding state apart from the history, the decoder
// tables and the spans: what a checkpoint saves and Resize restores.
type run struct {
	state     int
	pos       int64 // input offset of the next structure (salvage path)
	fh        frameHeader
	frameIn   int64 // input offset of the current frame's magic
	frameN    int64 // output bytes of the current frame, placeholders included
	exact     bool  // the frame's output length is known (no Resync loss)
	fhDamaged bool  // the frame header was damaged: its flags are unknown
	hash      xxhash.Digest
	hashed    int64 // a second pass hashes output as released: up to here
	nblocks   int64 // blocks handled in the frame, and their input bytes
	blkIn     int64
	decN      int64 // blocks decoded in the frame (not lost), their input and output
	decIn     int64
	decOut    int64

	afterResync bool // no block was decoded since the last Resync loss
	notFull     bool // a block of the frame decoded to less than Block_Maximum_Size
	// distrust: the block at pos is a raw block a resync scan resumed at
	// because its header leads to a chain that passed: its output is kept
	// but tainted, its content being unproven.
	distrust bool

	sums [4]int // frames by checksum outcome: ok, mismatch, absent, unknown
	done bool
}

// config holds options for tests and tools.
type config struct {
	salvageOnly bool              // never use the clean path
	trace       func(blockRecord) // called for each block our decoder handles
	pinMax      int64             // compressed input kept for Resize (0: defaultPinMax)
	noRepair    bool              // never repair damaged input (repair.go)
	// decoded, when set, is called for each block our decoder decoded
	// and kept, before its output is accounted for: tests change what the
	// block's output counts as (the oracle in oracle_test.go).
	decoded func(z *Reader, b *block)
	// distrust holds input ranges (sorted) whose blocks' output is taken
	// as unknown although they decode (codec.Options.Distrust).
	distrust []damage.Range
}

// distrusted reports whether input [off, off+n) touches a distrusted range.
func (c *config) distrusted(off, n int64) bool {
	i := sort.Search(len(c.distrust), func(i int) bool { return c.distrust[i].End() > off })
	return i < len(c.distrust) && c.distrust[i].Off < off+n
}

// blockRecord describes one block handled by our decoder.
type blockRecord struct {
	In          int64 // input offset of the block header
	Out         int64 // output offset of its output
	N           int64 // output bytes
	Placeholder bool  // the output is placeholder bytes of a lost block
}

const (
	stFrame  = iota // expecting a frame (or the end) at pos
	stClean         // klauspost is decoding the frame
	stBlocks        // our decoder is decoding the frame's blocks at pos
)

const (
	sumOK = iota
	sumMismatch
	sumAbsent
	sumUnknown
)

// NewReader returns a codec.Reader decoding a zstd stream (one or more
// frames, skippable frames skipped). By default it salvages; with
// opt.Strict it fails at the first problem with an error wrapping
// codec.ErrCorrupt or codec.ErrTruncated (checksum mismatch included).
// The Reader also implements io.Closer; closing it is cheap.
//
// With opt.Resume (a *Checkpoint of this package) it is ResumeReader; with
// opt.KeepCheckpoint, it keeps a checkpoint (KeepCheckpoint); with
// opt.FailFast it is klauspost's decoder alone (failFast).
func NewReader(r io.Reader, opt codec.Options) (codec.Reader, error) {
	if opt.Resume != nil {
		c, ok := opt.Resume.(*Checkpoint)
		if !ok {
			return nil, errCheckpoint
		}
		return ResumeReader(r, opt, c, opt.ResumeFrom)
	}
	if opt.FailFast && opt.Donor == nil && len(opt.Distrust) == 0 && !opt.KeepCheckpoint {
		return newFailFast(r)
	}
	z := newReader(r, opt, config{})
	if opt.KeepCheckpoint {
		z.KeepCheckpoint()
	}
	return z, nil
}

func newReader(r io.Reader, opt codec.Options, cfg config) *Reader {
	if len(opt.Distrust) > 0 {
		// only our decoder can taint a block that decodes
		cfg.distrust, cfg.salvageOnly = opt.Distrust, true
	}
	z := &Reader{strict: opt.Strict, coarse: opt.Coarse, cfg: cfg, maxProb: opt.MaxProblems}
	z.in.src = r
	z.in.async, _ = r.(codec.AsyncFiller)
	z.in.pin, z.in.pinMax = -1, cmp.Or(cfg.pinMax, defaultPinMax)
	z.d.h = &z.h
	z.sv.init(z)
	z.donor, z.h.donor = opt.Donor, opt.Donor
	return z
}

// Read implements io.Reader.
func (z *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := z.output(1)
	if n == 0 {
		return 0, err
	}
	n = copy(p, z.h.buf[z.h.r:z.h.r+n])
	z.h.r += n
	return n, nil
}

// Lend implements codec.Lender: the next output, up to n bytes, in the
// Reader's own buffer, which keeps them unchanged until Return. The last
// bytes come with the error that ends the output.
func (z *Reader) Lend(n int) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	k, err := z.output(n)
	if k == 0 {
		return nil, err
	}
	last := k <= n
	k = min(k, n)
	b := z.h.lend(z.h.r, z.h.r+k)
	z.h.r += k
	if last && z.ended() {
		// the last bytes come with the end, as io.ReadFull gives them
		return b, z.err
	}
	return b, nil
}

// ended reports whether, with every readable byte read, nothing but the
// error is left to return.
func (z *Reader) ended() bool {
	if z.err == nil || z.pending > 0 {
		return false
	}
	held := z.hold.rel < z.h.pos() || len(z.hold.spans) > 0
	return !held || z.err != io.EOF && (z.strict || z.closed)
}

// Return implements codec.Lender.
func (z *Reader) Return(b []byte) { z.h.giveBack(b) }

// output decodes until want bytes can be read (fewer at the end or after
// an error) and returns how many can, from buf[r:]; 0 with the error when
// there are none.
func (z *Reader) output(want int) (int, error) {
	for {
		avail := int(min(z.hold.rel, z.h.pos())-z.h.base) - z.h.r
		if avail >= want {
			return avail, nil
		}
		if z.pending > 0 {
			z.writePending()
			continue
		}
		if z.err != nil {
			// At the end everything is released; a strict reader that
			// failed keeps back what it held.
			if z.hold.rel < z.h.pos() || len(z.hold.spans) > 0 {
				if z.err == io.EOF || !z.strict && !z.closed {
					z.releaseAll()
					continue
				}
			}
			if avail > 0 {
				return avail, nil
			}
			return 0, z.err
		}
		if err := z.step(); err != nil {
			z.err = err
			z.close()
		}
		z.releaseHeld()
	}
}

// Spans implements codec.Reader.
func (z *Reader) Spans() []codec.Span {
	z.frozen = len(z.spans)
	return z.spans[:len(z.spans):len(z.spans)]
}

// TrimSpans implements codec.Trimmer.
func (z *Reader) TrimSpans(off int64) {
	z.spans, z.frozen = codec.TrimSpans(z.spans, z.frozen, off)
}

// ProblemCount implements codec.ProblemCounter.
func (z *Reader) ProblemCount() int { return z.nprob }

// Problems implements codec.Reader.
func (z *Reader) Problems() []damage.Problem {
	return z.problems[:len(z.problems):len(z.problems)]
}

// Checksum implements codec.Reader.
func (z *Reader) Checksum() codec.Checksum {
	switch {
	case !z.done || z.sums[sumUnknown] > 0 && z.sums[sumMismatch] == 0:
		return codec.ChecksumUnknown
	case z.sums[sumMismatch] > 0:
		return codec.ChecksumMismatch
	case z.sums[sumOK] > 0:
		return codec.ChecksumOK
	}
	return codec.ChecksumAbsent
}

// Close releases the clean-path decoder. It implements io.Closer.
func (z *Reader) Close() error {
	z.close()
	z.closed = true
	z.cp.valid = false
	z.in.unpin()
	if z.err == nil {
		z.err = errors.New("zstd: reader closed")
	}
	return nil
}

func (z *Reader) close() {
	z.stopClean()
	z.bg.wait()
	z.in.stop()
	if z.kd != nil {
		z.kd.Close()
		z.kd = nil
	}
}

// problem records a problem at input offset off. In strict mode it returns
// the error to stop with.
func (z *Reader) problem(off int64, kind error, msg string) error {
	k := damage.Corrupt
	switch {
	case errors.Is(kind, codec.ErrTruncated):
		k = damage.Truncated
	case errors.Is(kind, errChecksum):
		k, kind = damage.ChecksumMismatch, codec.ErrCorrupt
	}
	z.problemKind(off, k, msg)
	if z.strict {
		return fmt.Errorf("zstd: at input offset %d: %s: %w", off, msg, kind)
	}
	return nil
}

// problemKind records a problem of the given kind at input offset off
// (one that never stops a strict reader: a repair).
func (z *Reader) problemKind(off int64, kind damage.Kind, msg string) {
	z.nprob++
	if codec.KeepProblem(len(z.problems), z.maxProb, kind) {
		z.problems = append(z.problems, damage.Problem{Layer: "zstd", Offset: off, Message: msg, Kind: kind})
	}
}

// addSpan appends a released span, merging it into the last one when that
// one was not handed out yet and they touch with the same state.
func (z *Reader) addSpan(s codec.Span) {
	if s.Len <= 0 && !s.Resync {
		return
	}
	if n := len(z.spans); n > z.frozen && mergeable(z.spans[n-1], s) {
		z.spans[n-1].Len += s.Len
		return
	}
	z.spans = append(z.spans, s)
}

// step produces more output or moves to the next structure.
func (z *Reader) step() error {
	switch z.state {
	case stClean:
		return z.stepClean()
	case stBlocks:
		return z.stepBlock()
	}
	return z.stepFrame()
}

// writePending writes placeholder bytes of a Resync loss.
func (z *Reader) writePending() {
	n := int(min(z.pending, 1<<20))
	z.h.reserve(n)
	clear(z.h.buf[z.h.w : z.h.w+n])
	z.h.w += n
	z.pending -= int64(n)
	z.donatePending(z.h.pos()-int64(n), z.h.buf[z.h.w-n:z.h.w])
	// A mark, so that holdMax can release a long run of placeholders.
	z.markAt(mark{in: z.inPos(), out: z.h.pos(), soft: true})
}

// stepFrame starts the frame (or skips the skippable frame) at pos.
func (z *Reader) stepFrame() error {
	b := z.in.at(z.pos, 18)
	if len(b) == 0 {
		if z.in.err != nil {
			if err := z.problem(z.pos, codec.ErrTruncated, "read error: "+z.in.err.Error()); err != nil {
				return err
			}
		}
		z.done = true
		return io.EOF
	}
	if len(b) < 4 {
		return z.truncated(z.pos, "input ends inside a frame magic")
	}
	magic := le32(b)
	if magic&skippableMask == skippableMagicLow {
		if len(b) < 8 {
			return z.truncated(z.pos, "input ends inside a skippable frame header")
		}
		size := int64(le32(b[4:]))
		end := z.pos + 8 + size
		if len(z.in.at(end-1, 1)) == 0 {
			return z.truncated(z.pos, "input ends inside a skippable frame")
		}
		z.in.release(end)
		z.pos = end
		return nil
	}
	fh, err := parseFrameHeader(b)
	switch {
	case errors.Is(err, errWindowTooLarge) || errors.Is(err, errDictionary):
		z.problem(z.pos, codec.ErrCorrupt, err.Error())
		return err
	case err == errShort:
		return z.truncated(z.pos, "input ends inside a frame header")
	case err != nil:
		if err := z.problem(z.pos, codec.ErrCorrupt, err.Error()); err != nil {
			return err
		}
		// A damaged frame header: look for blocks after it, assuming the
		// largest common window.
		z.startFrame(frameHeader{window: 8 << 20, blockMax: maxBlockSize, contentSize: -1, size: 4})
		z.fhDamaged = true
		return z.sv.resync(z.pos + 4)
	}
	z.startFrame(fh)
	if fh.checksum && !z.cfg.salvageOnly {
		return z.startClean(fh)
	}
	z.pos += int64(fh.size)
	z.state = stBlocks
	return nil
}

func (z *Reader) startFrame(fh frameHeader) {
	z.fh = fh
	z.frameIn = z.pos
	z.frameN = 0
	z.exact = true
	z.fhDamaged = false
	z.afterResync = false
	z.notFull = false
	z.nblocks, z.blkIn = 0, 0
	z.decN, z.decIn, z.decOut = 0, 0, 0
	z.bg.wait() // (nothing is pending at a frame's start)
	z.hash.Reset()
	z.hashed = z.h.pos()
	z.bgFrom = z.h.pos()
	z.h.setWindow(fh.window)
	z.d.resetFrame(fh.blockMax)
}

// errChecksum marks a frame checksum that does not match (a corruption
// whose Problem kind is ChecksumMismatch).
var errChecksum = fmt.Errorf("%w: content checksum mismatch", codec.ErrCorrupt)

// checkSum compares a frame's checksum field with the output's hash.
func (z *Reader) checkSum(off int64, want uint32) error {
	if !z.exact {
		z.sums[sumUnknown]++
		return nil
	}
	if !z.hashFrame() {
		z.sums[sumUnknown]++
		return nil
	}
	if uint32(z.hash.Sum64()) == want {
		z.sums[sumOK]++
		return nil
	}
	z.sums[sumMismatch]++
	return z.problem(off, errChecksum, "content checksum mismatch")
}

// truncated ends the stream: the input stops at off.
func (z *Reader) truncated(off int64, msg string) error {
	z.sums[sumUnknown]++
	if err := z.problem(off, codec.ErrTruncated, "truncated: "+msg); err != nil {
		return err
	}
	z.done = true
	return io.EOF
}

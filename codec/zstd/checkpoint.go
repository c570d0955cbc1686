package zstd

import (
	"errors"
	"io"

	"github.com/vzsalvage/vzsalvage/codec"
)

// Resuming a second pass at the first damaged block.
//
// A second pass (codec.Options.Donor) decodes exactly as the first did up
// to the first block the clean path fails on: the donor changes nothing
// before a loss, and the first loss lies at or after that block. So the
// first pass, asked to (KeepCheckpoint), saves the Reader's whole state at
// its first handover — the input offset from which the decoder may still
// read, the output window (and the held output) before the failing block,
// the decoder's tables and repeat offsets, the frame's running hash, the
// held-back marks — and a second pass resumes from it (ResumeReader)
// instead of decoding the clean prefix again. The checkpoint is taken only
// while nothing before it is damaged (no problem, no span, no taint), and
// only when the output it copies is at most maxCheckpointWindow bytes.

// maxCheckpointWindow bounds the output a Checkpoint copies.
const maxCheckpointWindow = 40 << 20

// Checkpoint is a first pass's Reader state at its first handover to the
// salvage decoder: what a second pass resumes from.
type Checkpoint struct {
	In  int64 // input offset the resumed Reader's source must start at
	Out int64 // output offset of the failing block's output

	base   int64  // output offset of win[0]
	win    []byte // output [base, Out): the window and the held output
	hashed int64  // the frame's hash in run covers its output before hashed
	hist   history
	run    run
	dec    decState
	hold   holder
	sv     salvage
	gap    gap
}

// From returns the earliest output offset a resumed Reader can start at.
func (c *Checkpoint) From() int64 { return c.base }

// Until returns the latest output offset a resumed Reader can start at
// (Out).
func (c *Checkpoint) Until() int64 { return c.Out }

// Input returns the input offset a resumed Reader's source starts at (In).
func (c *Checkpoint) Input() int64 { return c.In }

// KeepCheckpoint makes z (a first pass) save a Checkpoint at its first
// handover (Checkpoint). Call it before the first Read.
// Until its first handover, z keeps at least ckptBack bytes of output
// behind it, so that the checkpoint reaches back past the start of the
// VMA extent the failing block lies in (3.7 MiB at most): a second pass
// resumes at that extent's header.
func (z *Reader) KeepCheckpoint() {
	z.wantCkpt, z.lagHash = true, true
	z.h.keepBack = ckptBack
}

// ckptBack is how much output a Reader keeping a checkpoint holds behind
// it before its first handover: a VMA extent (59 clusters of 64 KiB and
// its 512-byte header) and a margin.
const ckptBack = 4 << 20

// Saved returns the checkpoint saved (KeepCheckpoint), or nil when there
// is none: the stream had no damage, damage came before the first
// handover, or the window was too large. It may be called while another
// goroutine reads.
func (z *Reader) Saved() *Checkpoint { return z.ckpt.Load() }

// Checkpoint implements codec.Checkpointer (Saved).
func (z *Reader) Checkpoint() codec.Checkpoint {
	if c := z.Saved(); c != nil {
		return c
	}
	return nil
}

// saveCheckpoint saves the state at a handover (z.state == stBlocks, the
// decoder's state rebuilt) when asked to and nothing before is damaged.
func (z *Reader) saveCheckpoint() {
	if !z.wantCkpt || z.ckptTried {
		return
	}
	z.ckptTried = true
	h := &z.h
	if z.donor != nil || z.nprob > 0 || len(z.spans) > 0 || len(z.hold.spans) > 0 ||
		len(h.taints) > 0 || z.pending > 0 || len(z.losses) > 0 || z.cp.valid {
		return
	}
	z.hashSync()
	out := h.pos()
	hashed := z.bgFrom
	// (the hash may run ahead of the release point only at a frame's
	// start, where the previous frame's held output was hashed to check
	// its checksum: then the current frame's hash is empty)
	if !z.exact || hashed > z.hold.rel && hashed != h.frameStart || hashed < h.base {
		return
	}
	lo := max(h.base, min(hashed, out-int64(max(h.window, ckptBack))))
	if out-lo > maxCheckpointWindow {
		return
	}
	c := &Checkpoint{In: z.in.keep, Out: out, base: lo, hashed: hashed}
	c.win = append([]byte(nil), h.buf[lo-h.base:h.w]...)
	c.hist = history{window: h.window, frameStart: h.frameStart, limit: h.limit, extra: h.extra, floor: h.floor}
	c.run = z.run
	c.dec.save(&z.d)
	c.dec.detach(&z.d)
	c.hold = holder{rel: z.hold.rel, marks: append([]mark(nil), z.hold.marks[z.hold.head:]...)}
	c.sv = salvage{distrustPrev: z.sv.distrustPrev, fix: z.sv.fix, skipped: z.sv.skipped}
	c.gap = z.gap
	z.ckpt.Store(c)
}

// errCheckpoint refuses a resume the checkpoint cannot give.
var errCheckpoint = errors.New("zstd: cannot resume from this checkpoint")

// ResumeReader returns a Reader that continues from the checkpoint c that a
// first pass over the same stream saved: r must deliver the stream from
// input offset c.In on. Its output starts at output offset from (c.From()
// ≤ from ≤ c.Out): the bytes before c.Out come from the checkpoint, those
// after from decoding; its spans, problems and checksum verdict are those
// a Reader started at the stream's beginning would report, with the
// output offsets of the whole stream (spans before from are not reported:
// the checkpoint lies before any damage).
func ResumeReader(r io.Reader, opt codec.Options, c *Checkpoint, from int64) (*Reader, error) {
	if c == nil || from < c.base || from > c.Out {
		return nil, errCheckpoint
	}
	z := newReader(r, opt, config{})
	z.in.off, z.in.keep = c.In, c.In
	h := &z.h
	donor := h.donor
	*h = c.hist
	h.donor = donor
	h.base = c.base
	h.buf = make([]byte, max(len(c.win)+4*maxBlockSize, min(h.limit, len(c.win)+(1<<20))))
	h.w = copy(h.buf, c.win)
	h.r = int(from - c.base)
	z.run = c.run
	c.dec.restore(&z.d)
	z.hold = holder{rel: c.hold.rel, marks: append([]mark(nil), c.hold.marks...)}
	z.sv.distrustPrev, z.sv.fix, z.sv.skipped = c.sv.distrustPrev, c.sv.fix, c.sv.skipped
	z.gap = c.gap
	z.bgFrom = h.pos()
	z.hashed = c.hashed
	if z.donor == nil {
		// a first pass hashes output as it is decoded (hashHeld)
		z.hash.Write(h.buf[c.hashed-c.base : h.w])
		z.hashed = h.pos()
	}
	z.ckptTried = true
	return z, nil
}

// ckptTouched drops the checkpoint when output its hash covers becomes
// damaged (it cannot: that output is released).
func (z *Reader) ckptTouched(off int64) {
	if c := z.ckpt.Load(); c != nil && off < c.hashed {
		z.ckpt.Store(nil)
	}
}

// hashHeld, in a first pass keeping a checkpoint, hashes the held output
// the lagging clean path left unhashed (at the end of a clean frame, and
// at the handover, before the salvage decoder hashes its output).
func (z *Reader) hashHeld() {
	if !z.lagHash {
		return
	}
	z.lagHash = false
	z.hashSync()
	z.lagHash = true
}

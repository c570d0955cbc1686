package zstd

import (
	"fmt"

	"github.com/vzsalvage/vzsalvage/codec"
)

// The salvage policy.
//
// The Reader's block loop (blocks.go) decodes with a plain block decoder
// (decoder) and asks the policy what to make of the input: whether a block
// header can be right, whether the chain of headers holds, what a
// compressed block that failed (or decoded suspiciously) means for it and
// for the blocks before it, and, where the chain broke, where to resume
// and what the skipped input cost. The output account (hold.go) and the
// losses (resize.go) record what the policy decides.

// salvage is the salvage policy of one Reader, with its scratch state.
type salvage struct {
	z     *Reader
	trial decoder // scratch decoder for trial decoding during a scan

	pre, post    decState // decoder state before and after a block that failed (prevSuspect)
	distrustPrev bool     // the next resync taints the block before it, full or not

	fix         headerFix // a rebuilt block header ahead (repair.go)
	skipped     int64     // the raw or RLE block the latest scan resumed after, or -1
	save, save2 decState  // decoder states kept during a trial
}

func (s *salvage) init(z *Reader) {
	s.z = z
	s.trial.h = &z.h
	s.fix.at = -1
}

// chainLen is how many consecutive plausible block headers a resync
// candidate needs (fewer when the frame or the input ends first).
const chainLen = 4

// zeroRunMin is the shortest run of 0x00 or 0xFF bytes taken as media
// damage inside entropy-coded data.
const zeroRunMin = 512

// plausible reports whether a block header can be right where a block is
// expected: a valid type and size, and not three zero bytes that are not a
// frame's last block (an empty raw block, which encoders do not write but
// zeroed media does).
func plausible(bh blockHeader, blockMax int) bool {
	if bh.check(blockMax) != "" {
		return false
	}
	switch bh.typ {
	case blockRaw:
		return bh.size > 0 || bh.last
	case blockRLE:
		return bh.size > 0
	}
	return bh.size >= 2 // a literals and a sequences section header
}

// headerProblem returns why a block header cannot be where a block is
// expected, or "": in strict mode only what RFC 8878 forbids (it allows
// empty raw blocks), when salvaging whatever is not plausible.
func (s *salvage) headerProblem(bh blockHeader) string {
	msg := bh.check(s.z.fh.blockMax)
	if msg == "" && !s.z.strict && !plausible(bh, s.z.fh.blockMax) {
		msg = "empty raw block"
	}
	return msg
}

// beforeCompressed is called before a compressed block is decoded: it
// keeps the decoder state the block starts from (see prevSuspect).
func (s *salvage) beforeCompressed() {
	if !s.z.strict {
		s.pre.save(&s.z.d)
	}
	s.z.d.lossBefore = !s.z.strict && s.z.h.floor > s.z.h.frameStart
}

// compressed judges a compressed block just decoded (b.res): a failure,
// output that depends on lost state, or a run of zero bytes in its
// entropy-coded part. It reports true when it has dealt with the block
// (rolled back and resynchronised, or made it a lost block), and the
// error to stop with.
func (s *salvage) compressed(b *block) (bool, error) {
	z := s.z
	res := &b.res
	if res.err != nil && !z.strict && s.prevSuspect(b.content) {
		// The block before probably decoded wrongly without an error
		// (a bit flip in its sequences), leaving state this block
		// cannot use: distrust it too, its length included.
		if err := z.problem(z.pos, codec.ErrCorrupt, res.err.Error()+" (the block before left wrong state)"); err != nil {
			return true, err
		}
		b.rollback(&z.h)
		s.distrustPrev = true
		return true, s.resync(z.pos)
	}
	if res.err == nil && !res.lost && !res.tainted {
		if n := zeroRun(entropyPart(b.content)); n > 0 {
			res.err = fmt.Errorf("run of %d zero or 0xFF bytes in entropy-coded data", n)
			res.tainted = true
			z.d.forget()
		}
	}
	if res.err != nil {
		if err := z.problem(z.pos, codec.ErrCorrupt, res.err.Error()); err != nil {
			return true, err
		}
		s.retaintSoft(z.pos, b.start)
	} else if z.strict && (res.lost || res.tainted) {
		return true, z.problem(z.pos, codec.ErrCorrupt, "block needs decoder state that could not be rebuilt")
	}
	if res.lost {
		// The output length is unknown: a Resync loss of one block.
		b.rollback(&z.h)
		b.rec.Out, b.rec.N = z.lose(0, true)
		b.rec.Placeholder = true
		z.endBlock(b.bh, b.rec)
		z.markBlock(z.pos, false)
		z.saveResume()
		return true, nil
	}
	if res.tainted {
		z.h.truncateTaints(b.start)
		z.h.addTaint(b.start, z.h.pos(), lvTainted)
		z.donateBlock(b.start, b.w0)
	}
	return false, nil
}

// kept is called for each block decoded and kept: the raw block a resync
// scan resumed at (run.distrust), a block whose input touches bytes that
// may be wrong (Options.Distrust), and a raw or RLE block right after a
// loss that no checked chain follows (unproven), are kept but tainted.
func (s *salvage) kept(b *block) {
	z := s.z
	if z.distrust || z.cfg.distrusted(z.pos, int64(3+b.bh.clen)) || s.unproven(b) {
		z.h.truncateTaints(b.start)
		z.h.addTaint(b.start, z.h.pos(), lvTainted)
		z.distrust = false
	}
}

// unproven reports whether b is a raw or RLE block right after a loss (a
// block lost or skipped just before it) that does not start a chain
// chainOK accepts. Garbage that reached the end of the lost block may
// have replaced the next header too, and a raw or RLE block proves
// nothing by decoding: one read in the garbage as the frame's last block
// passes chainBroken where the input ends early (stress seed 8948: an RLE
// "block" of 85,834 bytes out of the last 7 bytes of the stream).
func (s *salvage) unproven(b *block) bool {
	z := s.z
	return z.afterResync && b.bh.typ != blockCompressed && !s.chainOK(z.pos, z.fh.blockMax)
}

// retaint applies the chain-break rule (see hold.go) for a break at input
// offset x: the held output of the blocks whose input meets [x-holdIn, x)
// becomes tainted, but for a full compressed block where the walk back
// stops (see mark.full) unless force is set.
func (s *salvage) retaint(x int64, force bool) {
	s.retaintFrom(x, s.z.h.pos()+s.z.pending, force, false)
}

// retaintSoft taints only the raw and RLE blocks just before input offset
// x, where a compressed block failed to decode: a garbage run that began
// inside a raw block passes silently there, and may have reached x with the
// header there still plausible. end is where the failed block's output
// starts: that output is the caller's to account for (tainted, or dropped
// as lost), and tainting it here too would report it twice.
func (s *salvage) retaintSoft(x, end int64) { s.retaintFrom(x, end, false, true) }

// retaintFrom taints the held output from where the walk back from x
// stops (only raw and RLE blocks with softOnly) up to cur.
func (s *salvage) retaintFrom(x, cur int64, force, softOnly bool) {
	z := s.z
	z.releaseHeld()
	hd := &z.hold
	if len(hd.marks) == hd.head {
		return
	}
	i := len(hd.marks) - 1
	for i > hd.head && hd.marks[i].soft && hd.marks[i-1].in > x-holdIn {
		i--
	}
	a := hd.rel
	if i > hd.head {
		a = hd.marks[i-1].out
	}
	if m := hd.marks[i]; m.full && m.in <= x && !force || softOnly && !m.soft {
		a = max(a, m.out)
	}
	z.taintHeld(a, cur)
}

// prevSuspect reports, for a compressed block that failed to decode,
// whether the state the block before left may be to blame: that block was
// the first of the frame to decode to less than Block_Maximum_Size, or this
// block decodes when the repeat offsets are taken as unknown. The decoder
// state is as the failed decode left it.
func (s *salvage) prevSuspect(content []byte) bool {
	z := s.z
	if n := len(z.hold.marks); n > z.hold.head && z.hold.marks[n-1].deviant {
		return true
	}
	s.post.save(&z.d)
	s.pre.restore(&z.d)
	if z.d.reps == [3]uint32{} {
		s.post.restore(&z.d)
		return false // unknown already: the failure is this block's own
	}
	z.d.reps = [3]uint32{}
	res := z.d.decodeCompressed(content, modeCheck)
	s.post.restore(&z.d)
	return res.err == nil
}

// chainBroken reports whether the header after the block at p (header bh)
// is implausible, or a frame's last block (this one or the next) is not
// followed by its checksum and then the end of the input or another frame:
// a garbage run often holds a plausible header with the last-block flag,
// which would end the frame early. The end of the input is not a broken
// chain.
func (s *salvage) chainBroken(p int64, bh blockHeader) bool {
	z := s.z
	next := p + 3 + int64(bh.clen)
	if bh.last {
		return !s.frameEndOK(next)
	}
	b := z.in.at(next, 3)
	if len(b) < 3 {
		return false
	}
	nh := parseBlockHeader(b)
	if next == s.fix.at {
		nh = s.fix.bh
	}
	if !plausible(nh, z.fh.blockMax) {
		return true
	}
	return nh.last && !s.frameEndOK(next+3+int64(nh.clen))
}

// frameEndOK reports whether a frame whose last block ends at p is followed
// by its checksum and then the end of the input or a frame's magic. After a
// damaged frame header, whether there is a checksum is not known.
func (s *salvage) frameEndOK(p int64) bool {
	z := s.z
	if z.fhDamaged {
		return frameEndsAt(&z.in, p, false) || frameEndsAt(&z.in, p, true)
	}
	return frameEndsAt(&z.in, p, z.fh.checksum)
}

// frameEndsExactly reports whether the input ends exactly at p or a frame
// (or skippable frame) starts there.
func frameEndsExactly(in *input, p int64) bool {
	if len(in.at(p, 1)) == 0 {
		return len(in.at(p-1, 1)) == 1
	}
	m := in.at(p, 4)
	return len(m) == 4 && (le32(m) == frameMagic || le32(m)&skippableMask == skippableMagicLow)
}

// frameEndsAt reports whether a frame whose last block ends at p can end
// there: its checksum (if any) and then the end of the input (even inside
// the checksum: truncation) or a frame's magic.
func frameEndsAt(in *input, p int64, checksum bool) bool {
	if checksum {
		p += 4
	}
	m := in.at(p, 4)
	return len(m) < 4 || le32(m) == frameMagic || le32(m)&skippableMask == skippableMagicLow
}

// resync skips damaged input from off, where the chain of block headers
// broke: it taints what the blocks just before the break produced (see
// holdIn), scans for the next place where a plausible chain of block
// headers (or a new frame) starts and survives trial decoding, and emits a
// Resync loss for what the skipped input held.
func (s *salvage) resync(off int64) error {
	z := s.z
	if z.strict {
		return fmt.Errorf("zstd: cannot resynchronise in strict mode: %w", codec.ErrCorrupt)
	}
	s.retaint(off, s.distrustPrev)
	s.distrustPrev = false
	z.in.unpin()
	c, newFrame := s.scan(off + 1)
	return s.resume(off, c, newFrame)
}

// resume ends a resync from off: decoding resumes at c (a frame there if
// newFrame), and what lies between is a Resync loss.
func (s *salvage) resume(off, c int64, newFrame bool) error {
	z := s.z
	s.fix.at = -1
	at, grow := z.lose(c-off, false)
	if z.cfg.trace != nil {
		z.cfg.trace(blockRecord{In: off, Out: at, N: grow, Placeholder: true})
	}
	z.d.forget()
	z.pos = c
	z.in.release(c - retainBlocks*int64(z.fh.blockMax))
	if newFrame {
		z.sums[sumUnknown]++
		z.state = stFrame
	}
	z.saveResume()
	if z.in.atEnd(c) {
		return z.truncated(off, "no valid block found after damage up to the end of the input")
	}
	return nil
}

// scan returns the first offset at or after from where a block chain or a
// frame starts, and whether it is a frame; the input's end if none.
func (s *salvage) scan(from int64) (int64, bool) {
	z := s.z
	s.skipped = -1
	z.distrust = false
	const win = 64 << 10
	for c := from; ; {
		b := z.in.at(c, win+3)
		if len(b) < 3 {
			return c + int64(len(b)), false
		}
		for i := 0; i+3 <= len(b) && i < win; i++ {
			// Any read below may move the buffer b lies in (see input.at).
			b = z.in.at(c, win+3)
			p := c + int64(i)
			if i+4 <= len(b) && le32(b[i:]) == frameMagic {
				if fb := z.in.at(p, 18); len(fb) >= 5 {
					if fh, err := parseFrameHeader(fb); err == nil && s.chainOK(p+int64(fh.size), fh.blockMax) {
						return p, true
					}
				}
			}
			bh := parseBlockHeader(b[i:])
			if !plausible(bh, z.fh.blockMax) {
				continue
			}
			if s.chainOK(p, z.fh.blockMax) {
				if bh.typ == blockCompressed {
					return p, false
				}
				// A raw or RLE block's content proves nothing, and some
				// 3 bytes before a true block start read as one that lands
				// on it about once in 32: resume at the block it leads to.
				// An RLE block's output joins the loss; a raw block's
				// (an intact one right after the damage is common, and an
				// extent header in it can still be checked by its MD5) is
				// kept but tainted (see run.distrust).
				if q := p + 3 + int64(bh.clen); !bh.last && s.chainOK(q, z.fh.blockMax) {
					// A true compressed block inside what it spans wins (a
					// raw header read in the garbage may span the first
					// intact block).
					if c, ok := s.compressedChainIn(p+1, q); ok {
						return c, false
					}
					if bh.typ == blockRaw {
						z.distrust = true
						return p, false
					}
					s.skipped = p
					return q, false
				}
			}
		}
		if c+win-from > repairReach {
			z.in.release(c + win - 64)
		}
		c += win
	}
}

// compressedChainIn returns the first offset in [lo, hi) where a
// compressed block starts a chain (see chainOK).
func (s *salvage) compressedChainIn(lo, hi int64) (int64, bool) {
	z := s.z
	for c := lo; c < hi; c++ {
		b := z.in.at(c, 3)
		if len(b) < 3 {
			return 0, false
		}
		if bh := parseBlockHeader(b); bh.typ == blockCompressed && plausible(bh, z.fh.blockMax) && s.chainOK(c, z.fh.blockMax) {
			return c, true
		}
	}
	return 0, false
}

// chainOK reports whether p starts a chain of plausible block headers whose
// compressed blocks pass trial decoding (from unknown state: what needs
// lost tables cannot be checked and is accepted). A chain may be shorter
// than chainLen only if it ends with a frame's last block followed by the
// checksum and then exactly the end of the input or another frame, or with
// the end of the input exactly at a block header, and holds a compressed
// block that passed: raw and RLE blocks prove nothing, and among the
// offsets a scan tries, some read as a raw last block that ends just where
// the checksum does (measured: once in 6,000 garbage runs near the end).
func (s *salvage) chainOK(p int64, blockMax int) bool {
	s.trial.resetFrame(blockMax)
	s.trial.forget()
	return s.chainFrom(p, blockMax)
}

// chainFrom is chainOK with the trial decoder's state as it is: unknown
// for a scan, the state a block left for a repair (see repair.go).
func (s *salvage) chainFrom(p int64, blockMax int) bool {
	z := s.z
	decoded := false
	for k := 0; k < chainLen; k++ {
		hb := z.in.at(p, 3)
		if len(hb) < 3 {
			return k > 0 && len(hb) == 0 && decoded
		}
		bh := parseBlockHeader(hb)
		if !plausible(bh, blockMax) {
			return false
		}
		// A chain cut by the end of the input proves nothing: garbage near
		// the end passes one or two blocks' checks too easily.
		if len(z.in.at(p+3+int64(bh.clen)-1, 1)) == 0 {
			return false
		}
		if bh.typ == blockCompressed {
			c := z.in.at(p+3, bh.clen)
			if !litSane(c, bh.clen, blockMax) {
				return false
			}
			if res := s.trial.decodeCompressed(c, modeCheck); res.err != nil {
				return false
			}
			decoded = true
		}
		p += 3 + int64(bh.clen)
		if bh.last {
			if !decoded {
				return false
			}
			if z.fh.checksum || z.fhDamaged {
				if frameEndsExactly(&z.in, p+4) {
					return len(z.in.at(p, 4)) == 4
				}
				if z.fh.checksum {
					return false
				}
			}
			return frameEndsExactly(&z.in, p)
		}
	}
	return true
}

// estimate returns the likely and the largest output length of a loss of
// skipped compressed bytes and lost blocks.
//
// zstd up to 1.5.6 makes every block but a frame's last exactly
// Block_Maximum_Size: when every block decoded so far was, the estimate is
// a whole number of blocks, guessed from the average compressed block
// size. Otherwise (zstd 1.5.7 sizes blocks by content) it is the frame's
// compression ratio applied to the skipped bytes, in 8 KiB units.
func (s *salvage) estimate(skipped, lost int64) (est, maxLen int64) {
	z := s.z
	bm := int64(z.fh.blockMax)
	est, maxLen = lost*bm, lost*bm
	if skipped <= 0 {
		return est, maxLen
	}
	maxLen += (skipped/4 + 1) * bm // every block takes at least 4 bytes
	switch {
	case z.decN > 0 && z.decOut != z.decN*bm && z.decIn > 0:
		const unit = 8 << 10
		e := int64(float64(skipped)*float64(z.decOut)/float64(z.decIn)/unit+0.5) * unit
		est += max(e, unit)
	default:
		avg := int64(32 << 10)
		if z.decN > 0 {
			avg = max(z.decIn/z.decN, 64)
		} else if z.nblocks > 0 {
			avg = max(z.blkIn/z.nblocks, 64)
		}
		est += max(1, (skipped+avg/2)/avg) * bm
	}
	return min(est, maxLen), maxLen
}

// litSane checks a compressed block's literals section header.
func litSane(c []byte, clen, blockMax int) bool {
	lh, err := parseLitHeader(c)
	if err != nil || lh.regen > blockMax || lh.hsize+lh.csize >= clen {
		return false
	}
	if lh.typ >= litCompressed && (lh.csize == 0 || lh.csize > lh.regen) {
		return false
	}
	return true
}

// entropyPart returns the part of a compressed block's content that is
// entropy-coded (everything but raw or RLE literals).
func entropyPart(c []byte) []byte {
	lh, err := parseLitHeader(c)
	if err != nil || lh.hsize+lh.csize > len(c) {
		return c
	}
	if lh.typ <= litRLE {
		return c[lh.hsize+lh.csize:]
	}
	return c
}

// zeroRun returns the length of the first run of at least zeroRunMin bytes
// that are all 0x00 or all 0xFF, or 0.
func zeroRun(b []byte) int {
	const step = zeroRunMin / 2
	for i := step - 1; i < len(b); i += step {
		v := b[i]
		if v != 0 && v != 0xFF {
			continue
		}
		lo, hi := i, i
		for lo > 0 && b[lo-1] == v {
			lo--
		}
		for hi+1 < len(b) && b[hi+1] == v {
			hi++
		}
		if hi-lo+1 >= zeroRunMin {
			return hi - lo + 1
		}
		i = hi
	}
	return 0
}

package zstd

import (
	"fmt"

	"github.com/vzsalvage/vzsalvage/codec"
)

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

// stepBlock decodes the block at pos with our decoder.
func (z *Reader) stepBlock() error {
	hb := z.in.at(z.pos, 3)
	if len(hb) < 3 {
		return z.truncated(z.pos, "input ends inside a block header")
	}
	bh := parseBlockHeader(hb)
	ok := plausible(bh, z.fh.blockMax)
	if z.strict {
		ok = bh.check(z.fh.blockMax) == "" // RFC 8878 allows empty raw blocks
	}
	if !ok {
		msg := bh.check(z.fh.blockMax)
		if msg == "" {
			msg = "empty raw block"
		}
		if err := z.problem(z.pos, codec.ErrCorrupt, "bad block header: "+msg); err != nil {
			return err
		}
		return z.resync(z.pos)
	}
	if len(z.in.at(z.pos+3, bh.clen)) < bh.clen {
		return z.truncated(z.pos, "input ends inside a block")
	}
	if !z.strict && z.chainBroken(z.pos, bh) {
		// The header looks valid but the next one does not: the size (or
		// the header) is damaged.
		z.problem(z.pos, codec.ErrCorrupt, "block header does not lead to a valid block")
		return z.resync(z.pos)
	}
	content := z.in.at(z.pos+3, bh.clen) // after chainBroken's reads (see input.at)
	z.h.reserve(z.fh.blockMax)
	start := z.h.pos()
	w0 := z.h.w
	rec := blockRecord{In: z.pos, Out: start}
	switch bh.typ {
	case blockRaw:
		copy(z.h.buf[w0:], content)
		z.h.w += len(content)
	case blockRLE:
		b := z.h.buf[w0 : w0+bh.size]
		for i := range b {
			b[i] = content[0]
		}
		z.h.w += bh.size
	case blockCompressed:
		if !z.strict {
			z.pre.save(&z.d)
		}
		z.d.lossBefore = !z.strict && z.h.floor > z.h.frameStart
		res := z.d.decodeCompressed(content, modeFull)
		if res.err != nil && !z.strict && z.prevSuspect(content) {
			// The block before probably decoded wrongly without an error
			// (a bit flip in its sequences), leaving state this block
			// cannot use: distrust it too, its length included.
			if err := z.problem(z.pos, codec.ErrCorrupt, res.err.Error()+" (the block before left wrong state)"); err != nil {
				return err
			}
			z.h.truncateTaints(start)
			z.h.w = w0
			z.distrustPrev = true
			return z.resync(z.pos)
		}
		if res.err == nil && !res.lost && !res.tainted {
			if n := zeroRun(entropyPart(content)); n > 0 {
				res.err = fmt.Errorf("run of %d zero or 0xFF bytes in entropy-coded data", n)
				res.tainted = true
				z.d.forget()
			}
		}
		if res.err != nil {
			if err := z.problem(z.pos, codec.ErrCorrupt, res.err.Error()); err != nil {
				return err
			}
			z.retaintSoft(z.pos, start)
		} else if z.strict && (res.lost || res.tainted) {
			return z.problem(z.pos, codec.ErrCorrupt, "block needs decoder state that could not be rebuilt")
		}
		if res.lost {
			// The output length is unknown: a Resync loss of one block.
			z.h.truncateTaints(start)
			z.h.w = w0
			rec.Out, rec.N = z.lose(0, true)
			rec.Placeholder = true
			z.endBlock(bh, rec)
			z.markBlock(z.pos, bh.typ != blockCompressed)
			z.saveResume()
			return nil
		}
		if res.tainted {
			z.h.truncateTaints(start)
			z.h.addTaint(start, z.h.pos(), lvTainted)
			z.donateBlock(start, w0)
		}
	}
	if z.distrust {
		// The raw block the resync scan resumed at.
		z.h.truncateTaints(start)
		z.h.addTaint(start, z.h.pos(), lvTainted)
		z.distrust = false
	}
	if z.cfg.loseBlocks[z.pos] {
		// An oracle measurement: the block is decoded and its state kept
		// (its length too), but its output is unknown: placeholder zeros,
		// as for a lost block, so that neither later copies of it nor the
		// layer above (an extent header in it) learn its content; a raw
		// block shows what the damaged input holds there, as it would to
		// any decoder.
		clear(z.h.buf[w0:z.h.w])
		if seen := z.cfg.seen; bh.typ == blockRaw && z.pos+3 < int64(len(seen)) {
			copy(z.h.buf[w0:z.h.w], seen[z.pos+3:])
		}
		z.h.truncateTaints(start)
		z.h.addTaint(start, z.h.pos(), lvLost)
	}
	if z.afterResync && z.resumeKnown(start, w0) {
		return nil
	}
	rec.N = z.h.pos() - start
	z.afterResync = false
	z.decN++
	z.decIn += int64(3 + bh.clen)
	z.decOut += rec.N
	z.emitSpans(start, z.h.pos())
	z.frameN += rec.N
	z.hashOut(z.h.buf[w0:z.h.w])
	z.endBlock(bh, rec)
	z.markDecoded(z.pos, bh.typ != blockCompressed, rec.N)
	return nil
}

// endBlock moves past a block and, after the last one, checks the frame.
func (z *Reader) endBlock(bh blockHeader, rec blockRecord) {
	if z.cfg.trace != nil {
		z.cfg.trace(rec)
	}
	z.nblocks++
	z.blkIn += int64(3 + bh.clen)
	z.pos += int64(3 + bh.clen)
	z.in.release(z.pos - retainBlocks*int64(z.fh.blockMax))
	if !bh.last {
		return
	}
	z.flushPending()
	z.state = stFrame
	if z.exact && z.fh.contentSize >= 0 && z.frameN != z.fh.contentSize {
		if err := z.problem(z.pos, codec.ErrCorrupt, fmt.Sprintf("frame content size %d, decoded %d", z.fh.contentSize, z.frameN)); err != nil {
			z.err = err
			return
		}
	}
	if z.fhDamaged {
		z.sums[sumUnknown]++
		return
	}
	if !z.fh.checksum {
		z.sums[sumAbsent]++
		return
	}
	b := z.in.at(z.pos, 4)
	if len(b) < 4 {
		if err := z.truncated(z.pos, "input ends inside the frame checksum"); err != nil {
			z.err = err
		}
		return
	}
	z.pos += 4
	if err := z.checkSum(z.pos-4, le32(b)); err != nil {
		z.err = err
	}
}

// emitSpans turns the taints of [start, end) into spans and reports
// whether there were any. A block with many small taints becomes one span.
func (z *Reader) emitSpans(start, end int64) bool {
	ts := z.h.taints
	i := len(ts)
	for i > 0 && ts[i-1].end > start {
		i--
	}
	ts = ts[i:]
	if len(ts) == 0 {
		return false
	}
	// Taints of one kind (Cond, or not) closer than mergeGap become one
	// span: thousands of tiny spans help nobody. Cond and plain taints are
	// never merged, or Cond bytes would be lost to the worse state (this
	// costs spans: measured, up to ~300 000 per 26 MB after one loss).
	const mergeGap = 64
	a, b, st := max(ts[0].start, start), min(ts[0].end, end), ts[0].state
	for _, t := range ts[1:] {
		if t.start-b < mergeGap && t.state.class() == st.class() {
			b, st = min(t.end, end), max(st, t.state)
			continue
		}
		z.holdSpan(levelSpan(a, b, st))
		a, b, st = t.start, min(t.end, end), t.state
	}
	z.holdSpan(levelSpan(a, b, st))
	return true
}

func levelSpan(a, b int64, lv level) codec.Span {
	st, cond := lv.span()
	return codec.Span{Off: a, Len: b - a, State: st, Cond: cond, Donor: lv == lvDonor}
}

// prevSuspect reports, for a compressed block that failed to decode,
// whether the state the block before left may be to blame: that block was
// the first of the frame to decode to less than Block_Maximum_Size, or this
// block decodes when the repeat offsets are taken as unknown. The decoder
// state is as the failed decode left it.
func (z *Reader) prevSuspect(content []byte) bool {
	if n := len(z.hold.marks); n > z.hold.head && z.hold.marks[n-1].deviant {
		return true
	}
	z.post.save(&z.d)
	z.pre.restore(&z.d)
	if z.d.reps == [3]uint32{} {
		z.post.restore(&z.d)
		return false // unknown already: the failure is this block's own
	}
	z.d.reps = [3]uint32{}
	res := z.d.decodeCompressed(content, modeCheck)
	z.post.restore(&z.d)
	return res.err == nil
}

// chainBroken reports whether the header after the block at p (header bh)
// is implausible, or a frame's last block (this one or the next) is not
// followed by its checksum and then the end of the input or another frame:
// a garbage run often holds a plausible header with the last-block flag,
// which would end the frame early. The end of the input is not a broken
// chain.
func (z *Reader) chainBroken(p int64, bh blockHeader) bool {
	next := p + 3 + int64(bh.clen)
	if bh.last {
		return !z.frameEndOK(next)
	}
	b := z.in.at(next, 3)
	if len(b) < 3 {
		return false
	}
	nh := parseBlockHeader(b)
	if !plausible(nh, z.fh.blockMax) {
		return true
	}
	return nh.last && !z.frameEndOK(next+3+int64(nh.clen))
}

// frameEndOK reports whether a frame whose last block ends at p is followed
// by its checksum and then the end of the input or a frame's magic. After a
// damaged frame header, whether there is a checksum is not known.
func (z *Reader) frameEndOK(p int64) bool {
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
func (z *Reader) resync(off int64) error {
	if z.strict {
		return fmt.Errorf("zstd: cannot resynchronise in strict mode: %w", codec.ErrCorrupt)
	}
	z.retaint(off, z.distrustPrev)
	z.distrustPrev = false
	z.in.unpin()
	z.distrust = false
	c, newFrame := z.scan(off + 1)
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
func (z *Reader) scan(from int64) (int64, bool) {
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
					if fh, err := parseFrameHeader(fb); err == nil && z.chainOK(p+int64(fh.size), fh.blockMax) {
						return p, true
					}
				}
			}
			bh := parseBlockHeader(b[i:])
			if !plausible(bh, z.fh.blockMax) {
				continue
			}
			if z.chainOK(p, z.fh.blockMax) {
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
				if q := p + 3 + int64(bh.clen); !bh.last && z.chainOK(q, z.fh.blockMax) {
					// A true compressed block inside what it spans wins (a
					// raw header read in the garbage may span the first
					// intact block).
					if c, ok := z.compressedChainIn(p+1, q); ok {
						return c, false
					}
					if bh.typ == blockRaw {
						z.distrust = true
						return p, false
					}
					return q, false
				}
			}
		}
		z.in.release(c + win - 64)
		c += win
	}
}

// compressedChainIn returns the first offset in [lo, hi) where a
// compressed block starts a chain (see chainOK).
func (z *Reader) compressedChainIn(lo, hi int64) (int64, bool) {
	for c := lo; c < hi; c++ {
		b := z.in.at(c, 3)
		if len(b) < 3 {
			return 0, false
		}
		if bh := parseBlockHeader(b); bh.typ == blockCompressed && plausible(bh, z.fh.blockMax) && z.chainOK(c, z.fh.blockMax) {
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
func (z *Reader) chainOK(p int64, blockMax int) bool {
	z.trial.resetFrame(blockMax)
	z.trial.forget()
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
			if res := z.trial.decodeCompressed(c, modeCheck); res.err != nil {
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

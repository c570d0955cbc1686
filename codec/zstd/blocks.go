package zstd

import (
	"fmt"

	"github.com/vzsalvage/vzsalvage/codec"
)

// The block loop of our decoder: one block at a time, the plain block
// decoder (decoder.decodeBlock) writes its output into the history, the
// salvage policy (salvage.go) judges headers, chains and failed blocks,
// and the output account (hold.go) records what came out.

// stepBlock decodes the block at pos with our decoder.
func (z *Reader) stepBlock() error {
	hb := z.in.at(z.pos, 3)
	if len(hb) < 3 {
		return z.truncated(z.pos, "input ends inside a block header")
	}
	bh := parseBlockHeader(hb)
	fixed, taint := false, false
	if z.sv.fix.at == z.pos {
		fixed = true
		bh, taint = z.sv.useFix()
	} else if msg := z.sv.headerProblem(bh); msg != "" {
		if z.strict {
			return z.problem(z.pos, codec.ErrCorrupt, "bad block header: "+msg)
		}
		return z.sv.chainBreak(z.pos, "bad block header: "+msg)
	}
	if len(z.in.at(z.pos+3, bh.clen)) < bh.clen {
		return z.truncated(z.pos, "input ends inside a block")
	}
	if !z.strict && !fixed && z.sv.chainBroken(z.pos, bh) {
		// The header looks valid but the next one does not: the size (or
		// the header) is damaged.
		return z.sv.chainBreak(z.pos, "block header does not lead to a valid block")
	}
	content := z.in.at(z.pos+3, bh.clen) // after chainBroken's reads (see input.at)
	z.h.reserve(z.fh.blockMax)
	z.h.boundTaints()
	b := &z.blk // reused: a block escapes to the salvage policy's methods
	*b = block{bh: bh, content: content, start: z.h.pos(), w0: z.h.w}
	b.rec = blockRecord{In: z.pos, Out: b.start}
	if bh.typ == blockCompressed {
		z.sv.beforeCompressed()
	}
	b.res = z.d.decodeBlock(bh, content)
	if taint {
		z.h.addTaint(b.start, z.h.pos(), lvTainted)
		z.donateBlock(b.start, b.w0)
	}
	if bh.typ == blockCompressed {
		if done, err := z.sv.compressed(b); done || err != nil {
			return err
		}
	}
	z.sv.kept(b)
	if z.cfg.decoded != nil {
		z.cfg.decoded(z, b)
	}
	if z.afterResync && z.resumeKnown(b.start, b.w0) {
		return nil
	}
	b.rec.N = z.h.pos() - b.start
	z.afterResync = false
	z.decN++
	z.decIn += int64(3 + bh.clen)
	z.decOut += b.rec.N
	z.emitSpans(b.start, z.h.pos())
	z.frameN += b.rec.N
	z.hashOut(z.h.buf[b.w0:z.h.w])
	z.endBlock(bh, b.rec)
	z.markDecoded(z.pos, bh.typ != blockCompressed, b.rec.N)
	return nil
}

// block is a block being decoded at the Reader's pos: its header and
// content, where its output starts (absolute, and in the history's
// buffer), and how decoding went.
type block struct {
	bh      blockHeader
	content []byte
	start   int64
	w0      int
	res     blockResult
	rec     blockRecord
}

// rollback drops what the block wrote to the history.
func (b *block) rollback(h *history) {
	h.truncateTaints(b.start)
	h.w = b.w0
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

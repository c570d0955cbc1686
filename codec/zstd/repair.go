package zstd

import (
	"fmt"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// Rebuilt block headers.
//
// A garbled 3-byte block header leaves its block's content whole. When the
// chain of headers breaks at off and the resync scan finds it again at c,
// what lies between is usually one block whose header is damaged (or a
// block with a good header that leads to it): the chain fixes the damaged
// header's size (the distance to c), its type (a compressed block proves
// itself by decoding; a raw one is taken only as a whole Block_Maximum_Size)
// and its last flag (c is a header of the same frame, or the frame's end).
// The rebuilt block is kept when it decodes from the state the blocks
// before it left — to Block_Maximum_Size in a frame whose blocks all had
// that size — and the chain after it decodes from the state it leaves (or
// the frame ends right after it, when it is the last). Its output is then as good as
// any block's: nothing else is lost, the frame's output keeps its length
// and its checksum can be checked. A rebuilt raw block's bytes prove
// nothing: they are kept tainted, at their known length.

// repairReach bounds how far past a chain break a header repair looks:
// the block whose header is damaged and at most one before it.
const repairReach = 2 * (maxBlockSize + 3)

// headerFix is a rebuilt block header, used when decoding reaches at.
type headerFix struct {
	at    int64 // -1: none
	bh    blockHeader
	taint bool // the block's output is kept tainted (a raw block)
}

// chainBreak handles a chain of block headers that broke at input offset
// off (msg says how): it rebuilds a damaged header between off and where
// the chain is found again when it can, and otherwise reports msg and
// resynchronises.
func (s *salvage) chainBreak(off int64, msg string) error {
	z := s.z
	if z.cfg.noRepair || z.fhDamaged || s.distrustPrev {
		z.problem(off, codec.ErrCorrupt, msg)
		return s.resync(off)
	}
	c, newFrame := s.scan(off + 1)
	distrust := z.distrust // what this scan found at c (later scans reset it)
	if s.repairHeader(off, c, newFrame) {
		z.distrust = false
		return nil
	}
	z.distrust = distrust
	z.problem(off, codec.ErrCorrupt, msg)
	s.retaint(off, false)
	z.in.unpin()
	return s.resume(off, c, newFrame)
}

// repairHeader looks for a damaged block header in [off, c), where the
// chain broke and was found again, and rebuilds it (see headerFix): the
// headers from off that are plausible and lead to the next one before c
// are taken as they are, and each of them, the last first, is tried as the
// damaged one, its block reaching to c. A chain the scan finds inside the
// damaged header's block (trial decoding from unknown state passes now
// and then, and a raw block read in it may lead past the true next header)
// is passed over: the places after it where a chain starts are tried too,
// as far as a repair reaches.
func (s *salvage) repairHeader(off, c int64, newFrame bool) bool {
	for {
		// The scan may have resumed after a raw or RLE block, whose
		// content proves nothing: the chain may be found again at it.
		if p := s.skipped; p >= 0 && s.repairTo(off, p, false) {
			return true
		}
		if s.repairTo(off, c, newFrame) {
			return true
		}
		from := c + 1
		if s.skipped >= 0 {
			from = s.skipped + 1 // the true chain may start inside it
		} else if newFrame || s.z.in.atEnd(c) {
			return false
		}
		if from-off > repairReach {
			return false
		}
		c, newFrame = s.scan(from)
	}
}

// repairTo is repairHeader for the chain found again at c (a frame starts
// there if newFrame; the input may end there).
func (s *salvage) repairTo(off, c int64, newFrame bool) bool {
	z := s.z
	end, last := c, newFrame
	if z.in.atEnd(c) {
		// c may lie past the input's end: the end is where it is.
		end = off + int64(len(z.in.at(off, repairReach+8)))
		c, last = end, true
	}
	if last && z.fh.checksum {
		end -= 4
	}
	if end-off < 3+1 || end-off > repairReach {
		return false
	}
	walk := []int64{off}
	for p := off; len(walk) < 3; {
		hb := z.in.at(p, 3)
		if len(hb) < 3 {
			return false
		}
		bh := parseBlockHeader(hb)
		q := p + 3 + int64(bh.clen)
		if !plausible(bh, z.fh.blockMax) || bh.last || q >= end {
			break
		}
		walk = append(walk, q)
		p = q
	}
	for i := len(walk) - 1; i >= 0; i-- {
		x := walk[i]
		clen := int(end - x - 3)
		for _, typ := range []int{blockCompressed, blockRaw, blockRLE} {
			bh := blockHeader{last: last, typ: typ, size: clen, clen: clen}
			if typ == blockRLE {
				bh.size = z.fh.blockMax
			}
			if taint, ok := s.tryRebuilt(walk[:i], x, bh, c); ok {
				s.fix = headerFix{at: x, bh: bh, taint: taint}
				was := z.in.at(x, 3)
				what := fmt.Sprintf("%s block of %d bytes", blockTypeName(typ), bh.size)
				if last {
					what += ", the frame's last"
				}
				z.problemKind(x, damage.Repaired, fmt.Sprintf("block header repaired (it read %02x %02x %02x): %s", was[0], was[1], was[2], what))
				return true
			}
		}
	}
	return false
}

// tryRebuilt decodes the blocks at the offsets in kept (with their own
// headers) and then the block at x with header bh, and reports whether
// they pass (see headerFix) and whether x's output must be kept tainted.
// Nothing of it is kept: the decoder state and the output are restored.
func (s *salvage) tryRebuilt(kept []int64, x int64, bh blockHeader, c int64) (taint, ok bool) {
	z := s.z
	if bh.check(z.fh.blockMax) != "" || !plausible(bh, z.fh.blockMax) {
		return false, false
	}
	blockMax := int64(z.fh.blockMax)
	full := !z.notFull
	s.save.save(&z.d)
	z.h.reserve((len(kept) + 1) * z.fh.blockMax)
	start, w0 := z.h.pos(), z.h.w
	defer func() {
		z.h.truncateTaints(start)
		z.h.w = w0
		s.save.restore(&z.d)
	}()
	for _, p := range kept {
		hb := parseBlockHeader(z.in.at(p, 3))
		o := z.h.pos()
		if res := z.d.decodeBlock(hb, z.in.at(p+3, hb.clen)); res.err != nil || res.lost {
			return false, false
		}
		full = full && z.h.pos()-o == blockMax
	}
	o := z.h.pos()
	content := z.in.at(x+3, bh.clen)
	if len(content) < bh.clen {
		return false, false
	}
	switch bh.typ {
	case blockCompressed:
		if res := z.d.decodeBlock(bh, content); res.err != nil || res.lost {
			return false, false
		}
		if n := z.h.pos() - o; n == 0 || full && !bh.last && n != blockMax {
			return false, false
		}
	case blockRaw, blockRLE:
		// Only a frame whose blocks all have Block_Maximum_Size says that
		// a raw block is one (a whole block), or how long an RLE block is.
		if !full || bh.last || int64(bh.size) != blockMax || bh.typ == blockRLE && bh.clen != 1 {
			return false, false
		}
		z.d.decodeBlock(bh, content)
		taint = true
	}
	if bh.last {
		return false, frameEndsExactly(&z.in, c)
	}
	s.save2.save(&z.d)
	s.save2.restore(&s.trial)
	return taint, s.chainFrom(c, z.fh.blockMax)
}

// useFix returns the rebuilt header for the block at pos, which decoding
// has reached, and whether its output is kept tainted. The chain broke at
// the block: what the blocks before it produced is judged as for any break.
func (s *salvage) useFix() (blockHeader, bool) {
	f := s.fix
	s.fix = headerFix{at: -1}
	s.retaint(f.at, false)
	return f.bh, f.taint
}

// blockTypeName names a block type, with its article.
func blockTypeName(typ int) string {
	return [...]string{"a raw", "an RLE", "a compressed", "a reserved"}[typ&3]
}

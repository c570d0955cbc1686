package zstd

import (
	"errors"
	"fmt"
)

var (
	errOffset0 = errors.New("zstd: match offset 0")
	errSeqs    = errors.New("zstd: corrupt sequences section")
)

// resolveOffset returns the offset of a sequence whose offset value is
// ofv and literal length ll, and moves the repeat offsets r0, r1, r2 as
// RFC 8878 3.1.2.5 says. zero reports the one invalid case: repeat offset
// 1 minus one (offset 0); an unknown repeat offset (0) gives offset 0.
func resolveOffset(ofv, ll uint32, r0, r1, r2 *uint32) (off uint32, zero bool) {
	if ofv > 3 {
		off = ofv - 3
		*r0, *r1, *r2 = off, *r0, *r1
		return off, false
	}
	idx := ofv - 1
	if ll == 0 {
		idx++
	}
	switch idx {
	case 0:
		off = *r0
	case 1:
		off = *r1
		*r0, *r1 = off, *r0
	case 2:
		off = *r2
		*r0, *r1, *r2 = off, *r0, *r1
	default:
		if *r0 == 1 {
			return 0, true
		}
		if *r0 != 0 {
			off = *r0 - 1
		}
		*r0, *r1, *r2 = off, *r0, *r1
	}
	return off, false
}

// seq is one decoded sequence. off == 0 means the offset is a repeat
// offset that is unknown (lost with damaged input).
type seq struct{ ll, ml, off uint32 }

// decoder is the state of our own RFC 8878 block decoder: the entropy
// tables and repeat offsets carried from block to block, and where output
// goes. Any of them may be unknown after damage; then what depends on them
// is tainted, never guessed.
type decoder struct {
	h        *history
	blockMax int

	huf                 hufTable
	wt                  fseTable // scratch for Huffman weights
	llBuf, ofBuf, mlBuf fseTable
	ll, of, ml          *fseTable // current tables; nil: none defined yet in the frame
	reps                [3]uint32 // 0: unknown
	// hufDefined: a Huffman table was (or, for a lost block, may have
	// been) defined earlier in the frame.
	hufDefined bool
	// lossBefore: a loss of unknown length lies between the frame's start
	// and the output (set by the Reader before each block). A match that
	// then reaches before the frame's start shows that the loss was
	// longer than assumed, not that the block is corrupt: its bytes are
	// unknown.
	lossBefore bool

	lits []byte
	seqs []seq
}

// unknownTable stands for a table that a lost block may have replaced.
var unknownTable = &fseTable{}

// resetFrame sets the state a frame starts with.
func (d *decoder) resetFrame(blockMax int) {
	d.blockMax = blockMax
	d.huf.valid = false
	d.ll, d.of, d.ml = nil, nil, nil
	d.reps = [3]uint32{1, 4, 8}
	d.hufDefined = false
}

// forget makes every piece of carried state unknown.
func (d *decoder) forget() {
	d.forgetLits()
	d.forgetSeqs()
}

func (d *decoder) forgetLits() { d.huf.valid = false; d.hufDefined = true }

func (d *decoder) forgetSeqs() {
	d.ll, d.of, d.ml = unknownTable, unknownTable, unknownTable
	d.reps = [3]uint32{}
}

// blockResult says how one compressed block went.
type blockResult struct {
	err     error // a new problem found in this block, or nil
	lost    bool  // nothing was written and the output length is unknown
	tainted bool  // output was written, all of it to be taken as tainted
	// lost or tainted with err == nil: a consequence of earlier damage
	// (the block needs state that was lost), not a new problem.
}

// Modes of decodeCompressed.
const (
	modeFull  = iota // decode and write the output
	modeState        // only update the carried state (tables, repeat offsets)
	modeCheck        // decode everything but write nothing (trial decoding)
)

// decodeBlock decodes one block's content (header bh) into the history,
// which must have room for blockMax bytes: a raw block's content is copied,
// an RLE block's byte repeated, a compressed block decoded (decodeCompressed).
func (d *decoder) decodeBlock(bh blockHeader, content []byte) blockResult {
	h := d.h
	switch bh.typ {
	case blockRaw:
		h.w += copy(h.buf[h.w:], content)
	case blockRLE:
		b := h.buf[h.w : h.w+bh.size]
		for i := range b {
			b[i] = content[0]
		}
		h.w += bh.size
	case blockCompressed:
		return d.decodeCompressed(content, modeFull)
	}
	return blockResult{}
}

// decodeCompressed decodes a compressed block's content into the history
// (which must have room for blockMax bytes), or, by mode, only checks it
// or only updates the carried state.
func (d *decoder) decodeCompressed(src []byte, mode int) (res blockResult) {
	stateOnly := mode == modeState
	lh, err := parseLitHeader(src)
	if err == nil && (lh.regen > d.blockMax || lh.hsize+lh.csize > len(src) ||
		(lh.typ >= litCompressed && lh.csize == 0)) {
		err = errors.New("zstd: bad literals section header")
	}
	if err != nil {
		d.forget()
		return blockResult{err: err, lost: true}
	}
	body := src[lh.hsize : lh.hsize+lh.csize]
	litsLost := false
	var litErr error
	var lits []byte
	switch lh.typ {
	case litRaw:
		lits = body
	case litRLE:
		lits = d.litBuf(lh.regen)
		for i := range lits {
			lits[i] = body[0]
		}
	case litCompressed, litTreeless:
		if lh.streams == 4 && lh.regen < 4 {
			litErr = errHuffman
			d.huf.valid = false
			d.hufDefined = true
			break
		}
		if lh.typ == litCompressed {
			n, err := d.huf.read(body, &d.wt)
			d.hufDefined = true
			if err != nil {
				litErr = err
				break
			}
			body = body[n:]
		} else if !d.huf.valid {
			litsLost = true
			if !d.hufDefined {
				litErr = errors.New("zstd: treeless literals without a previous table")
			}
			break
		}
		if stateOnly {
			break
		}
		lits = d.litBuf(lh.regen)
		litErr = d.huf.decodeLiterals(lits, body, lh.streams)
	}
	if litErr != nil {
		litsLost = true
		res.err = litErr
	}
	if litsLost && !stateOnly {
		lits = d.litBuf(lh.regen)
		clear(lits)
	}

	// Sequences.
	ss := src[lh.hsize+lh.csize:]
	d.seqs = d.seqs[:0]
	nseq, cons, err := d.readSeqHeader(ss)
	if err == errUnknownTable {
		d.reps = [3]uint32{}
		res.lost = true
		return res
	}
	if err != nil {
		d.forgetSeqs()
		if res.err == nil {
			res.err = err
		}
		res.lost = true
		return res
	}
	if nseq == 0 {
		// No sequences: the output is the literals.
	} else if err := d.decodeSeqs(ss[cons:], nseq); err != nil {
		d.reps = [3]uint32{}
		if res.err == nil {
			res.err = err
		}
		res.lost = true
		return res
	}
	if mode != modeFull {
		return res
	}
	if err := d.execute(lits); err != nil {
		d.forgetSeqs()
		if res.err == nil {
			res.err = err
		}
		res.lost = true
		return res
	}
	if litsLost {
		res.tainted = true
	}
	return res
}

func (d *decoder) litBuf(n int) []byte {
	if cap(d.lits) < n {
		d.lits = make([]byte, n, max(n, maxBlockSize))
	}
	return d.lits[:n]
}

var errUnknownTable = errors.New("zstd: sequences need a table lost with earlier damage")

// readSeqHeader parses the sequences section header and tables and returns
// the number of sequences and the bytes consumed.
func (d *decoder) readSeqHeader(b []byte) (nseq, n int, err error) {
	if len(b) < 1 {
		return 0, 0, errSeqs
	}
	switch b0 := int(b[0]); {
	case b0 == 0:
		if len(b) != 1 {
			return 0, 0, errors.New("zstd: extraneous data after zero sequences")
		}
		return 0, 1, nil
	case b0 < 128:
		nseq, n = b0, 1
	case b0 < 255:
		if len(b) < 2 {
			return 0, 0, errSeqs
		}
		nseq, n = (b0-128)<<8|int(b[1]), 2
	default:
		if len(b) < 3 {
			return 0, 0, errSeqs
		}
		nseq, n = int(le16(b[1:]))+0x7F00, 3
	}
	if nseq == 0 {
		if n != len(b) {
			return 0, 0, errors.New("zstd: extraneous data after zero sequences")
		}
		return 0, n, nil
	}
	if nseq > d.blockMax {
		return 0, 0, errSeqs
	}
	if n >= len(b) {
		return 0, 0, errSeqs
	}
	modes := b[n]
	n++
	if modes&3 != 0 {
		return 0, 0, errors.New("zstd: reserved bits set in sequence modes")
	}
	var unknown bool
	for i, k := range [3]struct {
		cur    **fseTable
		buf    *fseTable
		pre    *fseTable
		maxSym int
		maxLog uint8
		base   []uint32
		bits   []uint8
	}{
		{&d.ll, &d.llBuf, &llPredef, 35, 9, llBase[:], llBits[:]},
		{&d.of, &d.ofBuf, &ofPredef, 31, 8, ofBase[:], ofBits[:]},
		{&d.ml, &d.mlBuf, &mlPredef, 52, 9, mlBase[:], mlBits[:]},
	} {
		switch (modes >> (6 - 2*i)) & 3 {
		case 0:
			*k.cur = k.pre
		case 1:
			if n >= len(b) {
				return 0, 0, errSeqs
			}
			if err := k.buf.buildRLE(b[n], k.base, k.bits); err != nil {
				return 0, 0, err
			}
			n++
			*k.cur = k.buf
		case 2:
			var norm [maxFSESymbols]int16
			nsym, log, c, err := readNCount(b[n:], &norm, k.maxSym, k.maxLog)
			if err != nil {
				return 0, 0, err
			}
			if err := k.buf.build(norm[:nsym], log, k.base, k.bits); err != nil {
				return 0, 0, err
			}
			n += c
			*k.cur = k.buf
		case 3:
			if *k.cur == nil {
				return 0, 0, errors.New("zstd: repeat mode without a previous table")
			}
			if !(*k.cur).valid {
				unknown = true
			}
		}
	}
	if unknown {
		return 0, 0, errUnknownTable
	}
	return nseq, n, nil
}

// decodeSeqs decodes nseq sequences from the bitstream b into d.seqs,
// resolving repeat offsets.
func (d *decoder) decodeSeqs(b []byte, nseq int) error {
	var br bitReader
	if err := br.init(b); err != nil {
		return errSeqs
	}
	if cap(d.seqs) < nseq {
		d.seqs = make([]seq, nseq, max(nseq, 4096))
	}
	d.seqs = d.seqs[:nseq]
	seqs := d.seqs
	llt, oft, mlt := d.ll.t, d.of.t, d.ml.t
	sLL := br.get(d.ll.log)
	sOF := br.get(d.of.log)
	sML := br.get(d.ml.log)
	r0, r1, r2 := d.reps[0], d.reps[1], d.reps[2]
	for i := range seqs {
		br.reload()
		le, oe, me := llt[sLL&uint32(len(llt)-1)], oft[sOF&uint32(len(oft)-1)], mlt[sML&uint32(len(mlt)-1)]
		ofv := oe.base + br.get(oe.addBits)
		ml := me.base + br.get(me.addBits)
		br.reload()
		ll := le.base + br.get(le.addBits)
		off, zero := resolveOffset(ofv, ll, &r0, &r1, &r2)
		if zero {
			return errOffset0
		}
		seqs[i] = seq{ll, ml, off}
		if i < nseq-1 {
			sLL = uint32(le.next) + br.get(le.nbBits)
			sML = uint32(me.next) + br.get(me.nbBits)
			sOF = uint32(oe.next) + br.get(oe.nbBits)
		}
		if br.overflowed() {
			return errSeqs
		}
	}
	br.reload()
	if !br.finished() {
		return errSeqs
	}
	d.reps = [3]uint32{r0, r1, r2}
	return nil
}

// execute writes the block's output into the history: literals and matches,
// tainting what copies tainted bytes or uses an unknown offset.
func (d *decoder) execute(lits []byte) error {
	h := d.h
	out := h.buf
	start := h.w
	w := start
	end := start + d.blockMax
	lp := 0
	for _, s := range d.seqs {
		ll, ml := int(s.ll), int(s.ml)
		if ll > len(lits)-lp || ll+ml > end-w {
			h.truncateTaints(h.base + int64(start))
			return fmt.Errorf("zstd: sequences exceed the block (literals %d, output %d)", len(lits), d.blockMax)
		}
		copy(out[w:w+ll], lits[lp:lp+ll])
		w += ll
		lp += ll
		if s.off == 0 {
			clear(out[w : w+ml])
			h.lostBytes(h.base+int64(w), out[w:w+ml])
			w += ml
			continue
		}
		off := int(s.off)
		p := h.base + int64(w)
		if d.lossBefore && off <= h.window && p-int64(off) < h.frameStart {
			clear(out[w : w+ml])
			h.addTaint(p, p+int64(ml), lvLost)
			w += ml
			continue
		}
		if off > w || off > h.window || p-int64(off) < h.frameStart {
			h.truncateTaints(h.base + int64(start))
			return fmt.Errorf("zstd: match offset %d beyond the window", off)
		}
		src := w - off
		if !h.clean(p-int64(off), int64(ml)) {
			h.propagate(p-int64(off), p, int64(ml))
		}
		if off >= ml {
			copy(out[w:w+ml], out[src:src+ml])
		} else {
			e := w + ml
			for dd := w; dd < e; {
				dd += copy(out[dd:e], out[src:dd])
			}
		}
		w += ml
	}
	rest := len(lits) - lp
	if rest > end-w {
		h.truncateTaints(h.base + int64(start))
		return errors.New("zstd: block output exceeds the maximum")
	}
	copy(out[w:], lits[lp:])
	w += rest
	h.w = w
	return nil
}

package zstd

import "sync"

// replay holds the literals and sequences of the blocks after a failing
// one, decoded once, for a flip repair: a candidate that leaves the state
// after the failing block as it was (a flip in a Huffman stream changes
// only literals; one in the sequences bitstream, often, only the sequences
// of that block and not the repeat offsets it ends with) changes nothing in
// how the later blocks decode, only the window they copy from. Each such
// candidate then only executes the later blocks' sequences (copies) and
// hashes the output, about ten times less work than decoding them.
type replay struct {
	reps   [3]uint32 // the repeat offsets after the failing block
	blocks []replayBlock
}

type replayBlock struct {
	lits []byte
	seqs []seq
}

// replayMax bounds the memory a replay holds (literals and sequences).
const replayMax = 256 << 20

// buildReplay decodes (without executing) the blocks after blocks[k] of
// the frame, from the decoder state d (which it changes), or returns nil
// when one fails or they exceed replayMax.
func buildReplay(fr *flipFrame, k int, d *decoder) *replay {
	rp := &replay{reps: d.reps}
	var buf []byte
	size := 0
	for _, b := range fr.blocks[k+1:] {
		content, err := readAt(fr.fw.src, b.at+3, b.bh.clen, &buf)
		if err != nil || len(content) < b.bh.clen {
			return nil
		}
		var rb replayBlock
		switch b.bh.typ {
		case blockRaw:
			rb.lits = append([]byte(nil), content...)
		case blockRLE:
			rb.lits = make([]byte, b.bh.size)
			for i := range rb.lits {
				rb.lits[i] = content[0]
			}
		case blockCompressed:
			lh, err := parseLitHeader(content)
			if err != nil {
				return nil
			}
			if res := d.decodeCompressed(content, modeCheck); res.err != nil || res.lost || res.tainted {
				return nil
			}
			switch lh.typ {
			case litRaw:
				rb.lits = append([]byte(nil), content[lh.hsize:lh.hsize+lh.regen]...)
			case litRLE:
				rb.lits = make([]byte, lh.regen)
				for i := range rb.lits {
					rb.lits[i] = content[lh.hsize]
				}
			default:
				rb.lits = append([]byte(nil), d.lits[:lh.regen]...)
			}
			rb.seqs = append([]seq(nil), d.seqs...)
		}
		size += len(rb.lits) + 12*len(rb.seqs)
		if size > replayMax {
			return nil
		}
		rp.blocks = append(rp.blocks, rb)
	}
	return rp
}

// lazyReplay is a replay built by the first candidate that decodes the
// failing block (for candidates in the sequences bitstream).
type lazyReplay struct {
	once sync.Once
	rp   *replay
}

// get returns the replay, built from the state d (not changed) the first
// time.
func (l *lazyReplay) get(fr *flipFrame, k int, d *decoder) *replay {
	l.once.Do(func() {
		var s decState
		s.save(d)
		var c decoder
		s.loadInto(&c, d)
		l.rp = buildReplay(fr, k, &c)
	})
	return l.rp
}

// run executes the replayed blocks on t's decoder and history, hashing the
// output, and reports whether they all fit.
func (rp *replay) run(t *flipTrier, write func([]byte)) bool {
	h := &t.h
	own := t.d.seqs
	defer func() { t.d.seqs = own }()
	for _, rb := range rp.blocks {
		h.reserve(t.fr.fh.blockMax)
		w0 := h.w
		t.d.seqs = rb.seqs
		if t.d.execute(rb.lits) != nil {
			return false
		}
		write(h.buf[w0:h.w])
		h.r = h.w
	}
	return true
}

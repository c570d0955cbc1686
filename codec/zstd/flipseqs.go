package zstd

import "sort"

// seqWalk decodes a compressed block's sequences bitstream one sequence
// at a time and checks each as it comes, for a flip repair. The stream is
// read from its end towards its start, so a candidate flip at byte q
// changes nothing that was decoded before the reader loaded q: the walk of
// the damaged stream records the state before each sequence (a
// checkpoint), and a candidate is decoded from the last checkpoint before
// its byte. Where the damaged walk fails also bounds where a single flip
// can be: at or after the reader's position then.
type seqWalk struct {
	ll, of, ml *fseTable // the block's tables (a candidate in the bitstream does not change them)
	nseq       int
	regen      int   // the block's literals
	blockMax   int   // its largest output
	window     int   // the frame's window
	before     int64 // the frame's output before the block
	reps       [3]uint32
	cks        []seqCk // cks[i]: the state before sequence i of the damaged stream
	failOff    int     // where the reader was when the damaged stream failed (0: at its start)
	failed     bool
	// bitsBad: the damaged stream's bits do not end exactly with its last
	// sequence (whatever their values). A candidate whose reader, past its
	// changed byte, is where the damaged one was with the same states
	// reads the same bits from there on: it fails too.
	bitsBad bool
}

// seqCk is a sequences decoder's state between two sequences.
type seqCk struct {
	br            bitReader
	sLL, sOF, sML uint32
	reps          [3]uint32
	lits, total   int // literals taken and output made by the sequences before
}

// start returns the state before the first sequence of the stream in.
func (w *seqWalk) start(in []byte) (seqCk, bool) {
	var ck seqCk
	if ck.br.init(in) != nil {
		return ck, false
	}
	ck.sLL = ck.br.get(w.ll.log)
	ck.sOF = ck.br.get(w.of.log)
	ck.sML = ck.br.get(w.ml.log)
	ck.reps = w.reps
	return ck, true
}

// record walks the damaged stream in, keeping the checkpoints and where
// it fails.
func (w *seqWalk) record(in []byte) {
	w.cks = w.cks[:0]
	ck, ok := w.start(in)
	if !ok {
		w.failed, w.failOff = true, 0
		return
	}
	ok, off := w.walk(in, 0, ck, -1)
	w.failed, w.failOff = !ok, off
	if ok {
		w.failOff = 0
	}
}

// from returns the sequence index and state to decode the stream from
// when byte q of it is changed.
func (w *seqWalk) from(in []byte, q int) (int, seqCk, bool) {
	i := sort.Search(len(w.cks), func(i int) bool { return w.cks[i].br.off <= q })
	if i == 0 {
		ck, ok := w.start(in)
		return 0, ck, ok
	}
	return i - 1, w.cks[i-1], true
}

// walk decodes sequences i.. of the stream in (whose byte q is a
// candidate's change) from state ck and reports whether each fits the
// block (its literals exist, its offset lies within the window and the
// frame, the output does not exceed the block) and the stream ends exactly
// after the last; if not, where the reader was. With q < 0 it walks the
// damaged stream: it records the checkpoints and goes on to the end after
// a sequence that does not fit, to learn whether the bits end exactly
// (bitsBad).
func (w *seqWalk) walk(in []byte, i int, ck seqCk, q int) (bool, int) {
	rec := q < 0
	valueFail := -1
	fail := func(off int) (bool, int) {
		if !rec {
			return false, off
		}
		w.bitsBad = true
		if valueFail >= 0 {
			return false, valueFail
		}
		return false, off
	}
	bit := 8 * q // bits below the changed byte's
	cut := !rec && w.bitsBad
	br := ck.br
	br.in = in
	sLL, sOF, sML := ck.sLL, ck.sOF, ck.sML
	r0, r1, r2 := ck.reps[0], ck.reps[1], ck.reps[2]
	lits, total := ck.lits, ck.total
	llt, oft, mlt := w.ll.t, w.of.t, w.ml.t
	for ; i < w.nseq; i++ {
		if rec {
			w.cks = append(w.cks, seqCk{br, sLL, sOF, sML, [3]uint32{r0, r1, r2}, lits, total})
		} else if cut && i < len(w.cks) {
			// past the changed byte, on the damaged stream's path?
			d := &w.cks[i]
			if pos := br.off*8 + 64 - int(br.consumed); pos <= bit && pos == d.br.off*8+64-int(d.br.consumed) &&
				sLL == d.sLL && sOF == d.sOF && sML == d.sML {
				return false, br.off
			}
		}
		br.reload()
		le, oe, me := llt[sLL&uint32(len(llt)-1)], oft[sOF&uint32(len(oft)-1)], mlt[sML&uint32(len(mlt)-1)]
		ofv := oe.base + br.get(oe.addBits)
		ml := me.base + br.get(me.addBits)
		br.reload()
		ll := le.base + br.get(le.addBits)
		off, zero := resolveOffset(ofv, ll, &r0, &r1, &r2)
		if zero {
			if !rec {
				return false, br.off
			}
			r0, r1, r2 = 0, r0, r1 // as an offset of 0: bad below
		}
		lits += int(ll)
		total += int(ll)
		bad := off == 0 || lits > w.regen || int(off) > w.window || int64(off) > w.before+int64(total)
		total += int(ml)
		if bad || total > w.blockMax {
			if !rec {
				return false, br.off
			}
			if valueFail < 0 {
				valueFail = br.off
			}
		}
		if i < w.nseq-1 {
			sLL = uint32(le.next) + br.get(le.nbBits)
			sML = uint32(me.next) + br.get(me.nbBits)
			sOF = uint32(oe.next) + br.get(oe.nbBits)
		}
		if br.overflowed() {
			return fail(br.off)
		}
	}
	br.reload()
	if !br.finished() {
		return fail(br.off)
	}
	if valueFail >= 0 {
		return false, valueFail
	}
	if total+w.regen-lits > w.blockMax {
		return false, br.off
	}
	return true, 0
}

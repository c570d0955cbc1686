package vma

import (
	"fmt"
	"math"
	"sort"

	"github.com/vzsalvage/vzsalvage/codec"
)

// Placing an extent's blocks when a loss inside it has an unknown length:
// the extent arithmetic confirms or resizes the loss, and the blocks after
// it stay provisional until the end says they fit.

// extentPlace says where the blocks of the current extent are in the
// stream: blocks [0, kPre) from dataStart on, blocks [kTail, nBlocks) ending
// at tailEnd, anything between lost. Blocks placed by inference are
// provisional: the tail, and what follows provFrom (the end of a loss
// resized from the extent arithmetic, which a later header than the one
// assumed would have made wrong).
type extentPlace struct {
	dataStart int64
	kPre      int
	kTail     int
	nBlocks   int
	tailEnd   int64
	provFrom  int64
	// exactGap: the loss between kPre and kTail has its true length
	// (confirmed): the blocks in it are lost, but their place in the
	// stream is known (for Options.Place).
	exactGap bool
}

// provisional reports whether block k, at stream offset pos, was placed by
// inference.
func (e *extentPlace) provisional(k int, pos int64) bool {
	return k >= e.kTail || pos+BlockSize > e.provFrom
}

// lossRange is a loss's place in the stream.
type lossRange struct{ off, end int64 }

func (e *extentPlace) blockPos(k int) (int64, bool) {
	switch {
	case k < e.kPre:
		return e.dataStart + int64(k)*BlockSize, true
	case k >= e.kTail:
		return e.tailEnd - int64(e.nBlocks-k)*BlockSize, true
	}
	return 0, false
}

// maxTailWiden bounds how far the search for the header after a broken
// extent's tail is widened past later losses of unknown length. Their
// placeholder bytes are searched too, so without a bound a stream with a
// loss every few hundred KiB buffered 64 of them (measured: 146 MB). A
// header beyond it is found by the scan that follows, and the tail is not
// placed (lost, never trusted wrongly).
const maxTailWiden = 16 << 20

// readExtentData queues the clusters of the extent whose header eh is at pos.
func (r *Reader) readExtentData(eh *ExtentHeader) error {
	hdrOff := r.pos
	dataStart := r.pos + ExtentHeaderSize
	size := eh.DataSize()
	end := dataStart + size
	r.fill(end)
	r.res.Extents++
	nb := eh.BlockCount
	place := extentPlace{dataStart: dataStart, kPre: nb, kTail: nb, nBlocks: nb, tailEnd: end, provFrom: math.MaxInt64}
	if rz := r.resized; rz.end > dataStart && rz.off < end {
		place.provFrom = rz.end
	}
	next, nextAligned := end, true
	if sp, ok := r.resyncIn(dataStart, min(end, r.bufEnd())); ok {
		place.kPre = int(max(sp.Off-dataStart, 0) / BlockSize)
		r.problem(hdrOff, "extent broken by a loss of unknown length at stream offset %d", sp.Off)
		r.skipHole(sp)
		room := int64(nb-place.kPre) * BlockSize
		from := sp.End()
		// the tail ends at most room bytes after the last loss before it:
		// widen the search past later losses (and what was decoded between)
		// (by at most maxTailWiden: the buffer holds the whole window)
		end := from + room + ExtentHeaderSize
		limit := end + maxTailWiden
		for i := 0; i < 64 && end < limit; i++ {
			r.fill(end)
			last, _, _ := r.resyncsIn(sp.Off, end)
			if last+room+ExtentHeaderSize <= end {
				break
			}
			end = min(last+room+ExtentHeaderSize, limit)
		}
		win := r.at(from, end-from)
		r.cur = eh
		i, valid := r.findBoundary(win, from)
		r.cur = nil
		if i >= 0 {
			q := from + int64(i)
			next = q
			if !valid {
				// the next extent's header is damaged but in place: it ends
				// this extent; scan on from after it
				r.problem(q, "extent header damaged (magic and uuid in place)")
				next, nextAligned = q+ExtentHeaderSize, false
			}
			if t, implied, single, ok := r.tailFits(sp, dataStart, size, q, place.kPre, nb); ok {
				if single && implied == sp.Len {
					r.confirm(sp.Off)
					place.exactGap = true
					r.addLoss(codec.Span{Off: sp.Off, Len: sp.Len})
				} else if single && r.resize(sp, implied) {
					// decoded again at the right distances: read the extent again
					r.res.Extents--
					return nil
				}
				place.kTail = nb - t
				place.tailEnd = q
				r.res.TailsPlaced++
			} else {
				r.problem(q, "tail of the extent at stream offset %d cannot be placed", hdrOff)
			}
		} else {
			next = from + int64(max(len(win)-ExtentHeaderSize+1, 0))
			nextAligned = false
		}
	} else if r.bufEnd() < end {
		place.kPre = int((r.bufEnd() - dataStart) / BlockSize)
		if err := r.fatal(hdrOff, fmt.Errorf("%w (%d < %d)", ErrShortExtent, r.bufEnd()-hdrOff, end-hdrOff)); err != nil {
			return err
		}
		next = r.bufEnd()
	}
	r.ext = place
	if err := r.queue(eh, hdrOff); err != nil {
		return err
	}
	r.pos = next
	r.aligned = nextAligned
	return nil
}

// tailFits decides whether the bytes between the last loss of unknown
// length and the next header q can be the tail of the extent whose data
// starts at dataStart: they must fit in the blocks after the ones read
// before the loss, and the length the loss must then have had must be one
// the codec says is possible. It returns the number of tail blocks.
func (r *Reader) tailFits(first codec.Span, dataStart, size, q int64, kPre, nb int) (t int, implied int64, single, ok bool) {
	lastEnd, maxSum, sumLen := r.resyncsIn(first.Off, q)
	single = lastEnd == first.End()
	tailLen := q - lastEnd
	t = int(tailLen / BlockSize)
	if tailLen < 0 || nb-t < kPre {
		return 0, 0, false, false
	}
	// bytes the stream must really have had between the loss and the tail
	implied = size - (first.Off - dataStart) - tailLen
	if implied < 0 {
		return 0, 0, false, false
	}
	if maxSum >= 0 {
		between := (lastEnd - first.Off) - sumLen // decoded bytes between several losses
		if implied > maxSum+between {
			return 0, 0, false, false
		}
	}
	return t, implied, single, true
}

// resize asks the codec to decode again after the loss sp with its true
// length, once per loss. On success the buffered stream from the loss on is
// dropped (the codec delivers it again) and the loss counts as confirmed.
func (r *Reader) resize(sp codec.Span, trueLen int64) bool {
	rz, ok := r.src.(codec.Resizer)
	if !ok || r.resizeTried[sp.Off] {
		return false
	}
	r.resizeTried[sp.Off] = true
	if rz.Resize(sp.Off, trueLen) != nil {
		return false
	}
	if r.ref != nil {
		for off := range r.ref.seen {
			if off >= sp.Off {
				delete(r.ref.seen, off) // the codec reports them anew
			}
		}
	}
	r.confirm(sp.Off)
	for len(r.res.Losses) > 0 && r.res.Losses[len(r.res.Losses)-1].Off >= sp.Off {
		r.res.Losses = r.res.Losses[:len(r.res.Losses)-1]
	}
	r.addLoss(codec.Span{Off: sp.Off, Len: trueLen})
	r.resized = lossRange{sp.Off, sp.Off + trueLen}
	r.res.Resized++
	k := sort.Search(len(r.rsOffs), func(i int) bool { return r.rsOffs[i] >= sp.Off })
	r.rsOffs, r.rsFrom = r.rsOffs[:k], min(r.rsFrom, sp.Off)
	r.cutAt(sp.Off)
	r.eof, r.readErr = false, nil
	return true
}

// maxLosses bounds Result.Losses: past it, losses are confirmed but not
// listed (a second pass then does not take them as known: it decodes
// less, never wrongly).
const maxLosses = 1 << 16

// addLoss lists a loss whose true length the extent arithmetic established.
func (r *Reader) addLoss(l codec.Span) {
	if len(r.res.Losses) < maxLosses {
		r.res.Losses = append(r.res.Losses, l)
	}
}

package vma

import (
	"io"

	"github.com/vzsalvage/vzsalvage/codec"
)

// The stream buffer, and the bound on how long a stream may be (a
// decompression bomb is stopped, never read to its end).

// StreamLimit returns how long h's decompressed stream may be before the
// Reader takes it for a decompression bomb and stops: twice the longest
// stream a writer can make for its devices (the header, and every cluster
// stored whole with an extent header of its own), plus bombSlack. A
// stream that long can decode from a few megabytes (zstd blocks that
// repeat one byte decode 32768 times larger): without this bound it costs
// time in proportion to what it decodes to, not to what the archive holds.
func StreamLimit(h *Header) int64 {
	var clusters int64
	for _, d := range h.Devices {
		clusters += d.Clusters()
	}
	return 2*(int64(h.Size)+clusters*(ClusterSize+ExtentHeaderSize)) + bombSlack
}

// headerlessLimit bounds the stream of a read without a main header, which
// has no device sizes: twice what the clusters seen so far can take, plus
// the bytes the codec reported damaged (a loss of known length decodes to
// placeholders), plus bombSlack.
func (r *Reader) headerlessLimit() int64 {
	damaged := r.damagedPassed
	for _, sp := range r.spans() {
		if !codec.Dead(sp, r.passed) {
			damaged += sp.Len
		}
	}
	return 2*(r.seen*(ClusterSize+ExtentHeaderSize)+damaged) + bombSlack
}

// fill makes the stream buffered up to offset end, or to EOF.
func (r *Reader) fill(end int64) {
	r.dropBefore(r.keepFrom)
	need := end - r.bufOff
	if r.hole > 0 && end > r.holeAt {
		need -= min(r.hole, end-r.holeAt) // the hole's bytes are not stored
	}
	if need > int64(cap(r.buf)) {
		// (at once to what a whole extent takes: growing by steps costs
		// an allocation and fresh pages each)
		nb := make([]byte, len(r.buf), max(need+need/4, extentBuffer))
		copy(nb, r.buf)
		r.buf = nb
	}
	for !r.eof && r.bufEnd() < end {
		// (no more than end needs: what is read past it is moved to the
		// buffer's front by the next dropBefore)
		chunk := r.buf[len(r.buf):min(int64(cap(r.buf)), int64(len(r.buf))+max(end-r.bufEnd(), fillMin))]
		if len(chunk) > 1<<20 {
			chunk = chunk[:1<<20]
		}
		if r.overLimit() {
			r.eof = true
			r.res.Bomb = true
			break
		}
		if r.skip > 0 {
			// the hole's bytes: read and dropped
			if len(chunk) == 0 {
				chunk = make([]byte, 64<<10)
			}
			n, err := r.src.Read(chunk[:min(int64(len(chunk)), r.skip)])
			r.skip -= int64(n)
			r.readDone(err)
			if r.eof {
				r.hole -= r.skip // the stream ended inside the hole
				r.skip = 0
			}
			continue
		}
		n, err := r.src.Read(chunk)
		r.buf = r.buf[:len(r.buf)+n]
		r.readDone(err)
	}
}

// extentBuffer is the buffer a read of whole extents needs: the largest
// extent, its header and a read's worth of room.
const extentBuffer = ExtentHeaderSize + EntriesPerExtent*ClusterSize + 64<<10

// fillMin is the least fill asks its source for at a time.
const fillMin = 16 << 10

// readDone notes a read's error.
func (r *Reader) readDone(err error) {
	if err != nil {
		r.eof = true
		if err != io.EOF {
			r.readErr = err
		}
	}
}

// dropBefore drops the buffered bytes before stream offset p (and the
// part of the hole before it that was read).
func (r *Reader) dropBefore(p int64) {
	if p <= r.bufOff {
		return
	}
	if r.hole > 0 && p > r.holeAt {
		// the bytes before the hole, then the hole up to p
		pre := r.holeAt - r.bufOff
		n := copy(r.buf, r.buf[pre:])
		r.buf = r.buf[:n]
		r.bufOff = r.holeAt
		d := min(p-r.holeAt, r.hole-r.skip)
		r.holeAt += d
		r.hole -= d
		r.bufOff += d
		if r.hole > 0 {
			return
		}
		r.holeAt = 0
	}
	drop := min(p-r.bufOff, int64(len(r.buf)))
	if r.hole > 0 {
		drop = min(drop, r.holeAt-r.bufOff)
	}
	n := copy(r.buf, r.buf[drop:])
	r.buf = r.buf[:n]
	r.bufOff += drop
}

// maxBufferedLoss: a loss of unknown length longer than this inside an
// extent is not kept in the buffer (skipHole).
const maxBufferedLoss = 1 << 20

// skipHole leaves the placeholder bytes of the loss sp out of the buffer:
// readExtentData searches for the tail after a loss of any estimated
// length, and buffering its placeholders made the buffer as long as the
// loss (253 MiB measured for one estimated at 200 MiB). Nothing reads
// them (the clusters before the loss end at sp.Off, the tail search starts
// at sp.End()); at returns no byte of them. It does nothing if a hole is
// already kept or sp does not lie at or after the buffer's start.
func (r *Reader) skipHole(sp codec.Span) {
	if r.hole > 0 || sp.Len <= maxBufferedLoss || sp.Off < r.bufOff || sp.Off > r.bufEnd() {
		return
	}
	end := r.bufEnd()
	cut := sp.Off - r.bufOff
	if end >= sp.End() {
		r.buf = append(r.buf[:cut], r.buf[cut+sp.Len:]...)
	} else {
		r.buf = r.buf[:cut]
		r.skip = sp.End() - end
	}
	r.holeAt, r.hole = sp.Off, sp.Len
}

// cutAt drops the buffered stream from off on (a codec that decodes again
// from there, Resize).
func (r *Reader) cutAt(off int64) {
	switch {
	case r.hole > 0 && off <= r.holeAt:
		r.buf = r.buf[:off-r.bufOff]
		r.holeAt, r.hole, r.skip = 0, 0, 0
	case r.hole > 0:
		r.buf = r.buf[:max(off-r.bufOff-r.hole, r.holeAt-r.bufOff)]
		r.hole -= max(r.holeAt+r.hole-off, 0)
		r.skip = 0
	default:
		r.buf = r.buf[:off-r.bufOff]
	}
}

// overLimit reports whether the stream read so far passes its limit.
func (r *Reader) overLimit() bool {
	end := r.bufEnd()
	switch {
	case r.limit > 0:
		return end >= r.limit
	case r.res.Headerless && end >= r.nextCheck:
		// the spans are summed each time: checked every 16 MiB, and
		// where the limit found lies (it never shrinks)
		lim := r.headerlessLimit()
		if end >= lim {
			return true
		}
		r.nextCheck = min(end+16<<20, lim)
	}
	return false
}

// bufEnd returns the stream offset just past the buffered bytes.
func (r *Reader) bufEnd() int64 { return r.bufOff + int64(len(r.buf)) + r.hole - r.skip }

// at returns buffered bytes [off, off+n) (fewer at the end of the stream,
// and none of a hole: fewer before it, nothing inside it).
func (r *Reader) at(off, n int64) []byte {
	lo := off - r.bufOff
	hi := min(lo+n, int64(len(r.buf)))
	if r.hole > 0 {
		switch {
		case off >= r.holeAt+r.hole:
			lo -= r.hole
			hi = min(lo+n, int64(len(r.buf)))
		case off >= r.holeAt:
			return nil
		default:
			hi = min(hi, r.holeAt-r.bufOff)
		}
	}
	if lo < 0 || lo > hi {
		return nil
	}
	return r.buf[lo:hi]
}

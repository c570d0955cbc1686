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
	if r.keepFrom > r.bufOff {
		drop := min(r.keepFrom-r.bufOff, int64(len(r.buf)))
		n := copy(r.buf, r.buf[drop:])
		r.buf = r.buf[:n]
		r.bufOff += drop
	}
	need := end - r.bufOff
	if need > int64(cap(r.buf)) {
		nb := make([]byte, len(r.buf), need+need/4)
		copy(nb, r.buf)
		r.buf = nb
	}
	for !r.eof && r.bufOff+int64(len(r.buf)) < end {
		chunk := r.buf[len(r.buf):cap(r.buf)]
		if len(chunk) > 1<<20 {
			chunk = chunk[:1<<20]
		}
		if r.overLimit() {
			r.eof = true
			r.res.Bomb = true
			break
		}
		n, err := r.src.Read(chunk)
		r.buf = r.buf[:len(r.buf)+n]
		if err != nil {
			r.eof = true
			if err != io.EOF {
				r.readErr = err
			}
		}
	}
}

// overLimit reports whether the stream read so far passes its limit.
func (r *Reader) overLimit() bool {
	end := r.bufEnd()
	switch {
	case r.limit > 0:
		return end >= r.limit
	case r.res.Headerless && end >= r.nextCheck:
		// the spans are summed each time: checked every 16 MiB
		if end >= r.headerlessLimit() {
			return true
		}
		r.nextCheck = end + 16<<20
	}
	return false
}

// bufEnd returns the stream offset just past the buffered bytes.
func (r *Reader) bufEnd() int64 { return r.bufOff + int64(len(r.buf)) }

// at returns buffered bytes [off, off+n) (fewer at the end of the stream).
func (r *Reader) at(off, n int64) []byte {
	lo := off - r.bufOff
	hi := min(lo+n, int64(len(r.buf)))
	if lo < 0 || lo > hi {
		return nil
	}
	return r.buf[lo:hi]
}

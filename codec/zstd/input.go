package zstd

import (
	"errors"
	"io"

	"github.com/vzsalvage/vzsalvage/codec"
)

// input is the compressed stream with random access to a bounded region:
// bytes from the last release point on stay buffered, so the decoder can
// look ahead (chain scanning) and back (rebuilding state at the handover).
type input struct {
	src io.Reader
	// async, when src is a codec.AsyncFiller, copies the next bytes into
	// the buffer's free room beside the decoder; ahead is its read under
	// way (into buf[len(buf):cap(buf)]), nil when none.
	async codec.AsyncFiller
	ahead <-chan codec.FillResult
	buf   []byte // buf[0] is at stream offset off
	off   int64
	keep  int64 // bytes before keep may be dropped
	eof   bool
	err   error // a read error other than io.EOF

	// pin, when ≥ 0, keeps bytes from pin on although released (a resume
	// point Resize may decode from again), as long as the decoder asks for
	// no byte more than pinMax past it; past that the pin is dropped and
	// pinLost set, whether or not the bytes happen to be buffered still (a
	// short input is read whole at once).
	pin     int64
	pinMax  int64
	pinLost bool
}

// defaultPinMax bounds the compressed input kept for Resize.
const defaultPinMax = 32 << 20

const readChunk = 256 << 10

// maxSpare bounds the input buffer's growth beyond what is needed.
const maxSpare = 6 << 20

// at returns up to n bytes at stream offset p (p >= the release point),
// reading more as needed; fewer only at the end of the input. The slice is
// valid until the next call: reading more may move the buffered bytes.
func (in *input) at(p int64, n int) []byte {
	if p < in.off {
		return nil
	}
	end := p + int64(n)
	if in.pin >= 0 && end-in.pin > in.pinMax {
		in.pin, in.pinLost = -1, true
	}
	for in.off+int64(len(in.buf)) < end && !in.eof {
		in.fill(end)
	}
	i := p - in.off
	j := min(end-in.off, int64(len(in.buf)))
	if i >= j {
		return nil
	}
	return in.buf[i:j:j]
}

// fill reads at least once, making room for the bytes up to end. Released
// bytes are dropped only when the buffer has no room left; a buffer that
// keeps more than a quarter of itself grows (by four times, or to maxSpare,
// at least doubling), so that the bytes kept (the last blocks,
// for a handover) are copied rarely.
func (in *input) fill(end int64) {
	if in.ahead != nil {
		// the read under way: its bytes are the next ones
		r := <-in.ahead
		in.ahead = nil
		in.got(r.N, r.Err)
		in.readAhead()
		return
	}
	keep := in.keep
	if in.pin >= 0 {
		keep = min(keep, in.pin)
	}
	need := int(end-in.off) + readChunk
	if drop := min(keep-in.off, int64(len(in.buf))); drop > 0 && (cap(in.buf)-len(in.buf) < readChunk || need > cap(in.buf)) {
		n := copy(in.buf, in.buf[drop:])
		in.buf = in.buf[:n]
		in.off += drop
		need -= int(drop)
	}
	if c := cap(in.buf); need > c || 4*len(in.buf) > c && c < maxSpare {
		n := 4 * c
		if n > maxSpare/2 {
			n = maxSpare // no step between: each buffer is touched afresh
		}
		// (at least doubling: a pinned input grows by a read at a time;
		// but never past what a pin may keep (growCap), unless needed)
		nb := make([]byte, len(in.buf), max(n, need, min(2*c, in.growCap())))
		copy(nb, in.buf)
		in.buf = nb
	}
	if in.async != nil {
		// (a read of all the room here, on the decoder's goroutine,
		// stalls it: the read goes to the source's goroutine, and the
		// next one starts as soon as this one is done)
		r := <-in.async.FillAsync(in.buf[len(in.buf):cap(in.buf)])
		in.got(r.N, r.Err)
		in.readAhead()
		return
	}
	n, err := in.src.Read(in.buf[len(in.buf):cap(in.buf)])
	in.got(n, err)
}

// growCap bounds the buffer's doubling: the most a pin keeps (pinMax, and
// a read and a block past it) and maxSpare. Doubling alone took a buffer
// pinned to its limit from 24 MiB to 48 MiB.
func (in *input) growCap() int {
	return int(in.pinMax) + readChunk + maxBlockSize + maxSpare
}

// got appends n bytes read into the free room, and notes the read's error.
func (in *input) got(n int, err error) {
	in.buf = in.buf[:len(in.buf)+n]
	if err != nil {
		in.eof = true
		if !errors.Is(err, io.EOF) {
			in.err = err
		}
	}
}

// readAhead starts an asynchronous read into the buffer's free room when
// the source can and there is a read's worth of room: the next fill takes
// its bytes without copying them itself.
func (in *input) readAhead() {
	if in.async == nil || in.eof || cap(in.buf)-len(in.buf) < readChunk {
		return
	}
	in.ahead = in.async.FillAsync(in.buf[len(in.buf):cap(in.buf)])
}

// stop waits for a read under way and keeps its bytes: the source is then
// free to be used otherwise (or dropped).
func (in *input) stop() {
	if in.ahead != nil {
		r := <-in.ahead
		in.ahead = nil
		in.got(r.N, r.Err)
	}
}

// release says that bytes before stream offset p are no longer needed.
func (in *input) release(p int64) { in.keep = max(in.keep, p) }

// setPin keeps the input from p on until the next setPin or unpin.
func (in *input) setPin(p int64) {
	in.pin, in.pinLost = p, p < in.off
}

// unpin drops the pin.
func (in *input) unpin() { in.pin, in.pinLost = -1, false }

// atEnd reports whether the input ends at p.
func (in *input) atEnd(p int64) bool { return len(in.at(p, 1)) == 0 }

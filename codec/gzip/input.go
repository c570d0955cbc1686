package gzip

import "io"

// readSize is the least input asked of the source at a time.
const readSize = 512 << 10

// input buffers the compressed stream: buf[i] is input byte off+i. Bytes
// from keep on stay buffered (the decoder may go back to them to look for
// a place to resume); older ones are dropped as the window moves.
type input struct {
	src  io.Reader
	buf  []byte
	off  int64
	keep int64
	eof  bool
	err  error // a read error other than EOF; it ends the input like EOF
}

// end returns the offset just past the buffered bytes.
func (in *input) end() int64 { return in.off + int64(len(in.buf)) }

// at returns the buffered bytes from offset p, after trying to have at
// least n of them (fewer only at the end of the input). It may move the
// buffer: slices it returned before are stale after it.
func (in *input) at(p int64, n int) []byte {
	if in.end()-p < int64(n) {
		in.fill(p + int64(n))
	}
	if p < in.off || p > in.end() {
		return nil
	}
	return in.buf[p-in.off:]
}

// fill reads until offset end is buffered or the input ends, dropping
// bytes before keep to make room. The buffer grows with what is asked of
// it: a small stream is read with a small one.
func (in *input) fill(end int64) {
	for empty := 0; in.end() < end && !in.eof; {
		want := int(min(max(end-in.end(), 64<<10), readSize))
		if cap(in.buf)-len(in.buf) < want {
			if drop := min(in.keep-in.off, int64(len(in.buf))); drop > 0 {
				n := copy(in.buf, in.buf[drop:])
				in.buf = in.buf[:n]
				in.off += drop
			}
			if cap(in.buf)-len(in.buf) < want {
				nb := make([]byte, len(in.buf), max(2*cap(in.buf), len(in.buf)+want))
				copy(nb, in.buf)
				in.buf = nb
			}
		}
		n, err := in.src.Read(in.buf[len(in.buf):cap(in.buf)])
		in.buf = in.buf[:len(in.buf)+n]
		if n == 0 && err == nil {
			if empty++; empty == 100 {
				err = io.ErrNoProgress
			}
		}
		if err != nil {
			in.eof = true
			if err != io.EOF {
				in.err = err
			}
		}
	}
}

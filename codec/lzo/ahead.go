package lzo

import "runtime"

// Blocks are independent, so the blocks after the one being read are
// decoded and verified ahead, on other cores, while it is returned. Only a
// block that verifies exactly as its header says is taken from there; any
// other, and anything after it, goes through readBlock's salvage.

// aheadMax is the most blocks decoded ahead at a time.
const aheadMax = 6

// job is a block decoded ahead: its input offset, header, a copy of its
// data, and (once done is closed) its output and whether it verified.
type job struct {
	off  int64
	h    blockHeader
	src  []byte
	out  []byte
	ok   bool
	done chan struct{}
}

// ahead is the queue of blocks decoded ahead, in file order.
type ahead struct {
	jobs []*job
	free []*job        // jobs whose buffers may be reused
	cur  *job          // the job whose output is being returned
	sem  chan struct{} // limits the decoding goroutines to the cores
	next int64         // input offset of the header after the last job
}

// takeAhead delivers the block at z.pos if it was decoded ahead and
// verified, and reports whether it did.
func (z *Reader) takeAhead() bool {
	z.fillAhead()
	a := &z.ahead
	if len(a.jobs) == 0 || a.jobs[0].off != z.at(z.pos) {
		z.dropAhead()
		return false
	}
	j := a.jobs[0]
	<-j.done
	if !j.ok {
		z.dropAhead()
		return false
	}
	a.jobs = a.jobs[1:]
	if a.cur != nil {
		a.free = append(a.free, a.cur)
	}
	a.cur = j
	z.pos += j.h.len + j.h.srcLen
	z.deliver(j.out, j.h.len+j.h.srcLen)
	z.fillAhead()
	return true
}

// fillAhead starts decoding the blocks after the last one queued, as far
// as their headers look right, up to aheadMax.
func (z *Reader) fillAhead() {
	a := &z.ahead
	if a.sem == nil {
		a.sem = make(chan struct{}, runtime.GOMAXPROCS(0))
	}
	if len(a.jobs) == 0 {
		a.next = z.at(z.pos)
	}
	for len(a.jobs) < aheadMax && z.err == nil {
		i := int(a.next - z.winOff)
		if i < z.pos || !z.fill(i-z.pos+maxBlockHeader) {
			return
		}
		i = int(a.next - z.winOff) // fill may move the window
		h, ok := z.lay.parseBlockHeader(z.win[i:])
		// (no larger than the blocks seen: a damaged length must not make
		// a job allocate up to MaxBlockSize)
		if !ok || h.dstLen == 0 || h.dstLen > z.blockSize || h.srcLen > h.dstLen || h.srcLen == 0 {
			return
		}
		if !z.fill(i - z.pos + h.len + h.srcLen) {
			return
		}
		i = int(a.next - z.winOff)
		j := z.newJob()
		j.off, j.h = a.next, h
		j.src = append(j.src[:0], z.win[i+h.len:i+h.len+h.srcLen]...)
		a.jobs = append(a.jobs, j)
		a.next += int64(h.len + h.srcLen)
		go j.run(z.lay, a.sem)
	}
}

// newJob returns a job with buffers to reuse if there is one.
func (z *Reader) newJob() *job {
	a := &z.ahead
	var j *job
	if n := len(a.free); n > 0 {
		j, a.free = a.free[n-1], a.free[:n-1]
	} else {
		j = &job{}
	}
	j.done = make(chan struct{})
	j.ok = false
	return j
}

// dropAhead waits for the blocks decoding ahead and forgets them.
func (z *Reader) dropAhead() {
	a := &z.ahead
	for _, j := range a.jobs {
		<-j.done
		a.free = append(a.free, j)
	}
	a.jobs = a.jobs[:0]
}

// run decodes and verifies the job's block.
func (j *job) run(lay layout, sem chan struct{}) {
	sem <- struct{}{}
	defer func() {
		<-sem
		close(j.done)
	}()
	h := &j.h
	if !lay.verifyCompressed(h, j.src) {
		return
	}
	if h.srcLen == h.dstLen {
		j.out = append(j.out[:0], j.src...) // stored
	} else {
		if cap(j.out) < h.dstLen {
			j.out = make([]byte, 0, h.dstLen)
		}
		out, used, err := decompress1X(j.out[:0:h.dstLen], j.src)
		if err != nil || used != len(j.src) || len(out) != h.dstLen {
			return
		}
		j.out = out
	}
	j.ok = lay.hasDataSum() && lay.verifyData(h, j.out)
}

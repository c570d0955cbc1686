package zstd

import (
	"errors"
	"io"

	kzstd "github.com/klauspost/compress/zstd"
)

// The clean path: klauspost/compress decodes a frame as fast as it can,
// fed by a feeder that hands it exactly one frame and keeps the last few
// blocks' input, so that on the first error our own decoder can rebuild
// the carried state (tables, repeat offsets) and take over at the failing
// block.

// retainBlocks is how many blocks before the current one the feeder keeps
// for rebuilding state at a handover.
const retainBlocks = 8

var errBadHeader = errors.New("zstd: bad block header")

const (
	itemBlock = iota
	itemChecksum
	itemEnd
)

// feeder is the io.Reader klauspost reads one frame through.
type feeder struct {
	in    *input
	fh    frameHeader
	start int64 // the frame's magic
	pos   int64 // next byte to hand out
	limit int64 // end of the structure parsed so far
	next  int   // what lies at limit
	bad   bool  // the header before limit is invalid: stop there

	starts [retainBlocks + 1]int64 // ring of the latest block starts
	nblk   int                     // blocks seen in the frame
	sum    uint32                  // the frame's checksum field
	hasSum bool
}

func (f *feeder) reset(in *input, start int64, fh frameHeader) {
	*f = feeder{in: in, fh: fh, start: start, pos: start, limit: start + int64(fh.size)}
}

// lastBlock returns the start of the latest block handed out, or -1.
func (f *feeder) lastBlock() int64 {
	if f.nblk == 0 {
		return -1
	}
	return f.starts[(f.nblk-1)%len(f.starts)]
}

// retained returns the starts of the blocks kept before the latest one, and
// whether they begin with the frame's first block.
func (f *feeder) retained() ([]int64, bool) {
	n := min(f.nblk-1, retainBlocks)
	var out []int64
	for i := f.nblk - 1 - n; i < f.nblk-1; i++ {
		out = append(out, f.starts[i%len(f.starts)])
	}
	return out, f.nblk-1 <= retainBlocks
}

func (f *feeder) Read(p []byte) (int, error) {
	if f.pos == f.limit {
		if f.bad {
			return 0, errBadHeader
		}
		switch f.next {
		case itemEnd:
			return 0, io.EOF
		case itemChecksum:
			b := f.in.at(f.limit, 4)
			if len(b) == 4 {
				f.sum, f.hasSum = le32(b), true
			}
			f.limit += int64(len(b))
			f.next = itemEnd
		case itemBlock:
			b := f.in.at(f.limit, 3)
			if len(b) < 3 {
				f.limit += int64(len(b))
				f.next = itemEnd
				break
			}
			f.starts[f.nblk%len(f.starts)] = f.limit
			f.nblk++
			if f.nblk > retainBlocks {
				f.in.release(f.starts[(f.nblk-retainBlocks-1)%len(f.starts)])
			}
			bh := parseBlockHeader(b)
			if !plausible(bh, f.fh.blockMax) ||
				bh.last && !frameEndsAt(f.in, f.limit+3+int64(bh.clen), f.fh.checksum) {
				// Our decoder takes over at this header and decides (a
				// last block must be followed by the frame's end).
				f.bad = true
				f.limit += 3
				break
			}
			f.limit += 3 + int64(bh.clen)
			if bh.last {
				f.next = itemEnd
				if f.fh.checksum {
					f.next = itemChecksum
				}
			}
		}
		if f.pos == f.limit {
			return 0, io.ErrUnexpectedEOF
		}
	}
	b := f.in.at(f.pos, int(min(int64(len(p)), f.limit-f.pos)))
	if len(b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, b)
	f.pos += int64(n)
	return n, nil
}

// stepClean lets klauspost decode the next piece of the frame.
func (z *Reader) stepClean() error {
	const chunk = 1 << 20
	if len(z.h.buf)-z.h.w < chunk || !z.h.unlent(z.h.w, z.h.w+chunk) {
		// the reserve may slide or move the output being hashed
		z.hashSync()
	}
	z.h.reserve(chunk)
	w0 := z.h.w
	// With concurrency 1, klauspost returns at most one block's output per
	// call, and has read exactly that block's input: each call is a mark.
	n, err := z.kd.Read(z.h.buf[w0 : w0+chunk])
	z.h.w += n
	z.frameN += int64(n)
	z.hashAhead(false)
	if n > 0 {
		z.markDecoded(z.feed.pos, z.softBlock(z.feed.lastBlock()), int64(n))
	}
	if err == nil {
		return nil
	}
	// the end of the clean path: the frame's hash is complete
	z.hashSync()
	switch {
	case err == io.EOF && z.feed.next == itemEnd && z.feed.pos == z.feed.limit && !z.feed.bad:
		z.hashHeld()
		z.pos = z.feed.pos
		z.state = stFrame
		z.markBlock(z.pos, false)
		z.in.release(z.pos)
		if !z.fh.checksum {
			z.sums[sumAbsent]++
			return nil
		}
		if !z.feed.hasSum {
			return z.truncated(z.pos, "input ends inside the frame checksum")
		}
		return z.checkSum(z.pos-4, z.feed.sum)
	}
	return z.handover()
}

// handover moves from klauspost to our decoder at the failing block:
// it rebuilds the carried state from the retained blocks before it.
func (z *Reader) handover() error {
	at := z.feed.lastBlock()
	if at < 0 {
		z.pos = z.frameIn + int64(z.fh.size)
	} else {
		z.pos = at
		prev, fromStart := z.feed.retained()
		if !fromStart {
			z.d.forget()
		}
		for _, p := range prev {
			b := z.in.at(p, 3)
			if len(b) < 3 {
				z.d.forget()
				continue
			}
			bh := parseBlockHeader(b)
			if bh.typ != blockCompressed {
				continue
			}
			c := z.in.at(p+3, bh.clen)
			if len(c) < bh.clen {
				z.d.forget()
				continue
			}
			z.d.decodeCompressed(c, modeState)
		}
		z.nblocks = int64(z.feed.nblk - 1)
		z.blkIn = at - z.frameIn - int64(z.fh.size)
		z.decN, z.decIn, z.decOut = z.nblocks, z.blkIn, z.frameN
	}
	z.state = stBlocks
	z.saveCheckpoint()
	z.hashHeld()
	z.lagHash = false
	z.h.keepBack = 0
	return nil
}

func newKlauspost() (*kzstd.Decoder, error) {
	return kzstd.NewReader(nil,
		kzstd.WithDecoderConcurrency(1),
		kzstd.IgnoreChecksum(true),
		kzstd.WithDecoderMaxWindow(MaxWindow),
		kzstd.WithDecoderMaxMemory(1<<62),
	)
}

package zstd

import (
	"cmp"
	"fmt"
	"io"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Flipped bits in block headers (see flips.go): the chain of headers
// breaks, or a type bit makes a compressed block raw; the flips of the last
// headers are tried, each decoding the frame from its start.

// chain is a frame's chain of block headers.
type chain struct {
	blocks []flipBlock
	end    int64  // where the frame ends (after its checksum)
	want   uint32 // its checksum
	why    string // why the chain does not hold, or ""
}

// walkChain walks the chain of block headers of the frame (header fh) at
// pos in src (size bytes): every header plausible, the last followed by
// the checksum and then the input's end or a frame.
func walkChain(src io.ReaderAt, size, pos int64, fh frameHeader) (chain, error) {
	var ch chain
	var buf []byte
	p := pos + int64(fh.size)
	for {
		b, err := readAt(src, p, 3, &buf)
		if err != nil {
			return ch, err
		}
		if len(b) < 3 {
			ch.why = fmt.Sprintf("the input ends inside the frame at offset %d", pos)
			return ch, nil
		}
		bh := parseBlockHeader(b)
		if !plausible(bh, fh.blockMax) {
			ch.why = fmt.Sprintf("the chain of block headers breaks at offset %d", p)
			return ch, nil
		}
		ch.blocks = append(ch.blocks, flipBlock{p, bh})
		p += 3 + int64(bh.clen)
		if p > size {
			ch.why = fmt.Sprintf("the input ends inside the block at offset %d", ch.blocks[len(ch.blocks)-1].at)
			return ch, nil
		}
		if bh.last {
			break
		}
	}
	ch.end = p
	if fh.checksum {
		ch.end += 4
		if ch.end > size {
			ch.why = fmt.Sprintf("the input ends inside the checksum of the frame at offset %d", pos)
			return ch, nil
		}
		b, err := readAt(src, p, 4, &buf)
		if err != nil {
			return ch, err
		}
		ch.want = le32(b)
	}
	if ch.end < size {
		m, err := readAt(src, ch.end, 4, &buf)
		if err != nil {
			return ch, err
		}
		if len(m) < 4 || le32(m) != frameMagic && le32(m)&skippableMask != skippableMagicLow {
			ch.why = fmt.Sprintf("no frame follows the frame at offset %d", pos)
		}
	}
	return ch, nil
}

// patchedAt is src with the byte at off replaced by b.
type patchedAt struct {
	src io.ReaderAt
	off int64
	b   byte
}

func (p *patchedAt) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.src.ReadAt(b, off)
	if i := p.off - off; i >= 0 && i < int64(n) {
		b[i] = p.b
	}
	return n, err
}

// headerFlips looks, where the chain of block headers of the frame at pos
// does not hold (ch), for the one flipped bit in its last block headers
// that makes it hold and the frame decode with a matching checksum.
func (fw *flipWalk) headerFlips(pos int64, fh frameHeader, ch chain) (FlipRepair, bool, error) {
	why := ch.why + " (no single flip in the last block headers mends it; rescue rebuilds a damaged header as it reads)"
	if !fh.checksum {
		fw.res.Why = why + "; the frame has no checksum to verify a flip"
		return FlipRepair{}, false, nil
	}
	// The headers a flip may be in: the last ones walked (a flipped size
	// leads the walk astray) and where it broke.
	var heads []int64
	for _, b := range ch.blocks[max(0, len(ch.blocks)-4):] {
		heads = append(heads, b.at)
	}
	if n := len(ch.blocks); n > 0 {
		last := ch.blocks[n-1]
		if !last.bh.last {
			heads = append(heads, last.at+3+int64(last.bh.clen))
		}
	} else {
		heads = append(heads, pos+int64(fh.size))
	}
	var at []int64
	for _, hp := range heads {
		at = append(at, hp, hp+1, hp+2)
	}
	matches, err := fw.flipsAt(pos, fh, at, 0xff, heads[len(heads)-1], "block headers")
	if err != nil {
		return FlipRepair{}, false, err
	}
	switch len(matches) {
	case 1:
		return matches[0], true, nil
	case 0:
		fw.res.Why = why
	default:
		fw.res.Why = fmt.Sprintf("%s; %d flips of its block headers make the checksum match: refused", ch.why, len(matches))
	}
	return FlipRepair{}, false, nil
}

// flipsAt tries the flips of the bits in mask of the bytes at the input
// offsets at, each decoding the frame at pos (header fh) from its start,
// and returns those that make its chain hold, every block decode and the
// checksum match. The search's account goes to FlipResult.Blocks (block:
// the offset it is filed under).
func (fw *flipWalk) flipsAt(pos int64, fh frameHeader, at []int64, mask byte, block int64, section string) ([]FlipRepair, error) {
	start := time.Now()
	budget := cmp.Or(fw.opt.Budget, DefaultFlipBudget)
	stats := FlipStats{Block: block, Section: section, Positions: len(at)}
	var matches []FlipRepair
	var buf []byte
	for _, o := range at {
		b, err := readAt(fw.src, o, 1, &buf)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			continue
		}
		old := b[0]
		for bit := 0; bit < 8; bit++ {
			if mask&(1<<bit) == 0 {
				continue
			}
			stats.Candidates++
			if time.Since(start) > budget {
				continue
			}
			stats.Tried++
			ps := &patchedAt{fw.src, o, old ^ 1<<bit}
			c2, err := walkChain(ps, fw.size, pos, fh)
			if err != nil {
				return nil, err
			}
			if c2.why != "" {
				continue
			}
			stats.Section1++
			ok, err := decodeFrame(ps, fh, c2)
			if err != nil {
				return nil, err
			}
			if ok {
				stats.Matched++
				matches = append(matches, FlipRepair{Block: o, Offset: o, Bit: bit, Old: old, New: old ^ 1<<bit})
			}
		}
	}
	stats.End = stats.Section1
	stats.Exhaustive = stats.Tried == stats.Candidates
	stats.Elapsed = time.Since(start)
	fw.res.Blocks = append(fw.res.Blocks, stats)
	return matches, nil
}

// decodeFrame decodes the frame (header fh, chain ch) in src with a
// decoder of its own and reports whether every block decodes and the
// checksum matches.
func decodeFrame(src io.ReaderAt, fh frameHeader, ch chain) (bool, error) {
	var d decoder
	var h history
	d.h = &h
	h.setWindow(fh.window)
	d.resetFrame(fh.blockMax)
	var hash xxhash.Digest
	hash.Reset()
	var buf []byte
	for _, b := range ch.blocks {
		content, err := readAt(src, b.at+3, b.bh.clen, &buf)
		if err != nil {
			return false, err
		}
		h.reserve(fh.blockMax)
		w0 := h.w
		if res := d.decodeBlock(b.bh, content); res.err != nil || res.lost || res.tainted {
			return false, nil
		}
		hash.Write(h.buf[w0:h.w])
		h.r = h.w
	}
	return uint32(hash.Sum64()) == ch.want, nil
}

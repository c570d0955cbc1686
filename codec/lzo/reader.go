// Package lzo decodes lzop files (vzdump's .lzo archives) into a
// codec.Reader, with its own LZO1X block decoder (Decompress1X).
//
// lzop data is verifiable block by block: every block carries the
// Adler-32 (or CRC-32) of its output, and blocks are independent, so the
// blocks after the one being read are decoded ahead on the other cores. A
// block that fails to decode or to verify keeps what its data decodes to as
// a Tainted span (the VMA reader still finds extent headers in it, by their
// MD5) and the rest of its length (256 KiB for every block but the last) as
// a Lost one, and reading goes on with the next block. When a block header
// itself is damaged, the block is rebuilt from its data if that decodes to
// a whole block ending where a verified one starts; if not, the reader
// scans forward for the next block whose checksum verifies and reports the
// gap as a Lost span with Resync set. Every byte outside a span has been
// verified by its block's checksum (unless the file was written with
// --no-checksum: then Checksum says Absent).
package lzo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

const layer = "lzo"

// readSize is the least the reader asks its source for at a time.
const readSize = 512 << 10

type state uint8

const (
	stFile  state = iota // at a file header
	stBlock              // at a block header
	stAfter              // after an end-of-file marker
	stEnd
)

// Reader is a salvaging lzop decoder. Create it with NewReader.
type Reader struct {
	opt codec.Options
	src io.Reader

	// Input window: win[pos:] is not consumed yet; win[0] is at input
	// offset winOff.
	win    []byte
	pos    int
	winOff int64
	eof    bool

	st        state
	lay       layout
	blockSize int   // every block but the last is this long: lzop's 256 KiB, or the longest seen
	goodIn    int64 // input bytes of the blocks decoded, for estimates
	goodN     int64 // number of blocks decoded

	out    []byte // the block being returned: out[r:] is left
	r      int
	dec    []byte // decode buffer
	rb     []byte // buffer of a block rebuilt from its data
	ahead  ahead  // blocks decoded ahead
	zeros  int64  // placeholder zeros queued after out
	outOff int64  // output offset after out and zeros

	spans    []codec.Span
	problems []damage.Problem
	nprob    int  // problems found (some not kept: codec.Options.MaxProblems)
	bad      bool // a block failed its check
	unknown  bool // the stream ends early
	err      error
}

// NewReader returns a Reader decoding the lzop file r. It fails only when r
// does not start with the lzop magic.
func NewReader(r io.Reader, opt codec.Options) (codec.Reader, error) {
	z := &Reader{opt: opt, src: r, blockSize: blockSize}
	z.fill(len(magic))
	if z.err != nil {
		return nil, z.err
	}
	b := z.win[z.pos:]
	if len(b) < len(magic) && string(b) == string(magic[:len(b)]) {
		return nil, fmt.Errorf("lzo: %w: no complete header", codec.ErrTruncated)
	}
	if len(b) < len(magic) || [9]byte(b[:9]) != magic {
		return nil, fmt.Errorf("lzo: %w", errNotLzop)
	}
	return z, nil
}

// Spans returns the damaged output ranges found so far.
func (z *Reader) Spans() []codec.Span { return z.spans }

// TrimSpans implements codec.Trimmer (a span never changes once appended).
func (z *Reader) TrimSpans(off int64) {
	z.spans, _ = codec.TrimSpans(z.spans, len(z.spans), off)
}

// ProblemCount implements codec.ProblemCounter.
func (z *Reader) ProblemCount() int { return z.nprob }

// Problems returns what was found wrong so far, at input offsets.
func (z *Reader) Problems() []damage.Problem { return z.problems }

// Checksum is OK when every block verified, Mismatch when one failed.
func (z *Reader) Checksum() codec.Checksum {
	switch {
	case z.bad:
		return codec.ChecksumMismatch
	case z.st != stEnd || z.unknown || z.err != nil:
		return codec.ChecksumUnknown
	case !z.lay.hasDataSum():
		return codec.ChecksumAbsent
	}
	return codec.ChecksumOK
}

// Read returns decoded bytes, zeros in place of lost blocks.
func (z *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if z.r < len(z.out) {
			n := copy(p, z.out[z.r:])
			z.r += n
			return n, nil
		}
		if z.zeros > 0 {
			n := int(min(int64(len(p)), z.zeros))
			clear(p[:n])
			z.zeros -= int64(n)
			return n, nil
		}
		if z.st == stEnd {
			if z.err != nil {
				return 0, z.err
			}
			return 0, io.EOF
		}
		z.out, z.r = nil, 0
		switch z.st {
		case stFile:
			z.readFileHeader()
		case stBlock:
			z.readBlock()
		case stAfter:
			z.readAfter()
		}
	}
}

// fill tries to have n unconsumed bytes in the window, and reports whether
// it has. A read error other than EOF ends the stream.
func (z *Reader) fill(n int) bool {
	if len(z.win)-z.pos >= n {
		return true
	}
	if z.eof || z.err != nil {
		return false
	}
	if cap(z.win)-z.pos < max(n, readSize) {
		// Move the unconsumed bytes to the front, growing if need be.
		size := max(cap(z.win), 2*readSize, n+readSize)
		nw := z.win[:0]
		if size > cap(z.win) {
			nw = make([]byte, 0, size)
		}
		m := copy(nw[:len(z.win)-z.pos], z.win[z.pos:])
		z.winOff += int64(z.pos)
		z.win, z.pos = nw[:m], 0
	}
	for empty := 0; len(z.win)-z.pos < n; {
		k, err := z.src.Read(z.win[len(z.win):cap(z.win)])
		z.win = z.win[:len(z.win)+k]
		if k == 0 && err == nil {
			if empty++; empty == 100 {
				err = io.ErrNoProgress
			}
		}
		if err == io.EOF {
			z.eof = true
			return false
		}
		if err != nil {
			z.end(fmt.Errorf("lzo: %w", err))
			return false
		}
	}
	return true
}

// at returns the input offset of window index i.
func (z *Reader) at(i int) int64 { return z.winOff + int64(i) }

func (z *Reader) end(err error) {
	z.st = stEnd
	if z.err == nil {
		z.err = err
	}
}

// report records a problem; in strict mode it ends the stream with kind
// and reports true.
func (z *Reader) report(kind error, off int64, format string, args ...any) bool {
	msg := fmt.Sprintf(format, args...)
	k := damage.Corrupt
	if errors.Is(kind, codec.ErrTruncated) {
		k = damage.Truncated
	}
	z.nprob++
	if codec.KeepProblem(len(z.problems), z.opt.MaxProblems, k) {
		z.problems = append(z.problems, damage.Problem{Layer: layer, Offset: off, Message: msg, Kind: k})
	}
	if z.opt.Strict {
		z.end(fmt.Errorf("lzo: %w at input offset %d: %s", kind, off, msg))
		return true
	}
	return false
}

// restLost ends a salvaged stream whose remainder cannot be read.
func (z *Reader) restLost() {
	z.unknown = true
	z.spans = append(z.spans, codec.Span{Off: z.outOff, State: damage.Lost, Resync: true, MaxLen: -1})
	z.st = stEnd
}

func (z *Reader) readFileHeader() {
	z.fill(maxFileHeader)
	if z.err != nil {
		return
	}
	off := z.at(z.pos)
	h, err := parseFileHeader(z.win[z.pos:])
	switch {
	case errors.Is(err, errShortHeader):
		if !z.report(codec.ErrTruncated, off, "file ends inside the lzop header") {
			z.restLost()
		}
		return
	case err != nil && !h.checksumBad:
		z.end(fmt.Errorf("lzo: at input offset %d: %w", off, err))
		return
	case err != nil:
		// A damaged header: read the blocks the way lzop writes them.
		if z.report(codec.ErrCorrupt, off, "damaged lzop header (%v): assuming lzop's defaults", err) {
			return
		}
		h.flags = flagAdler32D
	case h.checksumBad:
		if z.report(codec.ErrCorrupt, off, "lzop header checksum mismatch") {
			return
		}
	}
	z.lay = layoutOf(h.flags)
	z.pos += h.len
	z.st = stBlock
}

// readAfter looks at what follows an end-of-file marker: nothing, another
// lzop file, zero padding, or garbage.
func (z *Reader) readAfter() {
	z.fill(len(magic))
	b := z.win[z.pos:]
	switch {
	case z.err != nil:
	case len(b) == 0:
		z.st = stEnd
	case len(b) >= len(magic) && [9]byte(b[:9]) == magic:
		z.st = stFile
	default:
		off := z.at(z.pos)
		for z.fill(1) && z.win[z.pos] == 0 {
			z.pos++
		}
		if z.err != nil {
			return
		}
		if len(z.win) > z.pos {
			z.report(codec.ErrCorrupt, off, "data after the end of the lzop file")
		}
		z.st = stEnd
	}
}

// readBlock reads the block at z.pos. Window indices do not survive a
// fill, which may move the window: z.pos does.
func (z *Reader) readBlock() {
	if z.takeAhead() {
		return
	}
	off := z.at(z.pos)
	z.fill(maxBlockHeader)
	if z.err != nil {
		return
	}
	h, ok := z.lay.parseBlockHeader(z.win[z.pos:])
	if !ok {
		if !z.report(codec.ErrTruncated, off, "file ends inside a block header") {
			z.restLost()
		}
		return
	}
	if h.dstLen == 0 {
		z.pos += 4
		z.st = stAfter
		return
	}
	if h.dstLen > MaxBlockSize || h.srcLen > h.dstLen || h.srcLen == 0 {
		if z.report(codec.ErrCorrupt, off, "damaged block header (lengths %d, %d)", h.dstLen, h.srcLen) {
			return
		}
		if !z.tryLonger(&h, off) {
			z.resync()
		}
		return
	}
	if !z.fill(h.len + h.srcLen) {
		if z.err == nil && !z.report(codec.ErrTruncated, off, "file ends inside a block") {
			z.restLost()
		}
		return
	}
	data := z.win[z.pos+h.len : z.pos+h.len+h.srcLen]
	out, used, ok := z.decode(&h, data, off)
	if z.st == stEnd {
		return
	}
	if ok {
		if used < h.srcLen && z.report(codec.ErrCorrupt, off,
			"block's compressed length says %d, its data ends after %d (output verified)", h.srcLen, used) {
			return
		}
		if len(out) != h.dstLen && z.report(codec.ErrCorrupt, off,
			"block's length says %d, it holds %d (output verified)", h.dstLen, len(out)) {
			return
		}
		z.pos += h.len + used
		z.deliver(out, h.len+used)
		return
	}
	// A bad block. Its compressed length may be what is damaged.
	if h.srcLen < h.dstLen && z.tryLonger(&h, off) {
		return
	}
	// If the next header is where this one says, only the data is damaged
	// and the loss is exactly one block.
	z.fill(h.len + h.srcLen + maxBlockHeader)
	if z.err != nil {
		return
	}
	next := z.pos + h.len + h.srcLen
	nh, ok := z.lay.parseBlockHeader(z.win[next:])
	if !ok || !z.plausible(&nh) {
		// The damage runs on into the next block's header. This block's
		// own header is read right (its data sits where its lengths say)
		// when its output length is that of every full block: keep its
		// best guess, and look for the next block from where it ends.
		if z.report(codec.ErrCorrupt, off, "damaged block (header or data)") {
			return
		}
		z.bad = true
		if h.dstLen != z.blockSize {
			z.resync()
			return
		}
		z.taint(data, &h, h.dstLen, false)
		z.pos = next // the next step finds the damaged header there
		return
	}
	n := h.dstLen
	resync := false
	if nh.dstLen != 0 && n != z.blockSize {
		n = z.blockSize // every block but the last is full: the length field is damaged
	} else if n > z.blockSize {
		n, resync = z.blockSize, true // a last block longer than the others: damaged too
	}
	if z.report(codec.ErrCorrupt, off, "block of %d bytes fails to decode or verify: its output is not to be trusted", n) {
		return
	}
	z.bad = true
	z.taint(data, &h, n, resync)
	z.pos = next
}

// taint queues the best guess at a block that failed to decode or to
// verify (what its data decodes to, up to where decoding fails) as a
// Tainted span, and the rest of its n bytes as a Lost one (with Resync set
// when n is not sure). data must not lie in the window's part that a fill
// may move before the output is read: it is decoded (or copied) here.
func (z *Reader) taint(data []byte, h *blockHeader, n int, resync bool) {
	if cap(z.dec) < n {
		z.dec = make([]byte, 0, max(n, z.blockSize))
	}
	var out []byte
	if h.srcLen >= h.dstLen {
		out = append(z.dec[:0], data[:min(len(data), n)]...) // stored
	} else {
		out, _, _ = decompress1X(z.dec[:0:n], data)
	}
	z.out, z.r = out, 0
	if len(out) > 0 {
		z.spans = append(z.spans, codec.Span{Off: z.outOff, Len: int64(len(out)), State: damage.Tainted})
	}
	z.outOff += int64(len(out))
	if rest := n - len(out); rest > 0 || resync {
		sp := codec.Span{Off: z.outOff, Len: int64(rest), State: damage.Lost}
		if resync {
			sp.Resync, sp.MaxLen = true, int64(z.blockSize)
		}
		z.lose(sp)
	}
}

// tryLonger decodes the compressed block at z.pos as if its compressed
// length were unknown, letting the LZO1X end marker say where it ends. If
// the output verifies, it is delivered and tryLonger reports true.
func (z *Reader) tryLonger(h *blockHeader, off int64) bool {
	if !z.lay.hasDataSum() || h.dstLen > z.blockSize {
		return false
	}
	hl := z.lay.compressedHeaderLen()
	worst := h.dstLen + h.dstLen/16 + 64 + 3 // LZO1X's worst-case expansion
	z.fill(hl + worst)
	if z.err != nil || len(z.win)-z.pos <= hl {
		return false
	}
	data := z.win[z.pos+hl : min(len(z.win), z.pos+hl+worst)]
	if cap(z.dec) < h.dstLen {
		z.dec = make([]byte, 0, max(h.dstLen, z.blockSize))
	}
	out, used, err := decompress1X(z.dec[:0], data)
	if err != nil || len(out) != h.dstLen || !z.lay.verifyData(h, out) {
		return false
	}
	if z.report(codec.ErrCorrupt, off, "block's compressed length says %d, its data ends after %d (output verified)", h.srcLen, used) {
		return true
	}
	z.pos += hl + used
	z.deliver(out, hl+used)
	return true
}

// plausible reports whether a block header could be a real one of this file.
func (z *Reader) plausible(h *blockHeader) bool {
	return h.dstLen == 0 || (h.dstLen <= z.blockSize && h.srcLen > 0 && h.srcLen <= h.dstLen)
}

// decode decodes and verifies one block's data. It returns the output, the
// input used, and whether the output is verified.
func (z *Reader) decode(h *blockHeader, data []byte, off int64) ([]byte, int, bool) {
	cOK := z.lay.verifyCompressed(h, data)
	var out []byte
	used := len(data)
	if h.srcLen == h.dstLen {
		out = data // stored
	} else {
		// LZO1X expands at most 255:1: no need for more room than that.
		room := min(max(h.dstLen, z.blockSize), MaxBlockSize, 256*len(data)+1024)
		if cap(z.dec) < room {
			z.dec = make([]byte, 0, room)
		}
		var err error
		out, used, err = decompress1X(z.dec[:0], data)
		if err != nil {
			return nil, 0, false
		}
	}
	if !z.lay.hasDataSum() {
		// Nothing to verify the output by but its shape.
		return out, used, cOK && len(out) == h.dstLen && used == len(data)
	}
	if !z.lay.verifyData(h, out) {
		return nil, 0, false
	}
	if !cOK {
		z.report(codec.ErrCorrupt, off, "compressed-data checksum mismatch, output verified")
	}
	return out, used, true
}

// deliver queues a verified block's output.
func (z *Reader) deliver(out []byte, inLen int) {
	z.out, z.r = out, 0
	z.outOff += int64(len(out))
	z.blockSize = max(z.blockSize, len(out))
	z.goodIn += int64(inLen)
	z.goodN++
}

// lose queues a lost span's placeholder zeros.
func (z *Reader) lose(sp codec.Span) {
	z.spans = append(z.spans, sp)
	z.zeros += sp.Len
	z.outOff += sp.Len
}

// resync scans from the damaged header at z.pos for the next block that
// verifies (or the end-of-file marker), reporting the gap as a Lost span
// with Resync set.
func (z *Reader) resync() {
	fromOff := z.at(z.pos)
	z.bad = true
	if z.rebuild() {
		return
	}
	z.pos++
	for {
		if !z.fill(maxBlockHeader + z.blockSize + 4) {
			if z.err != nil {
				return
			}
			if len(z.win)-z.pos < 4 {
				z.pos = len(z.win)
				z.report(codec.ErrCorrupt, fromOff, "no verifiable block after the damage: the rest of the file is lost")
				z.restLost()
				return
			}
		}
		if z.candidate() {
			break
		}
		z.pos++
	}
	skipped := z.at(z.pos) - fromOff
	// Estimate the blocks lost from the mean block seen so far (before
	// any, half a block: LZO1X's usual ratio), but never below what the
	// densest block could take.
	least := int64(z.blockSize/256 + minBlockBytes)
	mean := max(least, int64(z.blockSize/2))
	if z.goodN > 0 {
		mean = max(least, z.goodIn/z.goodN)
	}
	blocks := max(1, (skipped+mean/2)/mean)
	// A block compresses by at most 255:1, so each lost block took at
	// least blockSize/256 bytes of input besides its header.
	sp := codec.Span{Off: z.outOff, Len: blocks * int64(z.blockSize), State: damage.Lost, Resync: true,
		MaxLen: (skipped/least + 1) * int64(z.blockSize)}
	z.report(codec.ErrCorrupt, fromOff, "skipped %d bytes to the next verified block at input offset %d", skipped, z.at(z.pos))
	z.lose(sp)
}

// rebuild decodes the block whose header at z.pos is damaged from where
// its data starts, as a compressed or a stored block of the file's layout:
// if it decodes to a full block (or a last one) that ends exactly where a
// block that verifies (or the end-of-file marker) starts, the header's
// length fields were what was damaged. The block is delivered if the
// header's checksum verifies it, or queued Tainted if not; rebuild reports
// whether it did either.
func (z *Reader) rebuild() bool {
	if z.lay.adlerC || z.lay.crcC {
		return false // the compressed checksums make a compressed header's length uncertain; rare
	}
	hl := z.lay.compressedHeaderLen()
	z.fill(hl + z.blockSize + z.blockSize/16 + 64 + 3 + maxBlockHeader + len(magic))
	start := z.pos
	b := z.win[start:]
	if cap(z.rb) < z.blockSize {
		z.rb = make([]byte, 0, z.blockSize)
	}
	var out []byte
	end := -1
	if len(b) > hl {
		o, used, err := decompress1X(z.rb[:0:z.blockSize], b[hl:])
		if err == nil && z.endsAt(start+hl+used, len(o)) {
			out, end = o, start+hl+used
		}
	}
	if end < 0 && len(b) >= hl+z.blockSize && z.endsAt(start+hl+z.blockSize, z.blockSize) {
		out, end = append(z.rb[:0], b[hl:hl+z.blockSize]...), start+hl+z.blockSize // stored
	}
	z.pos = start
	if end < 0 {
		return false
	}
	h, _ := z.lay.parseBlockHeader(b)
	off := z.at(start)
	if z.lay.hasDataSum() && z.lay.verifyData(&h, out) {
		z.report(codec.ErrCorrupt, off, "block header's lengths damaged: the block, rebuilt from its data, verifies")
		z.pos = end
		z.deliver(out, end-start)
		return true
	}
	z.report(codec.ErrCorrupt, off, "block header damaged: its data decodes to a whole block, which nothing verifies")
	z.pos = end
	z.out, z.r = out, 0
	z.spans = append(z.spans, codec.Span{Off: z.outOff, Len: int64(len(out)), State: damage.Tainted})
	z.outOff += int64(len(out))
	return true
}

// endsAt reports whether a block of n output bytes can end at window
// index i: a full block followed by one that verifies, or a block no
// longer than full followed by the end-of-file marker.
func (z *Reader) endsAt(i, n int) bool {
	if n == 0 || n > z.blockSize || i+4 > len(z.win) {
		return false
	}
	if n < z.blockSize && binary.BigEndian.Uint32(z.win[i:]) != 0 {
		return false
	}
	p := z.pos
	z.pos = i
	ok := z.candidate()
	z.pos = p
	return ok
}

// candidate reports whether a block that verifies, or the end-of-file
// marker at the end of the input, starts at z.pos.
func (z *Reader) candidate() bool {
	b := z.win[z.pos:]
	h, ok := z.lay.parseBlockHeader(b)
	if !ok || !z.plausible(&h) {
		return false
	}
	if h.dstLen == 0 {
		return len(b) == 4 && z.eof || len(b) >= 4+len(magic) && [9]byte(b[4:13]) == magic
	}
	end := h.len + h.srcLen
	if end > len(b) {
		return false
	}
	// A block shorter than the others must be the last one.
	if h.dstLen != z.blockSize && (len(b) < end+4 || binary.BigEndian.Uint32(b[end:]) != 0) {
		return false
	}
	if !z.lay.hasDataSum() && !(z.lay.adlerC || z.lay.crcC) {
		return false // nothing could confirm it
	}
	_, used, ok := z.decodeQuiet(&h, b[h.len:end])
	return ok && used == h.srcLen
}

// decodeQuiet is decode without reporting a compressed-checksum mismatch.
func (z *Reader) decodeQuiet(h *blockHeader, data []byte) ([]byte, int, bool) {
	strict := z.opt.Strict
	n, np := len(z.problems), z.nprob
	z.opt.Strict = false
	out, used, ok := z.decode(h, data, 0)
	z.opt.Strict = strict
	z.problems, z.nprob = z.problems[:n], np
	return out, used, ok
}

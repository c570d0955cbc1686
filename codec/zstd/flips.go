package zstd

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Repair of a small error: a flipped bit (or a changed byte).
//
// A bit flip in a compressed block that the decoder detects costs a block
// and everything copied from it, yet the archive holds all it needs to be
// put back: try each flip of the failing block and keep the one that makes
// the frame's content checksum match. Decoding alone does not always single
// it out: measured on the CLI's archives, in a sequences section the block
// checks leave one candidate of some 10^5 (now and then two), but in a
// Huffman stream hundreds to thousands of flips decode the block and every
// block after it (the code resynchronises; literals change no state). So
// each candidate that survives the cheap checks is decoded to the frame's
// end, from the decoder state at the failing block (its window, repeat
// offsets, tables and the checksum's running hash: nothing before the block
// is decoded again), and accepted only when the checksum matches and no
// other candidate's does. When the budget ends before every candidate was
// tried, a match found is still taken (FlipStats.Exhaustive is false: no
// second match was ruled out).
//
// The candidates (flipsearch.go) are narrowed by the section that failed: when one of the
// four Huffman streams fails and the other three decode, only that stream
// (with the literals header, the tree description and the jump table) can
// hold a single flip; when the literals decode, only the literals header
// and the sequences section can. A candidate in a Huffman stream must first
// make that stream decode by itself, one in the sequences section must make
// the sequences decode and fit the block (flipseqs.go: from a checkpoint
// before the byte, and cut where it rejoins the damaged stream's path);
// only then is the block decoded and the frame after it, the later blocks
// replayed from their decoded literals and sequences when the state after
// the block is unchanged (flipreplay.go).
//
// A flip in a block header breaks the chain of headers (or, in the type
// bits, makes a compressed block raw and a later block fail): the flips of
// the last headers are tried (flipheaders.go), each decoding the frame from its start
// (there are few).
//
// Out of scope: a flip the decoder does not detect (every block decodes and
// only the checksum fails: nothing says which block), a flip in a block's
// content that decodes wrongly without an error when a later block fails,
// a frame without a content checksum (nothing would verify a candidate),
// and more than one fault (no candidate matches: refused).

// DefaultFlipBudget is the time a flip repair allows each failing block.
const DefaultFlipBudget = 60 * time.Second

// FlipOptions configures RepairFlips.
type FlipOptions struct {
	// Budget is the time allowed for the candidates of one failing
	// block (0: DefaultFlipBudget).
	Budget time.Duration
	// Workers is how many candidates are tried at once (0: GOMAXPROCS).
	Workers int
	// Bytes tries every value of each byte of the narrowed positions,
	// not only its single-bit flips (32 times the candidates).
	Bytes bool
	// MaxCandidates caps the candidates tried per block (0: no cap).
	MaxCandidates int
}

// FlipRepair is one repaired byte.
type FlipRepair struct {
	Block  int64 `json:"block"`  // input offset of the block's header
	Offset int64 `json:"offset"` // input offset of the byte
	Bit    int   `json:"bit"`    // the flipped bit (0: least significant), -1 if more changed
	Old    byte  `json:"old"`
	New    byte  `json:"new"`
}

// FlipStats counts a failing block's candidates by how far they got.
type FlipStats struct {
	Block      int64         `json:"block"`      // input offset of the failing block's header
	Section    string        `json:"section"`    // the section the candidates were narrowed to
	Positions  int           `json:"positions"`  // bytes whose candidates are tried
	Candidates int           `json:"candidates"` // candidates in those bytes
	Tried      int           `json:"tried"`      // candidates tried within the budget
	Section1   int           `json:"section_ok"` // passed the section's own check
	BlockOK    int           `json:"block_ok"`   // the block decoded
	Next1      int           `json:"next1_ok"`   // and the next block (or the frame ended)
	Next4      int           `json:"next4_ok"`   // and the 4 next
	Next16     int           `json:"next16_ok"`  // and the 16 next
	End        int           `json:"end_ok"`     // decoded to the frame's end
	Matched    int           `json:"matched"`    // the frame's checksum matched
	Elapsed    time.Duration `json:"elapsed_ns"`
	Exhaustive bool          `json:"exhaustive"` // every candidate was tried
}

// FlipResult is what RepairFlips found.
type FlipResult struct {
	Intact  bool         `json:"intact"`  // every frame decoded and its checksum matched as it was
	Repairs []FlipRepair `json:"repairs"` // the changes that make the stream whole
	Blocks  []FlipStats  `json:"blocks"`  // each failing block's search
	// Why says why the stream is not whole after the repairs, or "".
	Why string `json:"why,omitempty"`
}

// Repaired reports whether the repairs make the stream whole.
func (r *FlipResult) Repaired() bool { return !r.Intact && r.Why == "" && len(r.Repairs) > 0 }

// String says what was repaired, as "repaired at offset X, bit B".
func (f FlipRepair) String() string {
	if f.Bit >= 0 {
		return fmt.Sprintf("repaired at offset %d, bit %d (byte %02x, was %02x)", f.Offset, f.Bit, f.New, f.Old)
	}
	return fmt.Sprintf("repaired at offset %d: byte %02x, was %02x", f.Offset, f.New, f.Old)
}

// errFlipStop ends a frame's walk with FlipResult.Why set.
var errFlipStop = errors.New("zstd: flip repair stops")

// RepairFlips reads the zstd stream src (size bytes) and, at each
// compressed block that fails to decode, looks for the one flipped bit
// (with opt.Bytes, changed byte) that makes its frame decode with a
// matching content checksum. It never writes to src: apply the repairs to
// a copy. An error is returned only when src cannot be read.
func RepairFlips(src io.ReaderAt, size int64, opt FlipOptions) (*FlipResult, error) {
	fw := &flipWalk{src: src, size: size, opt: opt, res: &FlipResult{}}
	fw.d.h = &fw.h
	intact := true
	for pos := int64(0); pos < size; {
		next, repaired, err := fw.frame(pos)
		if err == errFlipStop {
			return fw.res, nil
		}
		if err != nil {
			return nil, err
		}
		intact = intact && !repaired
		pos = next
	}
	fw.res.Intact = intact && len(fw.res.Repairs) == 0
	return fw.res, nil
}

// flipWalk decodes a stream frame by frame for RepairFlips.
type flipWalk struct {
	src  io.ReaderAt
	size int64
	opt  FlipOptions
	res  *FlipResult
	d    decoder
	h    history
	pre  decState
	buf  []byte
}

// stop ends the walk: the stream is not whole, for the reason given.
func (fw *flipWalk) stop(format string, a ...any) error {
	fw.res.Why = fmt.Sprintf(format, a...)
	return errFlipStop
}

// read returns n bytes of src at off in buf (reused), or fewer at the end.
func readAt(src io.ReaderAt, off int64, n int, buf *[]byte) ([]byte, error) {
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	k, err := src.ReadAt(b, off)
	if k == n {
		return b, nil
	}
	if err == io.EOF || err == nil {
		return b[:k], nil
	}
	return nil, err
}

// flipBlock is a block of a frame: its header's input offset and header.
type flipBlock struct {
	at int64
	bh blockHeader
}

// frame walks the frame (or skippable frame) at pos and returns where the
// next one starts, and whether a block of it was repaired.
func (fw *flipWalk) frame(pos int64) (int64, bool, error) {
	hb, err := readAt(fw.src, pos, 18, &fw.buf)
	if err != nil {
		return 0, false, err
	}
	if len(hb) < 4 {
		return 0, false, fw.stop("the input ends inside a frame magic at offset %d", pos)
	}
	if le32(hb)&skippableMask == skippableMagicLow {
		if len(hb) < 8 {
			return 0, false, fw.stop("the input ends inside a skippable frame at offset %d", pos)
		}
		return pos + 8 + int64(le32(hb[4:])), false, nil
	}
	fh, err := parseFrameHeader(hb)
	if err != nil {
		return 0, false, fw.stop("frame at offset %d: %v (not a small error)", pos, err)
	}
	// The chain of block headers must hold, or a flip in one of its
	// headers mend it.
	ch, err := walkChain(fw.src, fw.size, pos, fh)
	if err != nil {
		return 0, false, err
	}
	if ch.why != "" {
		fix, ok, err := fw.headerFlips(pos, fh, ch)
		if err != nil {
			return 0, false, err
		}
		if !ok {
			return 0, false, errFlipStop
		}
		fw.res.Repairs = append(fw.res.Repairs, fix)
		ch, err = walkChain(&patchedAt{fw.src, fix.Offset, fix.New}, fw.size, pos, fh)
		if err != nil {
			return 0, false, err
		}
		return ch.end, true, nil
	}
	blocks, end, want := ch.blocks, ch.end, ch.want

	fr := &flipFrame{fw: fw, fh: fh, in: pos, blocks: blocks, want: want}
	h := &fw.h
	h.taints, h.floor = nil, 0
	h.setWindow(fh.window)
	fw.d.resetFrame(fh.blockMax)
	fw.d.lossBefore = false
	var hash xxhash.Digest
	hash.Reset()
	for i := 0; i < len(blocks); i++ {
		b := blocks[i]
		content, err := readAt(fw.src, b.at+3, b.bh.clen, &fw.buf)
		if err != nil {
			return 0, false, err
		}
		h.reserve(fh.blockMax)
		w0 := h.w
		if b.bh.typ == blockCompressed {
			fw.pre.save(&fw.d)
		}
		res := fw.d.decodeBlock(b.bh, content)
		if res.err != nil || res.lost || res.tainted {
			if !fh.checksum {
				return 0, false, fw.stop("block at offset %d: %v (its frame has no checksum to verify a repair)", b.at, res.err)
			}
			h.w = w0
			st := &flipState{
				win:        append([]byte(nil), h.buf[max(0, w0-h.window, int(h.frameStart-h.base)):w0]...),
				out:        h.base + int64(w0),
				frameStart: h.frameStart,
				window:     h.window,
				blockMax:   fh.blockMax,
				hash:       hash,
				from:       &fw.d,
			}
			st.dec = fw.pre
			fix, ok, err := fr.search(i, append([]byte(nil), content...), st, res.err)
			if err != nil {
				return 0, false, err
			}
			if !ok && fw.res.Blocks[len(fw.res.Blocks)-1].Matched == 0 {
				// A block before may have decoded wrongly without an
				// error: one whose type bits flipped (compressed read
				// as raw) leaves the state this one fails on.
				var at []int64
				for _, b := range blocks[max(0, i-4):i] {
					at = append(at, b.at)
				}
				ms, err := fw.flipsAt(pos, fh, at, 0x06, b.at, "the type bits of the block headers before")
				if err != nil {
					return 0, false, err
				}
				if len(ms) == 1 {
					fix, ok = ms[0], true
					fw.res.Why = ""
				}
			}
			if !ok {
				return 0, false, errFlipStop
			}
			// The candidate decoded the frame to its end: the next
			// frame starts after its checksum.
			fw.res.Repairs = append(fw.res.Repairs, fix)
			return end, true, nil
		}
		hash.Write(h.buf[w0:h.w])
		h.r = h.w
	}
	if fh.checksum && uint32(hash.Sum64()) != want {
		return 0, false, fw.stop("the checksum of the frame at offset %d does not match, yet every block decodes: a flip the decoder does not detect (nothing says which block holds it)", pos)
	}
	return end, false, nil
}

// flipFrame is the frame a flip repair works on.
type flipFrame struct {
	fw     *flipWalk
	fh     frameHeader
	in     int64
	blocks []flipBlock
	want   uint32 // the content checksum
}

// flipState is the decoder state at the start of a failing block: what a
// candidate's decoding starts from.
type flipState struct {
	win        []byte // the frame's output in the window before the block
	out        int64  // absolute output offset of the block's output
	frameStart int64
	window     int
	blockMax   int
	dec        decState
	from       *decoder // the decoder dec was saved from
	hash       xxhash.Digest
}

// load makes d (with its own history) start where st is.
func (st *flipState) load(d *decoder) {
	h := d.h
	h.taints, h.floor, h.lent = nil, 0, nil
	h.base = st.out - int64(len(st.win))
	h.w, h.r = 0, 0
	h.window = st.window
	h.limit = h.window + max(min(4*h.window, 16<<20), 4*maxBlockSize)
	if len(h.buf) < len(st.win)+2*maxBlockSize {
		h.buf = make([]byte, min(h.limit, len(st.win)+8*maxBlockSize))
	}
	h.w = copy(h.buf, st.win)
	h.r = h.w
	h.frameStart = st.frameStart
	st.loadTables(d)
	d.lossBefore = false
}

package zstd

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
// The candidates are narrowed by the section that failed: when one of the
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
// the last headers are tried, each decoding the frame from its start
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

// flipCand is a candidate: content[pos] ^= mask.
type flipCand struct {
	pos  int32
	mask uint8
}

// layout is where a compressed block's sections lie in its content, and
// which of them fail by themselves.
type layout struct {
	section   string
	positions [][2]int // byte ranges of the content to try
	stream    [2]int   // the failing Huffman stream's range, or 0, 0
	streamOut int      // its regenerated bytes
	lits      []byte   // the block's literals, the failing stream's wrong
	streamAt  int      // where the failing stream's literals start in lits
	huf       *hufTable
	seqFrom   int // start of the sequences section, -1 if unknown
	regen     int
	// sw walks the sequences bitstream, which starts at bsFrom (0: no
	// walk), from checkpoints.
	sw     *seqWalk
	bsFrom int
}

// seqPositions returns the positions of the sequences section where a
// single fault can lie: its header and tables, and its bitstream from
// where the damaged one fails (the bytes the reader loaded by then), the
// nearest first. It sets up the walk of the bitstream.
func (ly *layout) seqPositions(c []byte, st *flipState) [][2]int {
	all := [][2]int{{ly.seqFrom, len(c)}}
	var d decoder
	st.loadTables(&d)
	ss := c[ly.seqFrom:]
	nseq, cons, err := d.readSeqHeader(ss)
	if err != nil || nseq == 0 || cons >= len(ss) {
		return all
	}
	sw := &seqWalk{ll: d.ll, of: d.of, ml: d.ml, nseq: nseq, regen: ly.regen, blockMax: st.blockMax,
		window: st.window, before: st.out - st.frameStart, reps: d.reps}
	sw.record(ss[cons:])
	ly.sw, ly.bsFrom = sw, ly.seqFrom+cons
	return [][2]int{{ly.bsFrom + sw.failOff, len(c)}, {ly.seqFrom, ly.bsFrom}}
}

// narrow finds where a single fault in the compressed block content c can
// lie, given the decoder state st.
func narrow(c []byte, st *flipState) layout {
	all := layout{section: "the whole block", positions: [][2]int{{0, len(c)}}, seqFrom: -1}
	lh, err := parseLitHeader(c)
	if err != nil || lh.regen > st.blockMax || lh.hsize+lh.csize > len(c) {
		return all
	}
	litEnd := lh.hsize + lh.csize
	ly := layout{seqFrom: litEnd, regen: lh.regen}
	hdr := [2]int{0, lh.hsize}
	if lh.typ < litCompressed {
		// raw or RLE literals cannot fail: the literals header (sizes)
		// or the sequences section
		ly.section = "literals header and sequences section"
		ly.positions = append(ly.seqPositions(c, st), hdr)
		return ly
	}
	body := c[lh.hsize:litEnd]
	var huf hufTable
	var wt fseTable
	tree := 0
	if lh.typ == litCompressed {
		n, err := huf.read(body, &wt)
		if err != nil {
			ly.section = "literals header and Huffman tree"
			ly.positions = [][2]int{{0, litEnd}}
			return ly
		}
		tree = n
	} else {
		d := decoder{}
		st.loadTables(&d)
		if !d.huf.valid {
			return all
		}
		huf = d.huf
	}
	ly.huf = &huf
	streams := body[tree:]
	head := [2]int{0, lh.hsize + tree}
	var ranges [][2]int
	var outs []int
	if lh.streams == 1 {
		ranges, outs = [][2]int{{0, len(streams)}}, []int{lh.regen}
	} else {
		if len(streams) < 10 || lh.regen < 4 {
			ly.section = "literals"
			ly.positions = [][2]int{{0, litEnd}}
			return ly
		}
		head[1] += 6
		s1, s2, s3 := int(le16(streams)), int(le16(streams[2:])), int(le16(streams[4:]))
		if 6+s1+s2+s3 >= len(streams) {
			ly.section = "literals (jump table)"
			ly.positions = [][2]int{{0, litEnd}}
			return ly
		}
		seg := (lh.regen + 3) / 4
		if 3*seg > lh.regen {
			ly.section = "literals"
			ly.positions = [][2]int{{0, litEnd}}
			return ly
		}
		a := 6
		for _, s := range []int{s1, s2, s3, len(streams) - 6 - s1 - s2 - s3} {
			ranges = append(ranges, [2]int{a, a + s})
			a += s
		}
		outs = []int{seg, seg, seg, lh.regen - 3*seg}
	}
	lits := make([]byte, lh.regen)
	var failed []int
	var at []int
	o := 0
	for i, r := range ranges {
		at = append(at, o)
		if huf.decodeStream(lits[o:o+outs[i]], streams[r[0]:r[1]]) != nil {
			failed = append(failed, i)
		}
		o += outs[i]
	}
	base := lh.hsize + tree
	switch len(failed) {
	case 0:
		ly.section = "literals header and sequences section"
		ly.positions = append(ly.seqPositions(c, st), hdr)
	case 1:
		r := ranges[failed[0]]
		ly.section = fmt.Sprintf("Huffman stream %d of %d", failed[0]+1, len(ranges))
		ly.stream = [2]int{base + r[0], base + r[1]}
		ly.streamOut = outs[failed[0]]
		ly.lits, ly.streamAt = lits, at[failed[0]]
		ly.positions = [][2]int{head, ly.stream}
	default:
		ly.section = fmt.Sprintf("literals header, Huffman tree and jump table (%d streams fail)", len(failed))
		ly.positions = [][2]int{head}
	}
	return ly
}

// loadTables sets d's entropy tables and repeat offsets from st.
func (st *flipState) loadTables(d *decoder) { st.dec.loadInto(d, st.from) }

// loadInto is restore into a decoder d other than the one, from, that s
// was saved from.
func (s *decState) loadInto(d, from *decoder) {
	d.blockMax, d.huf, d.hufDefined, d.reps = s.blockMax, s.huf, s.hufDefined, s.reps
	cur, own := d.tables()
	_, fromOwn := from.tables()
	for i := range cur {
		*cur[i] = s.tabs[i]
		if s.tabs[i] == fromOwn[i] {
			*cur[i] = own[i]
			own[i].log, own[i].valid = s.bufs[i].log, s.bufs[i].valid
			own[i].t = append(own[i].t[:0], s.bufs[i].t...)
		}
	}
}

// search tries the candidates of the failing block blocks[k] (content c,
// decoded from st) and returns the one repair that makes the frame's
// checksum match.
func (fr *flipFrame) search(k int, c []byte, st *flipState, why error) (FlipRepair, bool, error) {
	fw := fr.fw
	start := time.Now()
	b := fr.blocks[k]
	ly := narrow(c, st)
	stats := FlipStats{Block: b.at, Section: ly.section}
	// The candidates: each position's flips (or byte values), the
	// positions in the order narrow gives.
	var positions []int32
	for _, r := range ly.positions {
		for p := r[0]; p < r[1]; p++ {
			positions = append(positions, int32(p))
		}
	}
	stats.Positions = len(positions)
	per := 8
	if fw.opt.Bytes {
		per = 255
	}
	cand := func(i int) flipCand {
		x := flipCand{pos: positions[i/per]}
		if per == 8 {
			x.mask = 1 << (i % 8)
		} else {
			x.mask = uint8(i%255) + 1
		}
		return x
	}
	ncand := len(positions) * per
	stats.Candidates = ncand
	if m := fw.opt.MaxCandidates; m > 0 && ncand > m {
		ncand = m
	}
	budget := fw.opt.Budget
	if budget <= 0 {
		budget = DefaultFlipBudget
	}
	deadline := start.Add(budget)
	workers := fw.opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		next    atomic.Int64
		mu      sync.Mutex
		matches []flipCand
		rerr    error
		wg      sync.WaitGroup
	)
	rps := &flipReplays{}
	if ly.lits != nil {
		// A flip in the failing Huffman stream leaves the sequences.
		var d decoder
		st.loadTables(&d)
		if res := d.decodeCompressed(c, modeCheck); !res.lost {
			rps.seqsK = append([]seq(nil), d.seqs...)
			rps.eager = buildReplay(fr, k, &d)
		}
	}
	counts := make([]FlipStats, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(cs *FlipStats) {
			defer wg.Done()
			t := newFlipTrier(fr, k, c, st, &ly, rps)
			for {
				i := int(next.Add(1)) - 1
				if i >= ncand || time.Now().After(deadline) {
					return
				}
				x := cand(i)
				ok, err := t.try(x, cs)
				if err != nil {
					mu.Lock()
					rerr = err
					mu.Unlock()
					return
				}
				if ok {
					mu.Lock()
					matches = append(matches, x)
					mu.Unlock()
				}
			}
		}(&counts[w])
	}
	wg.Wait()
	for _, cs := range counts {
		stats.Tried += cs.Tried
		stats.Section1 += cs.Section1
		stats.BlockOK += cs.BlockOK
		stats.Next1 += cs.Next1
		stats.Next4 += cs.Next4
		stats.Next16 += cs.Next16
		stats.End += cs.End
		stats.Matched += cs.Matched
	}
	stats.Exhaustive = stats.Tried == stats.Candidates
	stats.Elapsed = time.Since(start)
	fw.res.Blocks = append(fw.res.Blocks, stats)
	if rerr != nil {
		return FlipRepair{}, false, rerr
	}
	switch {
	case len(matches) > 1:
		// (seen: two flips of a Huffman tree description that give the
		// same table for the literals used)
		var at []string
		for _, m := range matches[:min(len(matches), 4)] {
			at = append(at, fmt.Sprintf("offset %d mask %02x", b.at+3+int64(m.pos), m.mask))
		}
		fw.res.Why = fmt.Sprintf("block at offset %d: %v; %d candidates make the checksum match (%s): which one undoes the damage is unknown, refused",
			b.at, why, len(matches), strings.Join(at, ", "))
		return FlipRepair{}, false, nil
	case len(matches) == 0 && !stats.Exhaustive:
		fw.res.Why = fmt.Sprintf("block at offset %d: %v; no single flip found in %d of %d candidates (%s) within the budget of %s", b.at, why, stats.Tried, stats.Candidates, ly.section, budget)
		return FlipRepair{}, false, nil
	case len(matches) == 0:
		fw.res.Why = fmt.Sprintf("block at offset %d: %v; none of the %d candidates (%s) makes the checksum match: more than a single fault", b.at, why, stats.Candidates, ly.section)
		return FlipRepair{}, false, nil
	}
	m := matches[0]
	old := c[m.pos]
	fix := FlipRepair{Block: b.at, Offset: b.at + 3 + int64(m.pos), Bit: -1, Old: old, New: old ^ m.mask}
	if m.mask&(m.mask-1) == 0 {
		for fix.Bit = 0; m.mask>>fix.Bit != 1; fix.Bit++ {
		}
	}
	return fix, true, nil
}

// flipTrier tries candidates on its own decoder and history.
type flipTrier struct {
	fr      *flipFrame
	k       int
	c       []byte // the failing block's content, a candidate applied while tried
	st      *flipState
	ly      *layout
	d       decoder
	h       history
	buf     []byte
	scratch []byte
	lits    []byte // the block's literals, for a candidate in a Huffman stream
	rp      *flipReplays
}

// flipReplays are the replays of a search (see replay).
type flipReplays struct {
	eager *replay // for candidates in a Huffman stream, or nil
	seqsK []seq   // the failing block's sequences, with eager
	lazy  lazyReplay
}

func newFlipTrier(fr *flipFrame, k int, c []byte, st *flipState, ly *layout, rp *flipReplays) *flipTrier {
	t := &flipTrier{fr: fr, k: k, c: append([]byte(nil), c...), st: st, ly: ly, rp: rp}
	t.lits = append([]byte(nil), ly.lits...)
	t.d.h = &t.h
	t.scratch = make([]byte, max(ly.streamOut, 1))
	return t
}

// try reports whether candidate x makes the frame decode with a matching
// checksum, counting in cs how far it got.
func (t *flipTrier) try(x flipCand, cs *FlipStats) (bool, error) {
	cs.Tried++
	c := t.c
	c[x.pos] ^= x.mask
	defer func() { c[x.pos] ^= x.mask }()
	p := int(x.pos)
	ly := t.ly
	switch {
	case ly.stream[1] > 0 && p >= ly.stream[0] && p < ly.stream[1]:
		if ly.huf.decodeStream(t.scratch[:ly.streamOut], c[ly.stream[0]:ly.stream[1]]) != nil {
			return false, nil
		}
	case ly.sw != nil && p >= ly.bsFrom:
		in := c[ly.bsFrom:]
		i, ck, ok := ly.sw.from(in, p-ly.bsFrom)
		if !ok {
			return false, nil
		}
		if ok, _ := ly.sw.walk(in, i, ck, p-ly.bsFrom); !ok {
			return false, nil
		}
	case ly.seqFrom >= 0 && p >= ly.seqFrom:
		t.st.loadTables(&t.d)
		if !t.seqsFit(c[ly.seqFrom:]) {
			return false, nil
		}
	}
	cs.Section1++
	t.st.load(&t.d)
	h := &t.h
	hash := t.st.hash
	fr := t.fr
	inStream := ly.stream[1] > 0 && p >= ly.stream[0] && p < ly.stream[1]
	h.reserve(fr.fh.blockMax)
	w0 := h.w
	if inStream && t.rp.eager != nil {
		// only the literals changed: the block's sequences are known
		copy(t.lits[ly.streamAt:], t.scratch[:ly.streamOut])
		own := t.d.seqs
		t.d.seqs = t.rp.seqsK
		err := t.d.execute(t.lits)
		t.d.seqs = own
		if err != nil {
			return false, nil
		}
	} else if res := t.d.decodeBlock(fr.blocks[t.k].bh, c); res.err != nil || res.lost || res.tainted {
		return false, nil
	}
	hash.Write(h.buf[w0:h.w])
	h.r = h.w
	cs.BlockOK++
	var rp *replay
	switch {
	case inStream:
		rp = t.rp.eager
	case ly.sw != nil && p >= ly.bsFrom:
		// the tables are the block's own: the same state if the
		// repeat offsets are
		if r := t.rp.lazy.get(fr, t.k, &t.d); r != nil && r.reps == t.d.reps {
			rp = r
		}
	}
	if rp != nil {
		if !rp.run(t, func(b []byte) { hash.Write(b) }) {
			return false, nil
		}
	} else {
		for i := t.k + 1; i < len(fr.blocks); i++ {
			b := fr.blocks[i]
			content, err := readAt(fr.fw.src, b.at+3, b.bh.clen, &t.buf)
			if err != nil {
				return false, err
			}
			h.reserve(fr.fh.blockMax)
			w0 := h.w
			res := t.d.decodeBlock(b.bh, content)
			if res.err != nil || res.lost || res.tainted {
				t.countNext(i-1-t.k, cs, false)
				return false, nil
			}
			hash.Write(h.buf[w0:h.w])
			h.r = h.w
		}
	}
	t.countNext(len(fr.blocks)-1-t.k, cs, true)
	cs.End++
	if uint32(hash.Sum64()) != fr.want {
		return false, nil
	}
	cs.Matched++
	return true, nil
}

// countNext counts a candidate whose n blocks after the failing one
// decoded (at the frame's end: every one it has).
func (t *flipTrier) countNext(n int, cs *FlipStats, end bool) {
	for _, k := range []struct {
		n int
		c *int
	}{{1, &cs.Next1}, {4, &cs.Next4}, {16, &cs.Next16}} {
		if n >= k.n || end {
			*k.c++
		}
	}
}

// seqsFit reports whether the sequences section ss decodes with the
// tables loaded in t.d and its sequences fit the block: the literals they
// take exist, the output does not exceed the block, and every offset lies
// within the window and the frame.
func (t *flipTrier) seqsFit(ss []byte) bool {
	d := &t.d
	nseq, cons, err := d.readSeqHeader(ss)
	if err != nil {
		return false
	}
	if nseq == 0 {
		return true
	}
	if d.decodeSeqs(ss[cons:], nseq) != nil {
		return false
	}
	lits, total := 0, 0
	before := t.st.out - t.st.frameStart // the frame's output before the block
	for _, s := range d.seqs {
		lits += int(s.ll)
		total += int(s.ll)
		if s.off == 0 || int(s.off) > t.st.window || int64(s.off) > before+int64(total) {
			return false
		}
		total += int(s.ml)
	}
	return lits <= t.ly.regen && total+t.ly.regen-lits <= t.st.blockMax
}

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

package protect

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/reedsolomon"
)

// Parity is the layout of the Reed-Solomon parity over the archive file.
//
// The file is cut into segments of DataShards × Stripes × ShardSize bytes
// (the last one shorter). A segment is DataShards columns of Stripes
// consecutive shards; stripe t of a segment is shard t of every column,
// plus ParityShards parity shards. So a contiguous run of damage hits each
// stripe at most once per column length (Stripes × ShardSize bytes) it
// covers, and scattered small hits fall into different stripes: a stripe
// is rebuilt when at most ParityShards of its shards are damaged. Damage
// is located by the chunk hashes, one per shard of the file.
type Parity struct {
	Code         string `json:"code"` // "reed-solomon-gf8"
	DataShards   int    `json:"data_shards"`
	ParityShards int    `json:"parity_shards"`
	ShardSize    int    `json:"shard_size"`
	Stripes      int    `json:"stripes"` // per full segment
	// MinStripes is the fewest stripes a segment has, so that small
	// archives too survive a run of damage of MinStripes × ParityShards
	// chunks (trailing columns then lie past the file: zeros).
	MinStripes int `json:"min_stripes"`
}

// Defaults of the layout.
const (
	DefaultOverhead = 0.02
	shardSize       = 4096
	stripes         = 1024 // 4 MiB columns: parity of a segment is ParityShards × 4 MiB
	minStripes      = 16   // at 2 %, runs of 316 KiB whatever the archive's size
	clusterSize     = 65536
	codeName        = "reed-solomon-gf8"
)

// ParityFor returns the layout whose parity is about overhead × the
// archive's size: as many shards per stripe as GF(2^8) allows (256), so
// that each stripe has as many parity shards as the overhead buys.
func ParityFor(overhead float64) (Parity, error) {
	if !(overhead > 0 && overhead <= 1) {
		return Parity{}, fmt.Errorf("parity overhead %v: must be above 0 and at most 100 %%", overhead)
	}
	m := max(1, int(math.Round(256*overhead/(1+overhead))))
	k := min(256-m, int(math.Round(float64(m)/overhead)))
	return Parity{Code: codeName, DataShards: k, ParityShards: m, ShardSize: shardSize, Stripes: stripes, MinStripes: minStripes}, nil
}

// Overhead returns parity bytes per archive byte.
func (p Parity) Overhead() float64 { return float64(p.ParityShards) / float64(p.DataShards) }

func (p Parity) check() error {
	if p.Code != codeName || p.DataShards < 1 || p.ParityShards < 1 || p.DataShards+p.ParityShards > 256 ||
		p.ShardSize < 64 || p.ShardSize > 1<<20 || p.ShardSize%64 != 0 || p.Stripes < 1 || p.Stripes > 1<<16 ||
		p.MinStripes < 1 || p.MinStripes > p.Stripes {
		return formatErr("parity layout %+v", p)
	}
	return nil
}

func (p Parity) segmentSize() int64 {
	return int64(p.DataShards) * int64(p.Stripes) * int64(p.ShardSize)
}

// segments returns the number of segments of a file of size n.
func (p Parity) segments(n int64) int64 {
	ss := p.segmentSize()
	return (n + ss - 1) / ss
}

// segment describes segment i of a file of size n.
type segment struct {
	index   int64
	start   int64
	length  int64
	stripes int // T of this segment
	shards  int // chunks (shards holding file bytes)
}

func (p Parity) segment(n, i int64) segment {
	ss := p.segmentSize()
	s := segment{index: i, start: i * ss}
	s.length = min(ss, n-s.start)
	perStripe := int64(p.DataShards) * int64(p.ShardSize)
	s.stripes = max(int((s.length+perStripe-1)/perStripe), p.MinStripes)
	s.shards = int((s.length + int64(p.ShardSize) - 1) / int64(p.ShardSize))
	return s
}

// parityLen returns the size of a segment's parity.
func (p Parity) parityLen(s segment) int {
	return p.ParityShards * s.stripes * p.ShardSize
}

// shardOff returns the file offset of the shard in column c, stripe t
// (it may lie past the segment's end: such shards are zeros).
func (p Parity) shardOff(s segment, c, t int) int64 {
	return s.start + (int64(c)*int64(s.stripes)+int64(t))*int64(p.ShardSize)
}

// The encoder holds groupCols columns of a segment and adds their parity
// together: reedsolomon's kernels take up to 10 inputs at once and keep
// the parity in registers meanwhile, so each group reads and writes the
// segment's parity once. Column by column, the parity (ParityShards × 4 MiB,
// far beyond the CPU's caches) would go through memory for every 4 MiB of
// the file: 4.5× the CPU time. 8 columns: 32 MiB held.
const groupCols = 8

// subStripes is how many stripes one Encode covers: 64 KiB of each column
// and of each parity row, which stay in the L2 cache.
const subStripes = 16

// groupBufs is how many groups the encoder lends buffers of: the file is
// read into one while the other's parity is added.
const groupBufs = 2

// encoder computes the chunk hashes and parity of a file, segment by
// segment; emit receives each segment's. The file's bytes reach it either
// read straight into the buffers it lends (it is an archive.Holder:
// Buffer on the reading goroutine, Hold on another, in order), or through
// Write, which copies them into those buffers; Write may follow the
// lending once the reading is over (bytes the decoder did not read).
type encoder struct {
	p     Parity
	size  int64
	rows  [][]byte // the code's parity rows
	codes map[[2]int]reedsolomon.Encoder
	emit  func(s segment, hashes []uint64, parity []byte) error

	// the lending side (Buffer)
	rpos   int64  // file offset of the next byte lent
	rg     *group // the group rpos is in (nil before the first)
	made   int    // group buffers made
	gbytes int    // size of a group buffer
	freeg  chan *group
	order  chan *group // the groups lent, in order, for Hold

	// the holding side (Hold)
	held   int64 // bytes handed to Hold
	seg    segment
	pos    int64  // bytes of the segment consumed
	hashed int64  // bytes of the segment hashed
	first  int    // the segment's column at the start of hg
	hg     *group // the group being filled
	hashes []uint64
	parity []byte
	shards [][]byte
	tmp    [][]byte
	err    error

	mu    sync.Mutex
	frees []func() // of parity and groups
}

// group is the buffer of up to groupCols columns of a segment: the file's
// bytes [start, end), and zeros for the columns' chunks past the file.
type group struct {
	buf        []byte
	start, end int64
	// refs counts the buffers lent and not given back, and one until
	// the group's parity is added: the group is free at zero
	refs atomic.Int32
}

func newEncoder(p Parity, size int64, emit func(segment, []uint64, []byte) error) (*encoder, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	e := &encoder{p: p, size: size, rows: parityRows(p.DataShards, p.ParityShards), codes: map[[2]int]reedsolomon.Encoder{},
		emit: emit, shards: make([][]byte, groupCols+p.ParityShards), tmp: make([][]byte, p.ParityShards),
		freeg: make(chan *group, groupBufs), order: make(chan *group, groupBufs+1)}
	for r := range e.tmp {
		e.tmp[r] = make([]byte, subStripes*p.ShardSize)
	}
	if size > 0 {
		// the first segment's columns are the longest
		s := p.segment(size, 0)
		col := int64(s.stripes) * int64(p.ShardSize)
		e.gbytes = int(min(int64(groupCols), (s.length+col-1)/col) * col)
		e.start(0)
	}
	return e, nil
}

// groupAt returns the bytes [start, end) of a file of size n that the
// encoder's group holding offset off covers.
func (p Parity) groupAt(n, off int64) (start, end int64) {
	s := p.segment(n, off/p.segmentSize())
	g := int64(groupCols) * int64(s.stripes) * int64(p.ShardSize)
	start = s.start + (off-s.start)/g*g
	return start, min(start+g, s.start+s.length)
}

// start begins segment i on the holding side.
func (e *encoder) start(i int64) {
	e.seg = e.p.segment(e.size, i)
	e.pos, e.hashed, e.first = 0, 0, 0
	e.hashes = e.hashes[:0]
	n := e.p.parityLen(e.seg)
	if cap(e.parity) < n {
		e.parity = e.alloc(n)
	}
	e.parity = e.parity[:n] // the first group overwrites it
}

// alloc returns a new buffer of n bytes, given back by free.
func (e *encoder) alloc(n int) []byte {
	b, free := bigBytes(n)
	e.mu.Lock()
	e.frees = append(e.frees, free)
	e.mu.Unlock()
	return b
}

// free gives back the encoder's buffers; it may not be used after.
func (e *encoder) free() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.frees {
		f()
	}
	e.frees, e.parity, e.rg, e.hg = nil, nil, nil, nil
}

// colLen returns the length of a column of the segment.
func (e *encoder) colLen() int64 { return int64(e.seg.stripes) * int64(e.p.ShardSize) }

// Buffer implements archive.Holder: where the file's next bytes go, at
// most n, in the group they belong to. It waits for a group's buffer
// when both are in use, until stop is closed (a nil stop: Write, which
// makes another buffer instead).
func (e *encoder) Buffer(n int, stop <-chan struct{}) ([]byte, func()) {
	if e.rpos >= e.size {
		// past the size protect started with: Hold fails on any byte
		// read there
		return make([]byte, min(n, 64<<10)), func() {}
	}
	if e.rg == nil || e.rpos >= e.rg.end {
		g := e.nextGroup(stop)
		if g == nil {
			return nil, nil
		}
		g.start, g.end = e.p.groupAt(e.size, e.rpos)
		g.refs.Store(1)
		e.order <- g // (room: a group is lent again only after Hold took it, and Write's take it at once)
		e.rg = g
	}
	g := e.rg
	o := e.rpos - g.start
	b := g.buf[o : o+min(int64(n), g.end-e.rpos)]
	e.rpos += int64(len(b))
	g.refs.Add(1)
	return b, func() { e.unref(g) }
}

// nextGroup returns a free group buffer, made if fewer than groupBufs
// were, or nil when stop is closed first.
func (e *encoder) nextGroup(stop <-chan struct{}) *group {
	select {
	case g := <-e.freeg:
		return g
	default:
	}
	if e.made < groupBufs || stop == nil {
		e.made++
		return &group{buf: e.alloc(e.gbytes)}
	}
	select {
	case g := <-e.freeg:
		return g
	case <-stop:
		return nil
	}
}

// unref drops one of g's references; at the last, g is free.
func (e *encoder) unref(g *group) {
	if g.refs.Add(-1) == 0 {
		select {
		case e.freeg <- g:
		default: // (Write made more than groupBufs: let it go)
		}
	}
}

// Hold implements archive.Holder: it consumes the file's next bytes, in
// the buffer Buffer lent for them, and adds a group's parity once it is
// full. After an error it only keeps count, so that the group buffers
// still come free.
func (e *encoder) Hold(b []byte) {
	e.held += int64(len(b))
	S := int64(e.p.ShardSize)
	for len(b) > 0 {
		if e.seg.length == 0 || e.pos == e.seg.length {
			e.fail(fmt.Errorf("archive longer than its size when protect started (%d bytes)", e.size))
			return
		}
		if e.hg == nil {
			// (Buffer queued the group before it lent these bytes)
			select {
			case e.hg = <-e.order:
			default:
				e.fail(errors.New("protect: bytes handed that no buffer was lent for"))
				return
			}
		}
		g := e.hg
		base := int64(e.first) * e.colLen()
		o := e.pos - base
		k := min(int64(len(b)), g.end-g.start-o)
		if &b[0] != &g.buf[o] {
			e.fail(errors.New("protect: bytes handed out of order"))
		}
		e.pos += k
		b = b[k:]
		for ; e.hashed+S <= e.pos || e.hashed < e.pos && e.pos == e.seg.length; e.hashed += S {
			o := e.hashed - base
			e.hashes = append(e.hashes, xxhash.Sum64(g.buf[o:min(o+S, e.pos-base)]))
		}
		if e.seg.start+e.pos == g.end {
			e.addGroup(g.buf)
			e.hg = nil
			e.unref(g)
		}
	}
}

// fail keeps the encoder's first error.
func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// Write consumes the next bytes of the file, copied into the encoder's
// buffers. It may not be called while the file is read into them.
func (e *encoder) Write(b []byte) (int, error) {
	n := len(b)
	e.rpos = e.seg.start + e.pos // (where the lending stopped with a short read)
	for len(b) > 0 && e.err == nil {
		buf, release := e.Buffer(len(b), nil)
		k := copy(buf, b)
		e.Hold(buf[:k])
		release()
		b = b[k:]
	}
	return n, e.err
}

// addGroup adds the parity of the group's columns, cols, and ends the
// segment at its end.
func (e *encoder) addGroup(cols []byte) {
	col := e.colLen()
	used := e.pos - int64(e.first)*col
	g := int((used + col - 1) / col)
	if e.err == nil {
		clear(cols[used : int64(g)*col]) // chunks past the file's end are zeros
		e.encode(cols, g)
	}
	e.first += g
	if e.pos < e.seg.length {
		return
	}
	if e.err == nil {
		if err := e.emit(e.seg, e.hashes, e.parity); err != nil {
			e.fail(err)
		}
	}
	if e.seg.start+e.seg.length < e.size {
		e.start(e.seg.index + 1)
	}
}

// encode adds the parity of the g columns in cols, from column e.first.
func (e *encoder) encode(cols []byte, g int) {
	code, err := e.code(e.first, g)
	if err != nil {
		e.fail(err)
		return
	}
	S, T, m := e.p.ShardSize, e.seg.stripes, e.p.ParityShards
	for t0 := 0; t0 < T; t0 += subStripes {
		t1 := min(T, t0+subStripes)
		for j := 0; j < g; j++ {
			e.shards[j] = cols[(j*T+t0)*S : (j*T+t1)*S]
		}
		for r := 0; r < m; r++ {
			e.shards[g+r] = e.tmp[r][:(t1-t0)*S]
			if e.first == 0 {
				e.shards[g+r] = e.parity[(r*T+t0)*S : (r*T+t1)*S]
			}
		}
		if err := code.Encode(e.shards[:g+m]); err != nil {
			e.fail(err)
			return
		}
		if e.first > 0 {
			for r := 0; r < m; r++ {
				row := e.parity[(r*T+t0)*S : (r*T+t1)*S]
				subtle.XORBytes(row, row, e.tmp[r][:len(row)])
			}
		}
	}
}

// code returns the code of g columns from column c alone: the part of
// the segment's code that they add to the parity.
func (e *encoder) code(c, g int) (reedsolomon.Encoder, error) {
	if rs := e.codes[[2]int{c, g}]; rs != nil {
		return rs, nil
	}
	m := make([][]byte, len(e.rows))
	for r, row := range e.rows {
		m[r] = row[c : c+g]
	}
	rs, err := reedsolomon.New(g, len(m), reedsolomon.WithCustomMatrix(m), reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		return nil, err
	}
	e.codes[[2]int{c, g}] = rs
	return rs, nil
}

// done reports whether every byte of the file was consumed.
func (e *encoder) done() bool {
	return e.err == nil && (e.size == 0 || (e.seg.start+e.seg.length == e.size && e.pos == e.seg.length))
}

// LongestRun returns the longest contiguous run of damage the parity of a
// file of size n rebuilds when nothing else is damaged: ParityShards
// column lengths (of the shortest segment) less a chunk.
func (p Parity) LongestRun(n int64) int64 {
	if n <= 0 {
		return 0
	}
	s := p.segment(n, p.segments(n)-1)
	if p.segments(n) > 1 {
		s = p.segment(n, 0) // a full segment; the last may be shorter
		if last := p.segment(n, p.segments(n)-1); last.stripes < s.stripes {
			s = last
		}
	}
	return max(int64(p.ParityShards)*int64(s.stripes)*int64(p.ShardSize)-int64(p.ShardSize), 0)
}

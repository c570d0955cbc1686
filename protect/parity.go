package protect

import (
	"fmt"
	"math"

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

// encoder computes the chunk hashes and parity of a file streamed through
// Write, segment by segment; emit receives each segment's.
type encoder struct {
	p    Parity
	size int64
	rs   reedsolomon.Encoder
	emit func(s segment, hashes []uint64, parity []byte) error

	seg    segment
	pos    int64 // bytes of the segment consumed
	shard  []byte
	fill   int
	hashes []uint64
	parity []byte
	rows   [][]byte
	err    error
}

func newEncoder(p Parity, size int64, emit func(segment, []uint64, []byte) error) (*encoder, error) {
	rs, err := newRS(p.DataShards, p.ParityShards)
	if err != nil {
		return nil, err
	}
	e := &encoder{p: p, size: size, rs: rs, emit: emit, shard: make([]byte, p.ShardSize), rows: make([][]byte, p.ParityShards)}
	if size > 0 {
		e.start(0)
	}
	return e, nil
}

func (e *encoder) start(i int64) {
	e.seg = e.p.segment(e.size, i)
	e.pos = 0
	e.hashes = e.hashes[:0]
	n := e.p.parityLen(e.seg)
	if cap(e.parity) < n {
		e.parity = make([]byte, n)
	}
	e.parity = e.parity[:n]
	clear(e.parity)
}

// Write consumes the next bytes of the file.
func (e *encoder) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 && e.err == nil {
		if e.seg.length == 0 || e.pos == e.seg.length {
			e.err = fmt.Errorf("archive longer than its size when protect started (%d bytes)", e.size)
			break
		}
		left := e.seg.length - e.pos
		S := e.p.ShardSize
		if e.fill == 0 && len(b) >= S && left >= int64(S) {
			// whole shards straight from b: as many as stay in this column
			// (consecutive stripes, whose parity rows are consecutive too)
			t := len(e.hashes) % e.seg.stripes
			q := min(len(b)/S, e.seg.stripes-t, int(left/int64(S)))
			e.addShards(b[:q*S])
			b = b[q*S:]
			continue
		}
		k := copy(e.shard[e.fill:min(e.p.ShardSize, e.fill+int(min(left, int64(len(b)))))], b)
		e.fill += k
		b = b[k:]
		if e.fill == e.p.ShardSize || int64(e.fill) == left {
			clear(e.shard[e.fill:])
			e.addShard(e.shard, e.fill)
			e.fill = 0
		}
	}
	return n, e.err
}

// addShard adds the segment's last shard (n real bytes, the rest of sh
// zeros).
func (e *encoder) addShard(sh []byte, n int) {
	e.hashes = append(e.hashes, xxhash.Sum64(sh[:n]))
	e.encode(sh, len(e.hashes)-1, int64(n))
}

// addShards adds whole shards of one column.
func (e *encoder) addShards(b []byte) {
	j := len(e.hashes)
	for o := 0; o < len(b); o += e.p.ShardSize {
		e.hashes = append(e.hashes, xxhash.Sum64(b[o:o+e.p.ShardSize]))
	}
	e.encode(b, j, int64(len(b)))
}

// encode adds the parity of shards from j on (one column, consecutive
// stripes), n bytes of the file.
func (e *encoder) encode(b []byte, j int, n int64) {
	c, t := j/e.seg.stripes, j%e.seg.stripes
	for r := range e.rows {
		o := (r*e.seg.stripes + t) * e.p.ShardSize
		e.rows[r] = e.parity[o : o+len(b)]
	}
	if err := e.rs.EncodeIdx(b, c, e.rows); err != nil {
		e.err = err
		return
	}
	e.pos += n
	if e.pos == e.seg.length {
		if err := e.emit(e.seg, e.hashes, e.parity); err != nil {
			e.err = err
			return
		}
		if e.seg.start+e.seg.length < e.size {
			e.start(e.seg.index + 1)
		}
	}
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

// Package runmap is a file's block map as the extent-based readers (ext4,
// XFS) build it from damaged trees: runs of logical blocks sorted and not
// overlapping, holes as the gaps, mappings lost to damage marked as such,
// and a bound on its size whatever the disk says.
package runmap

import (
	"fmt"
	"math"
	"sort"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Kinds of runs.
const (
	Data      uint8 = iota // mapped to volume blocks
	Unwritten              // allocated but unwritten: reads as zeros
	Unknown                // its mapping is lost (a damaged tree block)
)

// MaxRuns bounds the runs of one map.
const MaxRuns = 1 << 22

// Run maps logical blocks [Off, Off+N) of a file to volume blocks from
// Phys (for Data and Unwritten runs).
type Run struct {
	Off  uint64
	Phys uint64
	N    uint64
	Kind uint8
}

// End is the logical block after the run.
func (r Run) End() uint64 { return r.Off + r.N }

// Map is a file's logical-to-physical map and what was wrong with it
// (at most fs.MaxProblems messages).
type Map struct {
	Runs     []Run
	Problems []string
	full     bool
}

// AddProblem notes a problem of the map.
func (m *Map) AddProblem(format string, args ...any) {
	if len(m.Problems) < fs.MaxProblems {
		m.Problems = append(m.Problems, fmt.Sprintf(format, args...))
	}
}

// Append adds a run after the others, merging it into the previous one
// where contiguous. A run that overlaps the previous ones keeps only its
// part past them (the blocks first mapped win); a run wholly behind them
// is dropped.
func (m *Map) Append(r Run) {
	if r.N == 0 {
		return
	}
	if k := len(m.Runs); k > 0 {
		last := &m.Runs[k-1]
		end := last.End()
		if r.Off < end {
			if r.Kind != Unknown && last.Kind != Unknown {
				m.AddProblem("blocks %d-%d mapped twice", r.Off, min(end, r.End())-1)
			}
			if r.End() <= end {
				return
			}
			skip := end - r.Off
			r.Off, r.N = end, r.N-skip
			if r.Kind != Unknown {
				r.Phys += skip
			}
		}
		if r.Off == end && r.Kind == last.Kind && (r.Kind == Unknown || last.Phys+last.N == r.Phys) {
			last.N += r.N
			return
		}
	}
	m.push(r)
}

// Add adds a run in any order; Sort must follow before the map is used.
func (m *Map) Add(r Run) {
	if r.N != 0 {
		m.push(r)
	}
}

// push appends a run unless the map is full.
func (m *Map) push(r Run) {
	if len(m.Runs) >= MaxRuns {
		if !m.full {
			m.full = true
			m.AddProblem("more than %d extents: the rest ignored", MaxRuns)
		}
		return
	}
	m.Runs = append(m.Runs, r)
}

// Sort puts runs added in any order in logical order and resolves
// overlaps as Append does: where two runs map the same blocks, the one
// that starts first (data before a lost mapping) wins.
func (m *Map) Sort() {
	sort.SliceStable(m.Runs, func(i, j int) bool {
		a, b := m.Runs[i], m.Runs[j]
		if a.Off != b.Off {
			return a.Off < b.Off
		}
		return a.Kind < b.Kind
	})
	runs := m.Runs
	m.Runs = make([]Run, 0, len(runs))
	for _, r := range runs {
		m.Append(r)
	}
}

// Find returns the index of the run containing block b, or -1 and the
// index of the next run after it.
func (m *Map) Find(b uint64) (int, int) {
	i := sort.Search(len(m.Runs), func(i int) bool { return m.Runs[i].End() > b })
	if i < len(m.Runs) && m.Runs[i].Off <= b {
		return i, i
	}
	return -1, i
}

// Read fills p from byte off of the file through the map, with blocks of
// bs bytes: holes and unwritten runs read as zeros, runs whose mapping is
// lost as zeros and an error from lost(block), mapped runs through
// read(p, volume block, offset within it). It reads all of p and returns
// the first error.
func (m *Map) Read(p []byte, off, bs int64, read func(p []byte, blk uint64, within int64) error, lost func(blk uint64) error) error {
	var first error
	for len(p) > 0 {
		b := uint64(off / bs)
		i, next := m.Find(b)
		if i < 0 {
			// A hole up to the next run (or the end).
			k := int64(len(p))
			if next < len(m.Runs) {
				k = min(k, BytePos(m.Runs[next].Off, bs)-off)
			}
			clear(p[:k])
			p, off = p[k:], off+k
			continue
		}
		r := m.Runs[i]
		k := min(int64(len(p)), BytePos(r.End(), bs)-off)
		switch r.Kind {
		case Unwritten:
			clear(p[:k])
		case Unknown:
			clear(p[:k])
			if first == nil {
				first = lost(b)
			}
		default:
			if err := read(p[:k], r.Phys+(b-r.Off), off%bs); err != nil && first == nil {
				first = err
			}
		}
		p, off = p[k:], off+k
	}
	return first
}

// BytePos returns the byte offset of block b, or the largest int64 when
// it lies beyond (a run may reach to 2^64 blocks; reads stop at the file's
// size, far below).
func BytePos(b uint64, bs int64) int64 {
	if b > uint64(math.MaxInt64/bs) {
		return math.MaxInt64
	}
	return int64(b) * bs
}

// Lost returns the byte ranges of the file below block limit whose
// mapping is lost (Physical -1), for a layout's Lost list.
func (m *Map) Lost(limit uint64, bs int64) []fs.Extent {
	var out []fs.Extent
	for _, r := range m.Runs {
		if r.Kind == Unknown && r.Off < limit {
			n := min(r.N, limit-r.Off)
			at := BytePos(r.Off, bs)
			if l := BytePos(r.Off+n, bs) - at; l > 0 { // (0 past the largest byte offset)
				out = append(out, fs.Extent{Logical: at, Physical: -1, Length: l})
			}
		}
	}
	return out
}

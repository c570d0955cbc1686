package xfs

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Kinds of runs in a fork map.
const (
	runData      uint8 = iota // mapped to volume blocks
	runUnwritten              // allocated but unwritten: reads as zeros
	runUnknown                // its mapping is lost (a damaged bmbt block)
)

// Bounds on the work one fork map may cost, whatever the disk says.
const (
	maxRuns      = 1 << 22
	maxTreeNodes = 1 << 19
	maxBmbtLevel = 10
	maxFileOff   = 1 << 54 // file block offsets are 54 bits
)

// run maps file blocks [off, off+n) of a fork.
type run struct {
	off  uint64
	fsb  uint64 // first filesystem block, for runData and runUnwritten
	n    uint64
	kind uint8
}

// forkMap is a fork's block map: runs sorted by offset and not
// overlapping (holes are the gaps), the volume offsets of the bmbt blocks
// it was read from, and what was wrong with it.
type forkMap struct {
	runs     []run
	meta     []int64
	problems []string
	visited  map[uint64]bool
	nodes    int
}

func (m *forkMap) addProblem(format string, args ...any) {
	if len(m.problems) < fs.MaxProblems {
		m.problems = append(m.problems, fmt.Sprintf(format, args...))
	}
}

func (m *forkMap) add(r run) {
	if r.n == 0 {
		return
	}
	if len(m.runs) >= maxRuns {
		if len(m.runs) == maxRuns {
			m.addProblem("more than %d extents: the rest ignored", maxRuns)
			m.runs = append(m.runs, run{}) // marks the overflow once
		}
		return
	}
	m.runs = append(m.runs, r)
}

// finish sorts the runs and resolves overlaps: where two runs map the
// same blocks, the first (by offset, data before lost mappings) wins.
func (m *forkMap) finish() {
	if len(m.runs) > maxRuns {
		m.runs = m.runs[:maxRuns]
	}
	sort.SliceStable(m.runs, func(i, j int) bool {
		a, b := m.runs[i], m.runs[j]
		if a.off != b.off {
			return a.off < b.off
		}
		return a.kind < b.kind
	})
	out := m.runs[:0]
	var end uint64
	for _, r := range m.runs {
		if len(out) > 0 && r.off < end {
			if r.kind != runUnknown && out[len(out)-1].kind != runUnknown {
				m.addProblem("blocks %d-%d mapped twice", r.off, min(end, r.off+r.n)-1)
			}
			if r.off+r.n <= end {
				continue
			}
			skip := end - r.off
			r.off, r.n = end, r.n-skip
			if r.kind != runUnknown {
				r.fsb += skip
			}
		}
		if k := len(out); k > 0 {
			last := &out[k-1]
			if last.off+last.n == r.off && last.kind == r.kind && (r.kind == runUnknown || last.fsb+last.n == r.fsb) {
				last.n += r.n
				end = last.off + last.n
				continue
			}
		}
		out = append(out, r)
		end = r.off + r.n
	}
	m.runs = out
	m.visited = nil
}

// find returns the index of the run containing off, or -1 and the index
// of the next run after it.
func (m *forkMap) find(off uint64) (int, int) {
	i := sort.Search(len(m.runs), func(i int) bool { return m.runs[i].off+m.runs[i].n > off })
	if i < len(m.runs) && m.runs[i].off <= off {
		return i, i
	}
	return -1, i
}

// mapFork reads the data fork (or with attr the attribute fork) of an
// inode in extents or btree format.
func (f *FS) mapFork(in *inode, attr bool) *forkMap {
	m := &forkMap{visited: map[uint64]bool{}}
	fork, format, nrec := f.dataFork(in), in.format, in.nextents
	name := "data fork"
	if attr {
		fork, format, nrec = f.attrFork(in), in.aformat, in.anext
		name = "attribute fork"
	}
	switch format {
	case fmtExtents:
		room := uint64(len(fork) / 16)
		if nrec > room {
			m.addProblem("%s: %d extents, room for %d", name, nrec, room)
			nrec = room
		}
		for i := uint64(0); i < nrec; i++ {
			f.addRec(m, fork[16*i:], 0, maxFileOff)
		}
	case fmtBtree:
		if len(fork) < 4+16 {
			m.addProblem("%s: no room for a bmbt root", name)
			m.add(run{0, 0, maxFileOff, runUnknown})
			break
		}
		level := int(be.Uint16(fork))
		num := int(be.Uint16(fork[2:]))
		maxr := (len(fork) - 4) / 16
		if num > maxr {
			m.addProblem("%s: bmbt root claims %d records, room for %d", name, num, maxr)
			num = maxr
		}
		if level < 1 || level > maxBmbtLevel {
			m.addProblem("%s: bmbt root level %d invalid", name, level)
			m.add(run{0, 0, maxFileOff, runUnknown})
			break
		}
		f.walkNode(in, m, fork[4:], fork[4+8*maxr:], num, level, 0, maxFileOff)
	}
	m.finish()
	return m
}

// addRec decodes one packed extent record and adds it if it lies in
// [lo, hi) and inside the filesystem.
func (f *FS) addRec(m *forkMap, b []byte, lo, hi uint64) {
	l0, l1 := be.Uint64(b), be.Uint64(b[8:])
	kind := runData
	if l0>>63 != 0 {
		kind = runUnwritten
	}
	off := l0 & (1<<63 - 1) >> 9
	fsb := (l0&(1<<9-1))<<43 | l1>>21
	n := l1 & (1<<21 - 1)
	switch {
	case n == 0:
		m.addProblem("extent at block %d has length 0", off)
	case off < lo || off+n > hi:
		m.addProblem("extent %d-%d outside its key range %d-%d", off, off+n-1, lo, hi-1)
	case !f.fsbOK(fsb, n):
		m.addProblem("extent %d-%d points outside the filesystem (block %d)", off, off+n-1, fsb)
		m.add(run{off, 0, n, runUnknown})
	default:
		m.add(run{off, fsb, n, kind})
	}
}

// walkNode adds the extents under an interior bmbt node: num keys and
// pointers, the node's level, covering file blocks [lo, hi).
func (f *FS) walkNode(in *inode, m *forkMap, keys, ptrs []byte, num, level int, lo, hi uint64) {
	for i := 0; i < num; i++ {
		start := be.Uint64(keys[8*i:])
		end := hi
		if i+1 < num {
			end = be.Uint64(keys[8*(i+1):])
		}
		if i == 0 && start > lo {
			start = lo
		}
		if start < lo || end > hi || start >= end {
			m.addProblem("bmbt key %d: range %d-%d invalid", i, start, end)
			continue
		}
		child := be.Uint64(ptrs[8*i:])
		lost := func(format string, args ...any) {
			m.addProblem(format, args...)
			m.add(run{start, 0, end - start, runUnknown})
		}
		switch {
		case !f.fsbOK(child, 1):
			lost("bmbt pointer outside the filesystem (block %d)", child)
			continue
		case m.visited[child]:
			lost("bmbt loop at block %d", child)
			continue
		case m.nodes >= maxTreeNodes:
			lost("bmbt too large")
			continue
		}
		m.visited[child] = true
		m.nodes++
		pos := f.fsbPos(child)
		m.meta = append(m.meta, pos)
		b, err := f.metaBlock(pos, int(f.bs))
		if err != nil {
			lost("bmbt block %d unreadable: %v", child, err)
			continue
		}
		hdr := lblockV4Size
		magic := uint32(bmapMagic)
		if f.v5 {
			hdr, magic = lblockV5Size, bmap3Magic
		}
		if be.Uint32(b) != magic {
			lost("bmbt block %d: bad magic", child)
			continue
		}
		if got := int(be.Uint16(b[4:])); got != level-1 {
			lost("bmbt block %d: level %d, want %d", child, got, level-1)
			continue
		}
		if f.v5 {
			switch {
			case !crcOK(b, 64):
				m.addProblem("bmbt block %d checksum mismatch", child)
			case be.Uint64(b[24:]) != uint64(pos/512) || be.Uint64(b[56:]) != in.num || !bytes.Equal(b[40:56], f.sb.metaUUID[:]):
				m.addProblem("bmbt block %d belongs elsewhere (location, owner or uuid)", child)
			}
		}
		if f.suspect(pos, f.bs) {
			m.addProblem("bmbt block %d lies in a damaged range", child)
		}
		num := int(be.Uint16(b[6:]))
		if level-1 == 0 {
			room := (len(b) - hdr) / 16
			if num > room {
				m.addProblem("bmbt leaf %d claims %d records, room for %d", child, num, room)
				num = room
			}
			for j := 0; j < num; j++ {
				f.addRec(m, b[hdr+16*j:], start, end)
			}
			continue
		}
		maxr := (len(b) - hdr) / 16
		if num > maxr {
			m.addProblem("bmbt node %d claims %d records, room for %d", child, num, maxr)
			num = maxr
		}
		f.walkNode(in, m, b[hdr:], b[hdr+8*maxr:], num, level-1, start, end)
	}
}

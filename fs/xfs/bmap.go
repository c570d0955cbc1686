package xfs

import (
	"bytes"

	"github.com/vzsalvage/vzsalvage/fs/runmap"
)

// Kinds of runs in a fork map.
const (
	runData      = runmap.Data
	runUnwritten = runmap.Unwritten
	runUnknown   = runmap.Unknown
)

// Bounds on the work one fork map may cost, whatever the disk says.
const (
	maxTreeNodes = 1 << 19
	maxBmbtLevel = 10
	maxFileOff   = 1 << 54 // file block offsets are 54 bits
)

// run maps file blocks [Off, Off+N) of a fork to filesystem blocks from Phys.
type run = runmap.Run

// forkMap is a fork's block map, the volume offsets of the bmbt blocks it
// was read from, and what was wrong with it.
type forkMap struct {
	runmap.Map
	meta    []int64
	visited map[uint64]bool
	nodes   int
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
			m.AddProblem("%s: %d extents, room for %d", name, nrec, room)
			nrec = room
		}
		for i := uint64(0); i < nrec; i++ {
			f.addRec(m, fork[16*i:], 0, maxFileOff)
		}
	case fmtBtree:
		if len(fork) < 4+16 {
			m.AddProblem("%s: no room for a bmbt root", name)
			m.Add(run{N: maxFileOff, Kind: runUnknown})
			break
		}
		level := int(be.Uint16(fork))
		num := int(be.Uint16(fork[2:]))
		maxr := (len(fork) - 4) / 16
		if num > maxr {
			m.AddProblem("%s: bmbt root claims %d records, room for %d", name, num, maxr)
			num = maxr
		}
		if level < 1 || level > maxBmbtLevel {
			m.AddProblem("%s: bmbt root level %d invalid", name, level)
			m.Add(run{N: maxFileOff, Kind: runUnknown})
			break
		}
		f.walkNode(in, m, fork[4:], fork[4+8*maxr:], num, level, 0, maxFileOff)
	}
	m.Sort()
	m.visited = nil
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
		m.AddProblem("extent at block %d has length 0", off)
	case off < lo || off+n > hi:
		m.AddProblem("extent %d-%d outside its key range %d-%d", off, off+n-1, lo, hi-1)
	case !f.fsbOK(fsb, n):
		m.AddProblem("extent %d-%d points outside the filesystem (block %d)", off, off+n-1, fsb)
		m.Add(run{Off: off, N: n, Kind: runUnknown})
	default:
		m.Add(run{Off: off, Phys: fsb, N: n, Kind: kind})
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
			m.AddProblem("bmbt key %d: range %d-%d invalid", i, start, end)
			continue
		}
		child := be.Uint64(ptrs[8*i:])
		lost := func(format string, args ...any) {
			m.AddProblem(format, args...)
			m.Add(run{Off: start, N: end - start, Kind: runUnknown})
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
				m.AddProblem("bmbt block %d checksum mismatch", child)
			case be.Uint64(b[24:]) != uint64(pos/512) || be.Uint64(b[56:]) != in.num || !bytes.Equal(b[40:56], f.sb.metaUUID[:]):
				m.AddProblem("bmbt block %d belongs elsewhere (location, owner or uuid)", child)
			}
		}
		if f.suspect(pos, f.bs) {
			m.AddProblem("bmbt block %d lies in a damaged range", child)
		}
		num := int(be.Uint16(b[6:]))
		if level-1 == 0 {
			room := (len(b) - hdr) / 16
			if num > room {
				m.AddProblem("bmbt leaf %d claims %d records, room for %d", child, num, room)
				num = room
			}
			for j := 0; j < num; j++ {
				f.addRec(m, b[hdr+16*j:], start, end)
			}
			continue
		}
		maxr := (len(b) - hdr) / 16
		if num > maxr {
			m.AddProblem("bmbt node %d claims %d records, room for %d", child, num, maxr)
			num = maxr
		}
		f.walkNode(in, m, b[hdr:], b[hdr+8*maxr:], num, level-1, start, end)
	}
}

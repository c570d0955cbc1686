package ntfs

import (
	"slices"

	"github.com/vzsalvage/vzsalvage/fs"
)

// mftScan is what one pass over the whole MFT found: each record's state
// and every name by parent directory.
type mftScan struct {
	recs     []scanRec
	children map[uint64][]scanName // by parent record number
	err      error                 // the MFT could not be read in full
}

type scanRec struct {
	seq     uint16
	state   uint8 // scanFree, scanInUse, scanBad
	dir     bool
	streams uint8 // 1: named streams, 2: one over maxXattrStream
}

const (
	scanFree = iota
	scanInUse
	scanBad // did not parse: unknown
	scanExtension
)

type scanName struct {
	name      string
	num       uint64
	parentSeq uint16
	typ       uint32 // $FILE_NAME file attributes
}

const (
	maxScan   = 16 << 20
	scanChunk = 1 << 20
)

// mft returns the MFT scan, made on first use.
func (f *FS) mftScanned() *mftScan {
	f.scanOnce.Do(func() { f.scan = f.scanMFT() })
	return f.scan
}

func (f *FS) scanMFT() *mftScan {
	sc := &mftScan{children: map[uint64][]scanName{}}
	n := min(f.mftSize/f.bt.recSize, maxScan)
	sc.recs = make([]scanRec, n)
	buf := make([]byte, f.bt.recSize)
	for i := int64(0); i < n; i++ {
		r := &sc.recs[i]
		pos, err := f.recordPos(uint64(i))
		if err != nil {
			r.state = scanBad
			continue
		}
		p := 0
		ok := true
		for _, e := range pos {
			if f.readAt(buf[p:p+int(e.Length)], e.Physical) != nil {
				ok = false
			}
			p += int(e.Length)
		}
		var rec *record
		if ok {
			rec, err = f.parseRecord(buf, uint64(i), pos[0].Physical)
		}
		if !ok || err != nil {
			r.state = scanBad
			if i < 4 { // $MFTMirr holds a copy
				if mrec, err := f.readRecord(uint64(i)); err == nil {
					rec = mrec
				}
			}
			if rec == nil {
				continue
			}
		}
		r.seq = rec.seq
		switch {
		case rec.flags&recInUse == 0:
			r.state = scanFree
			continue
		case rec.base != 0:
			r.state = scanExtension
			continue
		}
		r.state, r.dir = scanInUse, rec.isDir()
		for _, a := range rec.attrs {
			if a.typ == atData && a.name != "" {
				r.streams = max(r.streams, 1)
				if !a.resident && a.realSize > maxXattrStream {
					r.streams = 2
				}
			}
		}
		for _, fn := range rec.names() {
			pnum, pseq := ref(fn.parent)
			if pnum == uint64(i) {
				continue
			}
			sc.children[pnum] = append(sc.children[pnum], scanName{name: fn.name, num: uint64(i), parentSeq: pseq, typ: fn.attrs})
		}
	}
	if f.mftSize/f.bt.recSize > maxScan {
		sc.err = errDamaged("MFT of %d records: only the first %d scanned", f.mftSize/f.bt.recSize, maxScan)
	}
	return sc
}

// rec returns what the scan knows of record n.
func (sc *mftScan) rec(n uint64) scanRec {
	if n < uint64(len(sc.recs)) {
		return sc.recs[n]
	}
	return scanRec{state: scanBad}
}

// lists reports whether the scan has record num (sequence seq) named name
// in directory dir (sequence dseq).
func (sc *mftScan) lists(dir uint64, dseq uint16, num uint64, seq uint16, name string) bool {
	r := sc.rec(num)
	if r.state != scanInUse || r.seq != seq {
		return false
	}
	for _, c := range sc.children[dir] {
		if c.num == num && c.name == name && c.parentSeq == dseq {
			return true
		}
	}
	return false
}

// Orphans returns in-use user records (not system files) none of whose
// names has a parent that is an in-use directory of the right sequence
// number: their directory is lost. Only the topmost are returned.
func (f *FS) Orphans() ([]fs.Node, error) {
	sc := f.mftScanned()
	valid := func(pnum uint64, pseq uint16) bool {
		p := sc.rec(pnum)
		return p.state == scanInUse && p.dir && p.seq == pseq
	}
	parents := map[uint64][]uint64{}
	for pnum, cs := range sc.children {
		for _, c := range cs {
			if valid(pnum, c.parentSeq) {
				parents[c.num] = append(parents[c.num], 0) // reached
			} else {
				parents[c.num] = append(parents[c.num], pnum+1)
			}
		}
	}
	orphan := func(n uint64) bool {
		ps := parents[n]
		if len(ps) == 0 {
			return false // no name at all: not a file anyone made
		}
		for _, p := range ps {
			if p == 0 {
				return false
			}
		}
		return true
	}
	var out []fs.Node
	for n := uint64(24); n < uint64(len(sc.recs)); n++ {
		if sc.recs[n].state != scanInUse || !orphan(n) {
			continue
		}
		top := true
		for _, p := range parents[n] {
			if pn := p - 1; pn != n && pn < uint64(len(sc.recs)) && sc.recs[pn].state == scanInUse && orphan(pn) {
				top = false
			}
		}
		if top && len(out) < 1<<16 {
			out = append(out, fs.Node(n))
		}
	}
	slices.Sort(out)
	return out, sc.err
}

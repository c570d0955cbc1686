package btrfs

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/vzsalvage/vzsalvage/fs"
)

// run is a file byte range.
type run struct{ off, n int64 }

const (
	maxExtents      = 4 << 20
	maxDecoded      = 16 << 20 // btrfs decodes at most 128 KiB per extent
	maxStored       = 16 << 20
	maxInlineDecode = 1 << 20
	maxBadRuns      = 1 << 20
	readWindow      = 256 << 10
)

// extentMap is a file's extents, sorted by file offset, with the file
// ranges whose extent items could not be read.
type extentMap struct {
	exts  []fileExtent
	lost  []run
	items []phys // where the extent items lie
}

// extentLen returns how many file bytes e covers.
func (e *fileExtent) extentLen() int64 {
	if e.typ == extInline {
		return e.ramBytes
	}
	return e.numBytes
}

// loadExtents reads an inode's EXTENT_DATA items.
func (f *FS) loadExtents(in *inode) *extentMap {
	m := &extentMap{}
	var badItems []int64
	err := f.iterate(in.tree.root, key{in.ino, typeExtentData, 0}, key{in.ino, typeExtentData, ^uint64(0)}, func(it item) bool {
		m.items = append(m.items, phys{it.at, int64(len(it.data))})
		e, err := parseFileExtent(it.key.off, it.data)
		if err != nil {
			badItems = append(badItems, int64(it.key.off&(1<<62-1)))
			return len(badItems) < maxExtents
		}
		e.item = phys{it.at, int64(len(it.data))}
		m.exts = append(m.exts, e)
		return len(m.exts) < maxExtents
	})
	sort.SliceStable(m.exts, func(i, j int) bool { return m.exts[i].fileOff < m.exts[j].fileOff })
	var te *treeError
	if errors.As(err, &te) {
		for _, l := range te.lost {
			lo, hi := int64(0), in.size
			if l.lo.obj == in.ino && l.lo.typ == typeExtentData {
				lo = int64(l.lo.off & (1<<62 - 1))
			}
			if l.hi.obj == in.ino && l.hi.typ == typeExtentData && int64(l.hi.off&(1<<62-1)) < hi {
				hi = int64(l.hi.off & (1<<62 - 1))
			}
			if hi > lo {
				m.lost = append(m.lost, run{lo, hi - lo})
			}
		}
	}
	for _, off := range badItems {
		// An extent item that does not parse: unknown up to the next one.
		end := in.size
		i := sort.Search(len(m.exts), func(i int) bool { return m.exts[i].fileOff > off })
		if i < len(m.exts) {
			end = m.exts[i].fileOff
		}
		if end > off {
			m.lost = append(m.lost, run{off, end - off})
		}
	}
	return m
}

// find returns the index of the extent covering file offset off, or -1
// and the index of the next extent.
func (m *extentMap) find(off int64) (int, int) {
	i := sort.Search(len(m.exts), func(i int) bool { return m.exts[i].fileOff > off }) - 1
	if i >= 0 && off < m.exts[i].fileOff+m.exts[i].extentLen() {
		return i, i + 1
	}
	return -1, i + 1
}

// file is a regular file's (or symlink's) content.
type file struct {
	f    *FS
	node fs.Node
	in   *inode
	m    *extentMap

	mu     sync.Mutex
	decIdx int // extent whose decoded content is in dec, or -1
	dec    []byte
	decErr error
	win    window // the last data window read
}

// window is a checked range of logical addresses.
type window struct {
	start, end uint64
	buf        []byte
	bad        []badSectors
}

// readPlain fills p with uncompressed data from logical address a (file
// offset pos), through a cached window of checked sectors.
func (fl *file) readPlain(p []byte, a uint64, pos int64) error {
	f := fl.f
	fl.mu.Lock()
	defer fl.mu.Unlock()
	var first error
	for len(p) > 0 {
		w := &fl.win
		if a < w.start || a >= w.end {
			start := a - a%readWindow
			end := start + readWindow
			if c := f.chunks.find(a); c != nil {
				start = max(start, c.logical)
				end = min(end, c.logical+c.length)
			} else {
				start, end = a-a%uint64(f.ss), a-a%uint64(f.ss)+uint64(f.ss)
			}
			buf, bad := f.readVerified(start, end, fl.in.flags&inodeNoDataSum == 0)
			*w = window{start, end, buf, bad}
		}
		k := int(min(uint64(len(p)), w.end-a))
		copy(p[:k], w.buf[a-w.start:])
		for _, b := range w.bad {
			lo, hi := max(b.off, int64(a)), min(b.off+b.n, int64(a)+int64(k))
			if hi > lo {
				clear(p[lo-int64(a) : hi-int64(a)])
				f.markBad(fl.node, pos+lo-int64(a), hi-lo)
				if first == nil {
					first = fmt.Errorf("btrfs: inode %d at %d: %w", fl.in.ino, pos+lo-int64(a), b.err)
				}
			}
		}
		p, a, pos = p[k:], a+uint64(k), pos+int64(k)
	}
	return first
}

// Open returns a regular file's content. Holes and preallocated extents
// read as zeros; so do sectors whose checksum fails on every copy, extents
// that do not decode and ranges whose extent items are lost, and the read
// then returns an error wrapping fs.ErrDamaged.
func (f *FS) Open(n fs.Node) (fs.File, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	if in.mode&0o170000 != 0o100000 {
		return nil, fs.ErrNotFile
	}
	fl, err := f.openInode(in)
	if err != nil {
		return nil, err
	}
	fl.node = n
	return fl, nil
}

func (f *FS) openInode(in *inode) (*file, error) {
	return &file{f: f, node: makeNode(in.idx, in.ino), in: in, m: f.loadExtents(in), decIdx: -1}, nil
}

// Size returns the file's size.
func (fl *file) Size() int64 { return fl.in.size }

// ReadAt reads len(p) bytes at file offset off.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("btrfs: negative offset")
	}
	size := fl.in.size
	if off >= size {
		return 0, io.EOF
	}
	n := len(p)
	eof := false
	if int64(n) > size-off {
		n, eof = int(size-off), true
	}
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	q, pos := p[:n], off
	for len(q) > 0 {
		i, next := fl.m.find(pos)
		if i < 0 {
			k := int64(len(q))
			if next < len(fl.m.exts) {
				k = min(k, fl.m.exts[next].fileOff-pos)
			}
			clear(q[:k])
			if fl.inLost(pos, k) {
				note(errDamaged("inode %d: extent items of bytes %d+%d lost", fl.in.ino, pos, k))
			}
			q, pos = q[k:], pos+k
			continue
		}
		e := &fl.m.exts[i]
		k := min(int64(len(q)), e.fileOff+e.extentLen()-pos)
		note(fl.readExtent(i, q[:k], pos))
		q, pos = q[k:], pos+k
	}
	switch {
	case first != nil:
		return n, first
	case eof:
		return n, io.EOF
	}
	return n, nil
}

func (fl *file) inLost(off, n int64) bool {
	for _, r := range fl.m.lost {
		if off < r.off+r.n && r.off < off+n {
			return true
		}
	}
	return false
}

// readExtent fills p with the file bytes at pos from extent i.
func (fl *file) readExtent(i int, p []byte, pos int64) error {
	e := &fl.m.exts[i]
	f := fl.f
	switch {
	case e.typ == extPrealloc || e.typ == extRegular && e.diskBytenr == 0:
		clear(p)
		return nil
	case e.typ == extRegular && e.comp == compNone:
		a := e.diskBytenr + uint64(e.offset) + uint64(pos-e.fileOff)
		return fl.readPlain(p, a, pos)
	}
	dec, err := fl.decoded(i)
	if err != nil {
		clear(p)
		f.markBad(fl.node, e.fileOff, e.extentLen())
		return fmt.Errorf("btrfs: inode %d at %d: %w", fl.in.ino, pos, err)
	}
	start := pos - e.fileOff
	if e.typ == extRegular {
		start += e.offset
	}
	c := 0
	if start < int64(len(dec)) {
		c = copy(p, dec[start:])
	}
	clear(p[c:])
	if c < len(p) {
		f.markBad(fl.node, pos+int64(c), int64(len(p)-c))
		return errDamaged("inode %d: extent at %d decodes to %d bytes, short of %d", fl.in.ino, e.fileOff, len(dec), start+int64(len(p)))
	}
	return nil
}

// decoded returns extent i's decoded content (inline or compressed),
// keeping the last one.
func (fl *file) decoded(i int) ([]byte, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.decIdx == i {
		return fl.dec, fl.decErr
	}
	e := &fl.m.exts[i]
	var dec []byte
	var err error
	if e.typ == extInline {
		dec, err = decompress(e.comp, e.inline, e.ramBytes, maxInlineDecode, fl.f.ss)
	} else {
		dec, err = fl.f.readCompressed(e, fl.in.flags&inodeNoDataSum == 0)
	}
	fl.decIdx, fl.dec, fl.decErr = i, dec, err
	return dec, err
}

// readCompressed reads, checks and decodes a compressed extent.
func (f *FS) readCompressed(e *fileExtent, verify bool) ([]byte, error) {
	if e.diskBytes <= 0 || e.diskBytes > maxStored || e.ramBytes > maxDecoded {
		return nil, errDamaged("compressed extent of %d bytes (%d decoded)", e.diskBytes, e.ramBytes)
	}
	stored := make([]byte, e.diskBytes)
	bad, err := f.readData(stored, e.diskBytenr, verify)
	if err != nil || len(bad) > 0 {
		return nil, fmt.Errorf("compressed extent at %d: %w", e.diskBytenr, err)
	}
	return decompress(e.comp, stored, e.ramBytes, maxDecoded, f.ss)
}

// readData reads len(p) bytes at logical address a, checking each whole
// sector against its data checksum when verify and one exists. A sector
// failing on one copy is read from the others; where every copy fails,
// p holds zeros and the bad ranges (offsets in p) are returned with an
// error.
func (f *FS) readData(p []byte, a uint64, verify bool) ([]run, error) {
	var bad []run
	var first error
	ss := uint64(f.ss)
	done := int64(0)
	for len(p) > 0 {
		start := a - a%ss
		end := min(start+readWindow, (a+uint64(len(p))+ss-1)/ss*ss)
		if c := f.chunks.find(start); c != nil && end-c.logical > c.length {
			end = max(c.logical+c.length, start+ss)
		}
		k := int(min(uint64(len(p)), end-a))
		b, failed := f.readVerified(start, end, verify)
		copy(p[:k], b[a-start:])
		for _, r := range failed {
			lo, hi := max(r.off, int64(a)), min(r.off+r.n, int64(a)+int64(k))
			if hi > lo {
				clear(p[lo-int64(a) : hi-int64(a)])
				bad = append(bad, run{done + lo - int64(a), hi - lo})
			}
			if first == nil {
				first = r.err
			}
		}
		p, a, done = p[k:], a+uint64(k), done+int64(k)
	}
	return bad, first
}

// badSectors is a logical range that failed.
type badSectors struct {
	off, n int64
	err    error
}

// readVerified reads logical [start, end) (sector aligned, one chunk) and
// checks it, trying every copy for the sectors that fail.
func (f *FS) readVerified(start, end uint64, verify bool) ([]byte, []badSectors) {
	n := int64(end - start)
	buf := make([]byte, n)
	copies, err := f.chunks.physical(start, n)
	if err != nil {
		clear(buf)
		return buf, []badSectors{{int64(start), n, errDamaged("data at %d: %v", start, err)}}
	}
	copies = f.order(copies, n)
	rerr := f.readAt(buf, copies[0])
	var sums []byte
	var have []bool
	if verify {
		sums, have = f.dataCsums(start, int(n/f.ss))
	}
	var bad []badSectors
	cs := f.cs.size
	var tmp []byte
	for s := int64(0); s < n/f.ss; s++ {
		sec := buf[s*f.ss : (s+1)*f.ss]
		if have == nil || !have[s] {
			if rerr != nil {
				bad = append(bad, badSectors{int64(start) + s*f.ss, f.ss, rerr})
			}
			continue
		}
		want := sums[int(s)*cs : int(s+1)*cs]
		if string(f.cs.sum(tmp[:0], sec)) == string(want) {
			continue
		}
		ok := false
		for _, c := range copies[1:] {
			alt := make([]byte, f.ss)
			if f.readAt(alt, c+s*f.ss) == nil && string(f.cs.sum(tmp[:0], alt)) == string(want) {
				copy(sec, alt)
				ok = true
				break
			}
		}
		if !ok {
			clear(sec)
			bad = append(bad, badSectors{int64(start) + s*f.ss, f.ss, errDamaged("data sector at %d fails its %s checksum", int64(start)+s*f.ss, f.cs.name)})
		}
	}
	return buf, bad
}

// dataCsums returns the checksums of n sectors from logical address a, and
// which were found.
func (f *FS) dataCsums(a uint64, n int) ([]byte, []bool) {
	if f.csumTree.bytenr == 0 || n <= 0 {
		return nil, nil
	}
	cs := f.cs.size
	sums := make([]byte, n*cs)
	have := make([]bool, n)
	end := a + uint64(n)*uint64(f.ss)
	take := func(it item) bool {
		if it.key.obj != csumObjID || it.key.typ != typeExtentCsum {
			return true
		}
		cnt := uint64(len(it.data) / cs)
		for j := uint64(0); j < cnt; j++ {
			s := it.key.off + j*uint64(f.ss)
			if s < a {
				continue
			}
			if s >= end {
				break
			}
			i := int((s - a) / uint64(f.ss))
			copy(sums[i*cs:], it.data[j*uint64(cs):(j+1)*uint64(cs)])
			have[i] = true
		}
		return true
	}
	if it, ok := f.last(f.csumTree, key{csumObjID, typeExtentCsum, a}); ok {
		take(it)
	}
	if end > a+1 {
		f.iterate(f.csumTree, key{csumObjID, typeExtentCsum, a + 1}, key{csumObjID, typeExtentCsum, end - 1}, take)
	}
	return sums, have
}

// markBad records a file range whose content failed its checks.
func (f *FS) markBad(n fs.Node, off, length int64) {
	if length <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.bad[n] {
		if r.off <= off && off+length <= r.off+r.n {
			return
		}
	}
	if f.nbad < maxBadRuns {
		f.bad[n] = append(f.bad[n], run{off, length})
		f.nbad++
	}
}

// badRuns returns the file ranges of n found bad so far.
func (f *FS) badRuns(n fs.Node) []run {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]run(nil), f.bad[n]...)
}

package ntfs

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/vzsalvage/vzsalvage/fs"
)

// stream is one attribute's content (a data stream, an index allocation,
// an attribute list), assembled from its instances in the base and
// extension records.
type stream struct {
	resident   bool
	data       []byte // resident content
	size       int64
	initSize   int64
	compressed bool
	unit       int64 // compression unit in clusters
	encrypted  bool
	runs       []dataRun
	lost       []dataRun // vcn ranges whose mapping is unknown (lcn unused)
}

// streamOf assembles a stream from its attribute instances.
func (f *FS) streamOf(rec *record, inst []attr) *stream {
	s := &stream{}
	if len(inst) == 0 {
		return s
	}
	sort.SliceStable(inst, func(i, j int) bool { return inst[i].startVCN < inst[j].startVCN })
	first := inst[0]
	if first.resident {
		s.resident, s.data, s.size, s.initSize = true, first.value, int64(len(first.value)), int64(len(first.value))
		return s
	}
	s.size, s.initSize = first.realSize, min(first.initSize, first.realSize)
	s.encrypted = first.flags&attrEncrypted != 0
	if first.flags&attrCompressed != 0 && first.compUnit > 0 {
		s.compressed, s.unit = true, int64(1)<<first.compUnit
	}
	need := (max(first.allocSize, first.realSize) + f.cs - 1) / f.cs
	vcn := int64(0)
	for _, a := range inst {
		if a.resident {
			continue
		}
		if a.startVCN > vcn {
			s.lost = append(s.lost, dataRun{vcn: vcn, n: a.startVCN - vcn})
		}
		for _, r := range a.runs {
			if r.vcn >= vcn && len(s.runs) < maxRuns {
				s.runs = append(s.runs, r)
				vcn = r.vcn + r.n
			}
		}
		if a.runsErr != nil {
			rec.problems = appendOnce(rec.problems, fmt.Sprintf("MFT record %d: attribute %#x %q: %v", rec.num, a.typ, a.name, a.runsErr))
			if end := a.lastVCN + 1; end > vcn && end <= need {
				s.lost = append(s.lost, dataRun{vcn: vcn, n: end - vcn})
				vcn = end
			}
		}
	}
	if vcn < need {
		s.lost = append(s.lost, dataRun{vcn: vcn, n: need - vcn})
	}
	return s
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// streamAttrs returns the instances of attribute (typ, name).
func (rec *record) streamAttrs(typ uint32, name string) []attr {
	var out []attr
	for _, a := range rec.attrs {
		if a.typ == typ && a.name == name {
			out = append(out, a)
		}
	}
	return out
}

// stream returns a record's data stream name ("" is the unnamed one).
func (f *FS) stream(rec *record, name string) (*stream, error) {
	inst := rec.streamAttrs(atData, name)
	if len(inst) == 0 {
		return nil, errDamaged("MFT record %d: no data stream %q", rec.num, name)
	}
	return f.streamOf(rec, inst), nil
}

// findRun returns the run holding vcn, or -1.
func (s *stream) findRun(vcn int64) int {
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].vcn > vcn }) - 1
	if i >= 0 && vcn < s.runs[i].vcn+s.runs[i].n {
		return i
	}
	return -1
}

// streamFile reads a stream.
type streamFile struct {
	f   *FS
	rec *record
	s   *stream

	mu      sync.Mutex
	unitIdx int64 // compression unit decoded in unitBuf, or -1
	unitBuf []byte
	unitErr error
	winOff  int64 // stream offset of win, for small plain reads
	win     []byte
	winErr  error
}

const smallRead = 64 << 10

func (f *FS) openStream(rec *record, s *stream) *streamFile {
	return &streamFile{f: f, rec: rec, s: s, unitIdx: -1}
}

// Size returns the stream's size.
func (sf *streamFile) Size() int64 { return sf.s.size }

// ReadAt reads the stream. Bytes past the initialized size and in sparse
// runs read as zeros; unmapped or undecodable ones read as zeros with an
// error wrapping fs.ErrDamaged.
func (sf *streamFile) ReadAt(p []byte, off int64) (int, error) {
	s := sf.s
	if off < 0 {
		return 0, errors.New("ntfs: negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	eof := false
	if int64(n) > s.size-off {
		n, eof = int(s.size-off), true
	}
	var err error
	switch {
	case s.encrypted:
		clear(p[:n])
		err = fmt.Errorf("ntfs: MFT record %d: encrypted (EFS) data is not read", sf.rec.num)
	case s.resident:
		c := 0
		if off < int64(len(s.data)) {
			c = copy(p[:n], s.data[off:])
		}
		clear(p[c:n])
		if c < n {
			err = errDamaged("MFT record %d: resident data shorter than its size", sf.rec.num)
		}
	case s.unitTooLarge(sf.f.cs):
		clear(p[:n])
		err = errDamaged("MFT record %d: compression unit of %d bytes (NTFS compresses in 64 KiB units): not read", sf.rec.num, s.unit*sf.f.cs)
	case s.compressed:
		err = sf.readCompressed(p[:n], off)
	case n < smallRead:
		err = sf.readSmall(p[:n], off)
	default:
		err = sf.readPlain(p[:n], off)
	}
	if err == nil && off+int64(n) > s.initSize {
		// Past the initialized size the content is zeros.
		from := max(0, s.initSize-off)
		clear(p[from:n])
	}
	switch {
	case err != nil:
		return n, err
	case eof:
		return n, io.EOF
	}
	return n, nil
}

// readSmall serves a small read from a cached 64 KiB window.
func (sf *streamFile) readSmall(p []byte, off int64) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.win == nil || off < sf.winOff || off+int64(len(p)) > sf.winOff+int64(len(sf.win)) {
		sf.winOff = off - off%smallRead
		k := min(2*smallRead, sf.s.size-sf.winOff)
		sf.win = make([]byte, k)
		sf.winErr = sf.readPlain(sf.win, sf.winOff)
	}
	copy(p, sf.win[off-sf.winOff:])
	return sf.winErr
}

// readPlain reads uncompressed runs.
func (sf *streamFile) readPlain(p []byte, off int64) error {
	f, s := sf.f, sf.s
	var first error
	for len(p) > 0 {
		vcn := off / f.cs
		k := int64(len(p))
		i := s.findRun(vcn)
		if i < 0 {
			next := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].vcn > vcn })
			if next < len(s.runs) {
				k = fieldsStep(s.runs[next].vcn*f.cs-off, k)
			}
			clear(p[:k])
			if first == nil && off < s.initSize {
				first = errDamaged("MFT record %d: cluster %d of its data is not mapped", sf.rec.num, vcn)
			}
		} else {
			r := s.runs[i]
			k = fieldsStep((r.vcn+r.n)*f.cs-off, k)
			if r.lcn < 0 {
				clear(p[:k])
			} else if err := f.readAt(p[:k], (r.lcn+vcn-r.vcn)*f.cs+off%f.cs); err != nil && first == nil {
				first = err
			}
		}
		p, off = p[k:], off+k
	}
	return first
}

// readPlain's step k (bytes up to the next run boundary) comes from run
// fields times the cluster size: fieldsStep bounds it to (0, n], taking a
// product that overflowed (a hostile run list) as reaching past the read.
func fieldsStep(k, n int64) int64 {
	if k <= 0 || k > n {
		return n
	}
	return k
}

// readCompressed reads a compressed stream, one compression unit at a
// time: a unit all sparse reads as zeros, one fully allocated is stored
// as is, and one partly allocated holds LZNT1 data in its allocated
// clusters.
func (sf *streamFile) readCompressed(p []byte, off int64) error {
	f := sf.f
	ub := sf.s.unit * f.cs
	var first error
	for len(p) > 0 {
		u := off / ub
		k := min(int64(len(p)), (u+1)*ub-off)
		buf, err := sf.unit(u)
		copy(p[:k], buf[off-u*ub:])
		if err != nil && first == nil {
			first = err
		}
		p, off = p[k:], off+k
	}
	return first
}

// unitLayout says how compression unit u is stored: its allocated runs
// (clusters in unit order), whether it is all sparse, and whether part of
// its mapping is unknown.
func (s *stream) unitLayout(u int64) (alloc []dataRun, clusters int64, unknown bool) {
	start, end := u*s.unit, (u+1)*s.unit
	for _, l := range s.lost {
		if l.vcn < end && start < l.vcn+l.n {
			unknown = true
		}
	}
	for v := start; v < end; {
		i := s.findRun(v)
		if i < 0 {
			v++
			continue
		}
		r := s.runs[i]
		k := min(end, r.vcn+r.n) - v
		if r.lcn >= 0 {
			alloc = append(alloc, dataRun{vcn: v, lcn: r.lcn + v - r.vcn, n: k})
			clusters += k
		}
		v += k
	}
	return alloc, clusters, unknown
}

// maxUnitBytes bounds the compression unit read: NTFS compresses in units
// of 16 clusters of at most 4 KiB (64 KiB); the on-disk fields allow 2^8
// clusters of 2 MiB, a 512 MiB allocation per read that a damaged or
// hostile image must not cause.
const maxUnitBytes = 1 << 20

// unitTooLarge reports whether the stream is compressed in units larger
// than maxUnitBytes (clusters of cs bytes): such a stream is not read.
func (s *stream) unitTooLarge(cs int64) bool { return s.compressed && s.unit*cs > maxUnitBytes }

// unit returns compression unit u decoded, keeping the last one.
func (sf *streamFile) unit(u int64) ([]byte, error) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.unitIdx == u {
		return sf.unitBuf, sf.unitErr
	}
	f, s := sf.f, sf.s
	ub := s.unit * f.cs
	out := make([]byte, ub)
	alloc, clusters, unknown := s.unitLayout(u)
	var err error
	switch {
	case unknown:
		err = errDamaged("MFT record %d: the mapping of compression unit %d is lost", sf.rec.num, u)
	case clusters == 0:
	case clusters == s.unit:
		err = f.readRuns(out, alloc)
	default:
		stored := make([]byte, clusters*f.cs)
		if err = f.readRuns(stored, alloc); err == nil {
			var n int
			n, err = lznt1(out, stored)
			if err == nil && n < len(out) && u*ub+int64(n) < s.size {
				// A unit ends early only at the end of the data.
				clear(out[n:])
			}
			if err != nil {
				clear(out)
				err = errDamaged("MFT record %d: compression unit %d: %v", sf.rec.num, u, err)
			}
		}
	}
	sf.unitIdx, sf.unitBuf, sf.unitErr = u, out, err
	return out, err
}

// readRuns reads the clusters of runs, in order, into p.
func (f *FS) readRuns(p []byte, runs []dataRun) error {
	var first error
	for _, r := range runs {
		k := min(int64(len(p)), r.n*f.cs)
		if err := f.readAt(p[:k], r.lcn*f.cs); err != nil && first == nil {
			first = err
		}
		p = p[k:]
	}
	return first
}

// Open returns a regular file's content: its unnamed data stream, or a
// named stream's for a stream node.
func (f *FS) Open(n fs.Node) (fs.File, error) {
	rec, name, err := f.nodeRecord(n)
	if err != nil {
		return nil, err
	}
	if rec.isDir() && name == "" || f.isLink(rec) && name == "" {
		return nil, fs.ErrNotFile
	}
	s, err := f.stream(rec, name)
	if err != nil {
		if name == "" && len(rec.streamAttrs(atData, "")) == 0 {
			return nil, err
		}
		return nil, err
	}
	return f.openStream(rec, s), nil
}

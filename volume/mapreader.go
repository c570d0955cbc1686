package volume

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/vzsalvage/vzsalvage/damage"
)

// device is one disk as the volume layer reads it: past the disk's end it
// reads zeros, and its damage map says those bytes are lost.
type device struct {
	name string
	r    io.ReaderAt
	size int64
	dmg  *damage.Map // the disk's damage, plus [size, ∞) lost
}

// beyondEnd is where the "past the disk's end" range of a device's damage
// map stops: far past any real offset.
const beyondEnd = 1 << 62

func newDevice(d Disk) *device {
	dm := d.Damage.Clone()
	if d.Size >= 0 && d.Size < beyondEnd {
		dm.Add(d.Size, beyondEnd-d.Size, damage.Lost)
	}
	return &device{name: d.Name, r: &tailReader{r: d.R, size: d.Size}, size: d.Size, dmg: dm}
}

// tailReader serves [0, size) from r and zeros from there on (and where r
// ends early), so that a partition or LV reaching past a truncated disk
// still reads; the device's damage map marks those zeros as lost.
type tailReader struct {
	r    io.ReaderAt
	size int64
}

func (t *tailReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("volume: negative offset")
	}
	n := 0
	if off < t.size && t.r != nil {
		k := int(min(int64(len(p)), t.size-off))
		var err error
		n, err = t.r.ReadAt(p[:k], off)
		if err != nil && err != io.EOF && n < k {
			return n, err
		}
	}
	clear(p[n:])
	return len(p), nil
}

// segKind says what a segment of a mapped volume reads as.
type segKind uint8

const (
	segData  segKind = iota // the legs' bytes
	segZero                 // zeros, correctly (lvm "zero" segments)
	segError                // a read error (lvm "error" segments, unsupported types)
)

// seg maps the volume bytes [off, off+n) onto its legs: linearly onto one
// leg, or in chunks of stripe bytes round-robin over several. skip is how
// far into the original segment off lies (non-zero when a segment of a
// sub-LV was cut).
type seg struct {
	off, n int64
	skip   int64
	stripe int64
	legs   []leg
	kind   segKind
	why    string // for segError
}

// leg is where a segment's area starts on a device; dev is nil when the
// device is missing (reads zeros; the bytes are lost).
type leg struct {
	dev *device
	off int64
}

// locate returns the leg, the device offset and how many bytes stay
// contiguous there, for the segment-relative position y (skip included).
func (s *seg) locate(y int64) (l leg, off, run int64) {
	if len(s.legs) == 1 || s.stripe == 0 {
		return s.legs[0], s.legs[0].off + y, s.skip + s.n - y
	}
	n := int64(len(s.legs))
	c := y / s.stripe
	in := y % s.stripe
	l = s.legs[c%n]
	return l, l.off + (c/n)*s.stripe + in, min(s.stripe-in, s.skip+s.n-y)
}

// mapReader reads a volume made of segments (an LVM logical volume).
// Reads past its size return io.EOF, like io.SectionReader; bytes on a
// missing device read as zeros (and are lost in its damage map).
type mapReader struct {
	segs []seg
	size int64
}

// ReadAt implements io.ReaderAt.
func (m *mapReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("volume: negative offset")
	}
	n := 0
	for n < len(p) && off < m.size {
		i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].off+m.segs[i].n > off })
		if i == len(m.segs) || m.segs[i].off > off {
			return n, fmt.Errorf("volume: no segment maps offset %d", off)
		}
		s := &m.segs[i]
		y := off - s.off + s.skip
		want := int64(len(p) - n)
		switch {
		case s.kind == segError:
			return n, fmt.Errorf("volume: offset %d: %s", off, s.why)
		case s.kind == segZero || len(s.legs) == 0:
			k := int(min(want, s.off+s.n-off))
			clear(p[n : n+k])
			n += k
			off += int64(k)
			continue
		}
		l, doff, run := s.locate(y)
		k := int(min(want, run))
		if l.dev == nil {
			clear(p[n : n+k])
		} else if _, err := l.dev.r.ReadAt(p[n:n+k], doff); err != nil {
			return n, err
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// maxDamagePieces bounds how many ranges one segment leg's damage is cut
// into when translated through striping; past it the translation marks the
// whole span (more damage than there is, never less).
const maxDamagePieces = 1 << 16

// damage translates the devices' damage maps into volume offsets.
func (m *mapReader) damage() *damage.Map {
	var rs []damage.Range
	budget := maxDamagePieces
	for i := range m.segs {
		s := &m.segs[i]
		if s.kind != segData {
			continue
		}
		for li, l := range s.legs {
			if l.dev == nil {
				s.mark(&rs, li, 0, beyondEnd, damage.Lost, &budget)
				continue
			}
			lo, hi := s.legSpan(li)
			for _, r := range l.dev.dmg.Overlaps(l.off+lo, hi-lo) {
				s.mark(&rs, li, r.Off-l.off, r.End()-l.off, r.State, &budget)
			}
		}
	}
	// Adding in offset order keeps damage.Map on its append fast path.
	sort.Slice(rs, func(i, j int) bool { return rs[i].Off < rs[j].Off })
	out := &damage.Map{}
	for _, r := range rs {
		out.Add(r.Off, r.Len, r.State)
	}
	return out
}

// legSpan returns the leg-relative byte range that leg li serves for this
// segment.
func (s *seg) legSpan(li int) (lo, hi int64) {
	if len(s.legs) == 1 || s.stripe == 0 {
		return s.skip, s.skip + s.n
	}
	n := int64(len(s.legs))
	first, last := s.skip/s.stripe, (s.skip+s.n-1)/s.stripe
	return (first / n) * s.stripe, (last/n + 1) * s.stripe
}

// mark appends to out, in volume offsets, the volume bytes that leg li's
// leg-relative bytes [a, b) hold.
func (s *seg) mark(out *[]damage.Range, li int, a, b int64, st damage.State, budget *int) {
	clip := func(y0, y1 int64) {
		y0, y1 = max(y0, s.skip), min(y1, s.skip+s.n)
		if y0 < y1 {
			*out = append(*out, damage.Range{Off: s.off + y0 - s.skip, Len: y1 - y0, State: st})
		}
	}
	if len(s.legs) == 1 || s.stripe == 0 {
		clip(max(a, 0), min(b, s.skip+s.n))
		return
	}
	lo, hi := s.legSpan(li)
	a, b = max(a, lo), min(b, hi)
	if a >= b {
		return
	}
	n, S := int64(len(s.legs)), s.stripe
	ra, rb := a/S, (b-1)/S
	if rb-ra+1 > int64(*budget) {
		// Too many pieces: mark everything from the first to the last chunk.
		clip((ra*n+int64(li))*S, (rb*n+int64(li)+1)*S)
		return
	}
	*budget -= int(rb - ra + 1)
	for r := ra; r <= rb; r++ {
		c := r*n + int64(li)
		clip(c*S+max(a-r*S, 0), c*S+min(b-r*S, S))
	}
}

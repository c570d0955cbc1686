package vma

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/vzsalvage/vzsalvage/damage"
)

// Finding headers: the archive header, and extent headers after damage
// (a scan for the magic and uuid, repairing a header whose entries copied
// lost bytes, refusing one copied across a loss).

func (r *Reader) readHeader() error {
	r.fill(HeaderFixedSize)
	fixed := r.at(0, HeaderFixedSize)
	hs, err := HeaderSize(fixed)
	hst, _ := r.worst(0, HeaderFixedSize)
	damaged := hst != damage.OK
	if err != nil {
		if !r.opt.Salvage || !damaged {
			if r.readErr != nil {
				return r.readErr
			}
			if len(fixed) < 64 && string(fixed[:min(4, len(fixed))]) == headerMagic[:min(4, len(fixed))] && len(fixed) > 0 {
				return fmt.Errorf("%w: stream ends after %d bytes", ErrHeaderSize, len(fixed))
			}
			return err
		}
		return r.startHeaderless(fmt.Sprintf("main header unreadable (%v)", err))
	}
	r.fill(int64(hs))
	b := r.at(0, int64(hs))
	h, err := ParseHeader(b)
	switch {
	case err == nil:
	case errors.Is(err, ErrHeaderChecksum) && h != nil && r.opt.Salvage:
		r.problem(0, "%v: header used as it is", err)
	case r.opt.Salvage && len(b) == hs:
		return r.startHeaderless(fmt.Sprintf("main header unusable (%v)", err))
	default:
		if len(b) < hs {
			return fmt.Errorf("%w: stream ends after %d of %d header bytes", ErrHeaderSize, len(b), hs)
		}
		return err
	}
	r.hdr = h
	r.limit = StreamLimit(h)
	for _, d := range h.Devices {
		r.devs[d.ID] = &devState{dev: d}
	}
	r.pos = int64(hs)
	r.keepFrom = r.pos
	return nil
}

// startHeaderless prepares to salvage an archive whose main header is lost:
// the uuid comes from the first self-consistent extent header.
func (r *Reader) startHeaderless(why string) error {
	r.problem(0, "%s", why)
	r.res.Headerless = true
	r.hdr = &Header{}
	// find the first extent header whose MD5 matches, at a 512-byte boundary
	for off := int64(512); ; off += 512 {
		r.keepFrom = off
		r.fill(off + ExtentHeaderSize)
		b := r.at(off, ExtentHeaderSize)
		if len(b) < ExtentHeaderSize {
			return fmt.Errorf("%w: no extent header found either", ErrNotVMA)
		}
		if string(b[:4]) == extentMagic {
			var u [16]byte
			copy(u[:], b[extOffUUID:])
			if IsExtentHeader(b, u) {
				r.hdr.UUID = u
				r.pos = off
				return nil
			}
		}
	}
}

// scan moves pos forward to the next good extent header at any offset
// (after a loss of unknown length, or a length wrongly resized, stream
// offsets need not be multiples of 512 any more),
// dropping what it passes. It returns false at the end of the stream.
func (r *Reader) scan() bool {
	start := r.pos
	for {
		r.keepFrom = r.pos
		r.pass(r.pos)
		r.fill(r.pos + 1<<20 + ExtentHeaderSize)
		win := r.at(r.pos, 1<<20+ExtentHeaderSize)
		if len(win) < ExtentHeaderSize {
			r.pos = r.bufEnd()
			r.done = true
			if r.pos > start {
				r.problem(start, "%d bytes skipped: no further extent header", r.pos-start)
			}
			return false
		}
		if i := r.findIn(win, r.pos); i >= 0 {
			r.pos += int64(i)
			r.aligned = true
			if r.pos > start {
				r.problem(start, "%d bytes skipped to the next extent header", r.pos-start)
			}
			return true
		}
		r.pos += int64(len(win) - ExtentHeaderSize + 1)
	}
}

// findIn returns the offset of the first good (or repairable) extent
// header in win (at stream offset base) with room for the whole header, or
// -1.
func (r *Reader) findIn(win []byte, base int64) int {
	last := len(win) - ExtentHeaderSize
	for i := 0; i <= last; {
		j := bytes.Index(win[i:last+4], []byte(extentMagic))
		if j < 0 {
			return -1
		}
		if _, ok := r.acceptHeader(win[i+j:], base+int64(i+j)); ok {
			return i + j
		}
		i += j + 1
	}
	return -1
}

// findBoundary looks in win (at stream offset base) for where the next
// extent starts: the first good extent header, or the first place that
// holds an extent's magic and the archive's uuid as clean bytes (a header
// whose other bytes are damaged still marks the boundary). It returns -1
// if there is none, and whether the header is good.
func (r *Reader) findBoundary(win []byte, base int64) (int, bool) {
	last := len(win) - ExtentHeaderSize
	for i := 0; i <= last; {
		j := bytes.Index(win[i:last+4], []byte(extentMagic))
		if j < 0 {
			return -1, false
		}
		i += j
		b := win[i:]
		if _, ok := r.acceptHeader(b, base+int64(i)); ok {
			return i, true
		}
		if b[4] == 0 && b[5] == 0 && bytes.Equal(b[extOffUUID:extOffUUID+16], r.hdr.UUID[:]) {
			// The bytes up to the MD5 must be clean: Cond bytes may have
			// been copied from the wrong distance, from another header, and
			// so may tainted ones while a loss before them is not sized
			// (a copy of tainted bytes from before the loss: seen, the next
			// extent's header copied whole ahead of its place). Placeholders
			// and copies of them (zeros) never form the archive's uuid.
			st, cond := r.worst(base+int64(i), base+int64(i)+extOffMD5)
			if !cond && (st == damage.OK || r.condTrusted(base+int64(i))) {
				return i, false
			}
		}
		i++
	}
	return -1, false
}

// acceptHeader returns the extent header at the start of b (at stream
// offset p) if it is one the scans may resynchronise on: valid, or rebuilt
// by repairHeader, and not a copy of an earlier one (copiedAcrossLoss).
func (r *Reader) acceptHeader(b []byte, p int64) (*ExtentHeader, bool) {
	eh, err := ParseExtentHeader(b, r.hdr.UUID)
	if err != nil {
		var ok bool
		if eh, ok = r.repairHeader(b, p); !ok {
			return nil, false
		}
	}
	return eh, !r.copiedAcrossLoss(p, eh)
}

// copiedAcrossLoss reports whether the extent header eh at stream offset p
// may be a copy of an earlier one: it holds Cond bytes that cannot be
// trusted yet (copied from before a loss of unknown length at an assumed
// distance; with a wrong estimate such a copy can reproduce an earlier,
// real header at the wrong place: seen, a header of an extent of zero
// clusters copied whole, and the header of the very extent a loss broke
// copied into that extent's tail), and it lists a cluster already read or
// one of the extent whose tail is being placed.
func (r *Reader) copiedAcrossLoss(p int64, eh *ExtentHeader) bool {
	if _, cond := r.worst(p, p+ExtentHeaderSize); !cond || r.condTrusted(p) {
		return false
	}
	for _, e := range eh.Entries {
		if d := r.devs[e.Dev()]; d != nil && d.m.get(e.Cluster()) != cUnseen {
			return true
		}
		if r.cur != nil && slices.ContainsFunc(r.cur.Entries, func(c BlockInfo) bool {
			return c.Dev() == e.Dev() && c.Cluster() == e.Cluster()
		}) {
			return true
		}
	}
	return false
}

// repairHeader rebuilds a damaged extent header at the start of b when its
// MD5 allows (see RepairExtentHeader).
func (r *Reader) repairHeader(b []byte, at int64) (*ExtentHeader, bool) {
	if len(b) < ExtentHeaderSize || string(b[:4]) != extentMagic ||
		!bytes.Equal(b[extOffUUID:extOffUUID+16], r.hdr.UUID[:]) {
		return nil, false
	}
	devs := make([]uint8, 0, len(r.hdr.Devices))
	for _, d := range r.hdr.Devices {
		devs = append(devs, d.ID)
	}
	var suspect []bool
	if r.cr != nil {
		suspect = make([]bool, ExtentHeaderSize)
		for j := range suspect {
			st, cond := r.worst(at+int64(j), at+int64(j)+1)
			suspect[j] = st != damage.OK || cond
		}
	}
	return RepairExtentHeader(b, r.hdr.UUID, devs, suspect)
}

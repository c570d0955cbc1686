package volume

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// LVM2 on-disk layout (lvm2's lib/format_text/layout.h and lib/label/label.h):
// a label sector in one of the first four sectors, a pv_header right after
// the label header, and metadata areas that each start with an mda_header
// followed by a circular buffer of text metadata.
const (
	lvmSector        = 512
	lvmLabelScan     = 4
	lvmLabelID       = "LABELONE"
	lvmLabelType     = "LVM2 001"
	lvmMDAMagic      = " LVM2 x[5A%r0N*>"
	lvmMDAHeaderSize = 512
	lvmDefaultMDA    = 4096 // where pvcreate puts the first metadata area
	lvmInitialCRC    = 0xf597a6cf
	lvmRawLocnIgnore = 1
	lvmIDLen         = 32
	// lvmMaxMDASize bounds how much of a metadata area is read (lvm's
	// default is 1 MiB; --metadatasize rarely exceeds a few MiB).
	lvmMaxMDASize = 64 << 20
	// lvmMaxText bounds one copy of the text metadata.
	lvmMaxText  = 16 << 20
	lvmMaxLocns = 16
	// lvmMaxRingCopies bounds the old copies looked at in one area.
	lvmMaxRingCopies = 1024
)

var errNoLabel = errors.New("volume: no LVM2 label")

// lvmCRC is lvm2's checksum: the reflected CRC-32 (IEEE polynomial) started
// from 0xf597a6cf, without the final inversion.
func lvmCRC(b []byte) uint32 { return lvmCRCUpdate(lvmInitialCRC, b) }

func lvmCRCUpdate(crc uint32, b []byte) uint32 {
	return ^crc32.Update(^crc, crc32.IEEETable, b)
}

// diskLocn is an area of a PV: byte offset from the PV start and length
// (0 = to the end of the device, for data areas).
type diskLocn struct{ off, size int64 }

// pvLabel is an LVM2 physical volume label with its pv_header.
type pvLabel struct {
	sector  int64  // the label's sector (0-3)
	rawUUID string // 32 characters, as stored
	uuid    string // with dashes, as lvm prints it
	devSize int64
	data    []diskLocn
	mdas    []diskLocn
	crcOK   bool
}

// findLabel looks for the LVM2 label in the first four sectors.
func findLabel(r io.ReaderAt, size int64) (pvLabel, error) {
	for s := int64(0); s < lvmLabelScan; s++ {
		b := readBlock(r, size, s*lvmSector, lvmSector)
		if b == nil {
			break
		}
		if lb, ok := parseLabel(b, s); ok {
			return lb, nil
		}
	}
	return pvLabel{}, errNoLabel
}

// parseLabel decodes a label sector found at sector s. ok is false when it
// is not an LVM2 label; a bad CRC is reported in crcOK, not refused.
func parseLabel(b []byte, s int64) (lb pvLabel, ok bool) {
	if len(b) < lvmSector || string(b[:8]) != lvmLabelID || string(b[24:32]) != lvmLabelType {
		return lb, false
	}
	le := binary.LittleEndian
	if int64(le.Uint64(b[8:])) != s {
		return lb, false
	}
	lb.sector = s
	lb.crcOK = le.Uint32(b[16:]) == lvmCRC(b[20:lvmSector])
	off := int(le.Uint32(b[20:]))
	if off < 32 || off+lvmIDLen+8 > lvmSector {
		return lb, false
	}
	h := b[off:lvmSector]
	lb.rawUUID = string(h[:lvmIDLen])
	lb.uuid = dashUUID(lb.rawUUID)
	lb.devSize = int64(le.Uint64(h[lvmIDLen:]))
	p := lvmIDLen + 8
	for list := 0; list < 2; list++ {
		for n := 0; ; n++ {
			if p+16 > len(h) {
				return lb, true
			}
			o, sz := le.Uint64(h[p:]), le.Uint64(h[p+8:])
			p += 16
			if o == 0 {
				break
			}
			if n >= lvmMaxLocns || o > 1<<62 || sz > 1<<62 {
				continue
			}
			loc := diskLocn{int64(o), int64(sz)}
			if list == 0 {
				lb.data = append(lb.data, loc)
			} else {
				lb.mdas = append(lb.mdas, loc)
			}
		}
	}
	return lb, true
}

// dashUUID spells a 32-character LVM id as lvm prints it: 6-4-4-4-4-4-6.
func dashUUID(s string) string {
	if len(s) != lvmIDLen {
		return s
	}
	var b strings.Builder
	for i, n := range []int{6, 4, 4, 4, 4, 4, 6} {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[:n])
		s = s[n:]
	}
	return b.String()
}

// undashUUID removes the dashes of an LVM id.
func undashUUID(s string) string { return strings.ReplaceAll(s, "-", "") }

// rawLocn is one entry of an mda_header: where the committed metadata text
// lies in the area's circular buffer.
type rawLocn struct {
	off, size int64
	checksum  uint32
	flags     uint32
}

// mdaHeader is the header of one metadata area.
type mdaHeader struct {
	start, size int64 // byte offset in the PV and length of the whole area
	locns       []rawLocn
	crcOK       bool
}

// parseMDAHeader decodes the 512-byte header of a metadata area that the
// pv_header places at start.
func parseMDAHeader(b []byte, start int64) (mdaHeader, error) {
	if len(b) < lvmMDAHeaderSize || string(b[4:20]) != lvmMDAMagic {
		return mdaHeader{}, errors.New("no metadata area header")
	}
	le := binary.LittleEndian
	h := mdaHeader{
		start: int64(le.Uint64(b[24:]) & (1<<62 - 1)),
		size:  int64(le.Uint64(b[32:]) & (1<<62 - 1)),
		crcOK: le.Uint32(b) == lvmCRC(b[4:lvmMDAHeaderSize]),
	}
	if v := le.Uint32(b[20:]); v != 1 {
		return h, fmt.Errorf("metadata area version %d", v)
	}
	if h.start != start {
		return h, fmt.Errorf("metadata area header says start %d, label says %d", h.start, start)
	}
	if h.size <= lvmMDAHeaderSize {
		return h, fmt.Errorf("metadata area of %d bytes", h.size)
	}
	for p := 40; p+24 <= lvmMDAHeaderSize && len(h.locns) < lvmMaxLocns; p += 24 {
		l := rawLocn{
			off:      int64(le.Uint64(b[p:]) & (1<<62 - 1)),
			size:     int64(le.Uint64(b[p+8:]) & (1<<62 - 1)),
			checksum: le.Uint32(b[p+16:]),
			flags:    le.Uint32(b[p+20:]),
		}
		if l.off == 0 {
			break
		}
		h.locns = append(h.locns, l)
	}
	return h, nil
}

// mdaArea is a metadata area read into memory (bounded by lvmMaxMDASize).
type mdaArea struct {
	hdr mdaHeader
	buf []byte // the whole area, header included
}

// readMDA reads the metadata area at loc of the PV whose bytes r holds.
func readMDA(r io.ReaderAt, pvSize int64, loc diskLocn) (*mdaArea, error) {
	hb := readBlock(r, pvSize, loc.off, lvmMDAHeaderSize)
	if hb == nil {
		return nil, errors.New("metadata area header unreadable")
	}
	h, err := parseMDAHeader(hb, loc.off)
	if err != nil {
		return nil, err
	}
	n := min(h.size, lvmMaxMDASize)
	if loc.size > lvmMDAHeaderSize {
		n = min(n, loc.size)
	}
	n = min(n, pvSize-loc.off)
	buf := make([]byte, n)
	k, _ := r.ReadAt(buf, loc.off)
	if int64(k) < n {
		buf = buf[:k]
	}
	h.size = int64(len(buf))
	return &mdaArea{hdr: h, buf: buf}, nil
}

// text returns n bytes of the circular buffer starting at off, wrapping
// past the area's end to just after its header, as lvm2 writes it.
func (a *mdaArea) text(off, n int64) ([]byte, bool) {
	size := int64(len(a.buf))
	ring := size - lvmMDAHeaderSize
	if off < lvmMDAHeaderSize || off >= size || n <= 0 || n > ring || n > lvmMaxText {
		return nil, false
	}
	if off+n <= size {
		return a.buf[off : off+n], true
	}
	out := make([]byte, 0, n)
	out = append(out, a.buf[off:]...)
	return append(out, a.buf[lvmMDAHeaderSize:lvmMDAHeaderSize+n-(size-off)]...), true
}

// committed returns the text of the committed metadata copy (raw_locn 0)
// and whether its checksum holds.
func (a *mdaArea) committed() (text []byte, loc rawLocn, crcOK, ok bool) {
	if len(a.hdr.locns) == 0 || a.hdr.locns[0].flags&lvmRawLocnIgnore != 0 {
		return nil, rawLocn{}, false, false
	}
	loc = a.hdr.locns[0]
	text, ok = a.text(loc.off, loc.size)
	if !ok {
		return nil, loc, false, false
	}
	return text, loc, lvmCRC(text) == loc.checksum, true
}

// ringCopies returns the copies of text metadata still present in the
// circular buffer: lvm2 starts each new copy on a 512-byte boundary, with
// the VG name and " {" first, and ends it with a NUL byte. Bounded: one pass
// over the area finds the NULs, and at most lvmMaxRingCopies copies are
// returned.
func (a *mdaArea) ringCopies() []ringCopy {
	size := int64(len(a.buf))
	if size <= lvmMDAHeaderSize {
		return nil
	}
	nblocks := (size - lvmMDAHeaderSize + lvmSector - 1) / lvmSector
	// nextNUL[k] is the first NUL at or after block k's start (-1: none).
	nextNUL := make([]int64, nblocks)
	next := int64(-1)
	for k := nblocks - 1; k >= 0; k-- {
		off := lvmMDAHeaderSize + k*lvmSector
		if i := bytes.IndexByte(a.buf[off:min(off+lvmSector, size)], 0); i >= 0 {
			next = off + int64(i)
		}
		nextNUL[k] = next
	}
	firstNUL := nextNUL[0]
	var out []ringCopy
	for k := int64(0); k < nblocks && len(out) < lvmMaxRingCopies; k++ {
		off := lvmMDAHeaderSize + k*lvmSector
		if !looksLikeVGStart(a.buf[off:min(off+256, size)]) {
			continue
		}
		n := int64(-1)
		switch {
		case nextNUL[k] >= 0:
			n = nextNUL[k] - off
		case firstNUL >= 0 && firstNUL < off:
			n = size - off + firstNUL - lvmMDAHeaderSize
		}
		if n <= 0 {
			continue
		}
		if t, ok := a.text(off, n); ok {
			out = append(out, ringCopy{off: off, text: t})
		}
	}
	return out
}

type ringCopy struct {
	off  int64
	text []byte
}

// looksLikeVGStart reports whether b starts like a VG's text metadata:
// a name, " {", and an id line.
func looksLikeVGStart(b []byte) bool {
	i := 0
	for i < len(b) && i < 128 && isNameByte(b[i]) {
		i++
	}
	if i == 0 || !bytes.HasPrefix(b[i:], []byte(" {\n")) {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(b[i+3:], " \t"), []byte("id = \""))
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '+'
}

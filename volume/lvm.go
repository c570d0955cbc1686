package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

const (
	// lvmMaxDepth bounds LVs stacked on LVs (mirror and raid images).
	lvmMaxDepth = 8
	// lvmRingBudget bounds the bytes of old metadata copies parsed in all.
	lvmRingBudget = 256 << 20
)

// pvSource is a volume found to hold an LVM2 physical volume.
type pvSource struct {
	vol   int // index of its volume in Discover's list
	dev   *device
	base  int64 // the PV's first byte on dev
	size  int64
	label pvLabel
	// unlabelled PVs were found by their metadata area alone: which PV of
	// the VG they are is settled by elimination or by size.
	unlabelled bool
	vgIDs      []string // VGs whose metadata its areas hold
}

// vgCopy is one parsed copy of a VG's metadata and where it came from.
type vgCopy struct {
	vg        *vgMeta
	pv        *pvSource
	fromRing  bool
	committed int64 // seqno of the committed copy of the area it came from (-1: unknown)
}

// lvmResult is what assembling the VGs gives Discover: the LV volumes to
// list after the volume at index anchor, and notes for PV volumes.
type lvmResult struct {
	lvs      map[int][]Volume
	pvNotes  map[int][]string
	anchored []int // anchors in the order VGs were assembled
}

// assembleLVM reads the metadata of every PV, picks for each VG the newest
// copy that checks out, and maps its logical volumes.
func assembleLVM(pvs []*pvSource) lvmResult {
	res := lvmResult{lvs: map[int][]Volume{}, pvNotes: map[int][]string{}}
	var copies []vgCopy
	budget := int64(lvmRingBudget)
	for _, pv := range pvs {
		cs := readPVMetadata(pv, &budget, res.pvNotes)
		for _, c := range cs {
			pv.vgIDs = append(pv.vgIDs, c.vg.id)
		}
		copies = append(copies, cs...)
	}
	var order []string
	byVG := map[string][]vgCopy{}
	for _, c := range copies {
		if _, ok := byVG[c.vg.id]; !ok {
			order = append(order, c.vg.id)
		}
		byVG[c.vg.id] = append(byVG[c.vg.id], c)
	}
	for _, id := range order {
		vg, notes := chooseCopy(byVG[id])
		anchor, vols := mapVG(vg, pvs, notes)
		if anchor >= 0 {
			res.lvs[anchor] = append(res.lvs[anchor], vols...)
			res.anchored = append(res.anchored, anchor)
		}
	}
	return res
}

// readPVMetadata returns the metadata copies of a PV's areas: the committed
// copy when its checksum holds, else the copies left in the ring.
func readPVMetadata(pv *pvSource, budget *int64, notes map[int][]string) []vgCopy {
	note := func(format string, a ...any) {
		notes[pv.vol] = append(notes[pv.vol], fmt.Sprintf(format, a...))
	}
	if !pv.label.crcOK {
		note("LVM label CRC mismatch: label used anyway")
	}
	r := io.NewSectionReader(pv.dev.r, pv.base, pv.size)
	var out []vgCopy
	for i, loc := range pv.label.mdas {
		area, err := readMDA(r, pv.size, loc)
		if err != nil {
			note("LVM metadata area %d: %v", i+1, err)
			continue
		}
		if !area.hdr.crcOK {
			note("LVM metadata area %d: header checksum mismatch, header used anyway", i+1)
		}
		text, rl, crcOK, ok := area.committed()
		if ok && crcOK {
			if vg, err := parseVG(text); err == nil {
				out = append(out, vgCopy{vg: vg, pv: pv, committed: vg.seqno})
				continue
			} else {
				note("LVM metadata area %d: committed copy unreadable: %v", i+1, err)
			}
		} else if ok {
			note("LVM metadata area %d: committed copy fails its checksum", i+1)
		} else if len(area.hdr.locns) > 0 && area.hdr.locns[0].flags&lvmRawLocnIgnore != 0 {
			continue
		} else {
			note("LVM metadata area %d: no committed copy", i+1)
		}
		// The committed copy is bad: look for older ones in the ring, but
		// never take the bad one itself.
		committed := seqnoHint(text)
		for _, rc := range area.ringCopies() {
			if ok && rc.off == rl.off {
				continue
			}
			if *budget -= int64(len(rc.text)); *budget < 0 {
				break
			}
			if vg, err := parseVG(rc.text); err == nil {
				out = append(out, vgCopy{vg: vg, pv: pv, fromRing: true, committed: committed})
			}
		}
	}
	return out
}

// seqnoHint finds "seqno = N" in damaged metadata text (-1 if absent).
func seqnoHint(text []byte) int64 {
	i := bytes.Index(text, []byte("\nseqno = "))
	if i < 0 {
		return -1
	}
	j := i + len("\nseqno = ")
	k := j
	for k < len(text) && k-j < 19 && text[k] >= '0' && text[k] <= '9' {
		k++
	}
	n, err := strconv.ParseInt(string(text[j:k]), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// chooseCopy picks the copy of a VG's metadata to use: the highest seqno
// among good committed copies and old copies from the rings of areas whose
// committed copy was bad (never newer than that bad copy, when its seqno
// is readable: a newer one was never committed).
func chooseCopy(cs []vgCopy) (*vgMeta, []string) {
	var best *vgCopy
	ringUsed := false
	for i := range cs {
		c := &cs[i]
		if c.fromRing {
			ringUsed = true
			if c.committed >= 0 && c.vg.seqno > c.committed {
				continue
			}
		}
		if best == nil || c.vg.seqno > best.vg.seqno || c.vg.seqno == best.vg.seqno && best.fromRing && !c.fromRing {
			best = c
		}
	}
	if best == nil {
		best = &cs[0]
	}
	var notes []string
	switch {
	case best.fromRing:
		bad := "unreadable"
		if best.committed >= 0 {
			bad = "seqno " + strconv.FormatInt(best.committed, 10)
		}
		notes = append(notes, fmt.Sprintf("LVM metadata of VG %s: newest copy (%s) damaged, older copy seqno %d from the metadata ring used",
			best.vg.name, bad, best.vg.seqno))
	case ringUsed:
		notes = append(notes, fmt.Sprintf("LVM metadata of VG %s: a copy is damaged, seqno %d from another metadata area used",
			best.vg.name, best.vg.seqno))
	}
	return best.vg, notes
}

// mapVG builds the volumes of a VG's visible LVs. anchor is the index of
// the volume after which they are listed (the first of the VG's PVs found),
// -1 if none of its PVs is present.
func mapVG(vg *vgMeta, pvs []*pvSource, notes []string) (int, []Volume) {
	m := &vgMapper{vg: vg, pvs: map[string]*pvSource{}}
	anchor := -1
	unlabelled := matchUnlabelled(vg, pvs)
	for _, p := range vg.pvs {
		var found *pvSource
		if s := unlabelled[p.key]; s != nil {
			found = s
			notes = append(notes, fmt.Sprintf("PV %s (%s) identified by its metadata area: its label is damaged", dashUUID(p.id), p.device))
		}
		for _, s := range pvs {
			if s.unlabelled || s.label.rawUUID != p.id {
				continue
			}
			if found != nil {
				notes = append(notes, fmt.Sprintf("PV %s found twice: the first copy is used", dashUUID(p.id)))
				break
			}
			found = s
		}
		if found == nil {
			notes = append(notes, fmt.Sprintf("PV %s (%s) of VG %s is missing: its extents read as zeros", dashUUID(p.id), p.device, vg.name))
			continue
		}
		m.pvs[p.key] = found
		if anchor < 0 || found.vol < anchor {
			anchor = found.vol
		}
	}
	if anchor < 0 {
		return -1, nil
	}
	var vols []Volume
	for _, lv := range vg.lvs {
		if !lv.visible {
			continue
		}
		v := Volume{Kind: "lv", Scheme: "lvm", Name: lv.name, PartType: lv.segType(),
			Size: lv.extents * vg.extentSize, Notes: slices.Clone(notes)}
		segs, lvNotes, err := m.mapLV(lv, 0)
		v.Notes = append(v.Notes, lvNotes...)
		if err != nil {
			v.R = errReader{err}
			v.Notes = append(v.Notes, err.Error())
			v.Device, v.Offset = m.locatePool(lv)
		} else {
			mr := &mapReader{segs: segs, size: v.Size}
			v.R, v.Damage = mr, mr.damage()
			v.Device, v.Offset = m.firstDevice()
			if len(segs) > 0 && len(segs[0].legs) > 0 && segs[0].legs[0].dev != nil {
				v.Device, v.Offset = segs[0].legs[0].dev.name, segs[0].legs[0].off+segs[0].skip
			}
			v.Damage = nilIfEmpty(v.Damage)
			identify(&v)
		}
		v.ID = v.Device + "-" + vg.name + "-" + lv.name
		vols = append(vols, v)
	}
	return anchor, vols
}

// matchUnlabelled decides which of a VG's PVs without a found label the
// unlabelled PV sources are: the only one left, or the one whose size the
// metadata records (dev_size) when that is unique.
func matchUnlabelled(vg *vgMeta, pvs []*pvSource) map[string]*pvSource {
	var missing []*pvMeta
	for _, p := range vg.pvs {
		found := false
		for _, s := range pvs {
			found = found || !s.unlabelled && s.label.rawUUID == p.id
		}
		if !found {
			missing = append(missing, p)
		}
	}
	var cands []*pvSource
	for _, s := range pvs {
		if s.unlabelled && slices.Contains(s.vgIDs, vg.id) {
			cands = append(cands, s)
		}
	}
	out := map[string]*pvSource{}
	if len(missing) == 1 && len(cands) == 1 {
		out[missing[0].key] = cands[0]
		return out
	}
	for _, c := range cands {
		var match *pvMeta
		n := 0
		for _, p := range missing {
			if p.devSize == c.size {
				match, n = p, n+1
			}
		}
		if n == 1 && out[match.key] == nil {
			out[match.key] = c
		}
	}
	return out
}

// vgMapper turns LV segments into device segments.
type vgMapper struct {
	vg     *vgMeta
	pvs    map[string]*pvSource // by PV key; absent = missing
	active map[*lvMeta]bool     // LVs being mapped (cycle detection)
	calls  int                  // mapLV calls so far (bounded)
}

// lvmMaxMapCalls bounds the work of mapping one VG's LVs onto each other.
const lvmMaxMapCalls = 1 << 14

// firstDevice returns the device and offset of the VG's first present PV's
// data area (for volumes whose own extents cannot be located).
func (m *vgMapper) firstDevice() (string, int64) {
	for _, p := range m.vg.pvs {
		if s := m.pvs[p.key]; s != nil {
			return s.dev.name, s.base + p.peStart
		}
	}
	return "", 0
}

// locatePool returns where the data of a thin volume's or thin pool's pool
// starts, or the VG's first data area when that cannot be found.
func (m *vgMapper) locatePool(lv *lvMeta) (string, int64) {
	for range 2 {
		if len(lv.segs) == 0 {
			break
		}
		s := lv.segs[0]
		var next *lvMeta
		switch s.typ {
		case "thin", "thin-pool":
			next = m.vg.lv(s.pool)
		}
		if next == nil {
			break
		}
		if segs, _, err := m.mapLV(next, 0); err == nil && len(segs) > 0 && len(segs[0].legs) > 0 && segs[0].legs[0].dev != nil {
			return segs[0].legs[0].dev.name, segs[0].legs[0].off + segs[0].skip
		}
		lv = next
	}
	return m.firstDevice()
}

// errNotRead is returned by volumes vzsalvage lists but cannot read.
var errNotRead = errors.New("volume: not readable")

// mapLV returns the device segments of an LV, in LV byte offsets.
func (m *vgMapper) mapLV(lv *lvMeta, depth int) ([]seg, []string, error) {
	if depth > lvmMaxDepth {
		return nil, nil, fmt.Errorf("%w: LV %s: LVs nested too deep", errNotRead, lv.name)
	}
	if m.active[lv] {
		return nil, nil, fmt.Errorf("%w: LV %s is built on itself", errNotRead, lv.name)
	}
	if m.calls++; m.calls > lvmMaxMapCalls {
		return nil, nil, fmt.Errorf("%w: LV %s: too many stacked LVs", errNotRead, lv.name)
	}
	if m.active == nil {
		m.active = map[*lvMeta]bool{}
	}
	m.active[lv] = true
	defer delete(m.active, lv)
	ext := m.vg.extentSize
	var out []seg
	var notes []string
	for _, s := range lv.segs {
		off, n := s.start*ext, s.count*ext
		switch s.typ {
		case "striped":
			if len(s.areas) == 1 {
				if sub := m.subLV(s.areas[0]); sub != nil {
					segs, nn, err := m.mapLV(sub, depth+1)
					if err != nil {
						return nil, nil, err
					}
					notes = append(notes, nn...)
					out = append(out, cutSegs(segs, s.areas[0].start*ext, n, off)...)
					continue
				}
			}
			sg := seg{off: off, n: n, stripe: s.stripeSize}
			for _, a := range s.areas {
				p := m.vg.pv(a.pv)
				if p == nil {
					return nil, nil, fmt.Errorf("%w: LV %s: striped over %q, which is not a PV", errNotRead, lv.name, a.pv)
				}
				l := leg{}
				if src := m.pvs[p.key]; src != nil {
					l = leg{dev: src.dev, off: src.base + p.peStart + a.start*ext}
				}
				sg.legs = append(sg.legs, l)
			}
			out = append(out, sg)
		case "mirror", "raid1":
			segs, a, err := m.firstGoodLeg(s, depth)
			if err != nil {
				return nil, nil, fmt.Errorf("LV %s: %w", lv.name, err)
			}
			notes = append(notes, fmt.Sprintf("%s: read from image %s", s.typ, areaName(a)))
			out = append(out, cutSegs(segs, a.start*ext, n, off)...)
		case "zero":
			out = append(out, seg{off: off, n: n, kind: segZero})
		case "error":
			out = append(out, seg{off: off, n: n, kind: segError, why: "LVM error segment"})
		case "thin":
			return nil, nil, fmt.Errorf("%w: thin volume (pool %s): not read", errNotRead, s.pool)
		case "thin-pool":
			return nil, nil, fmt.Errorf("%w: thin pool: not read", errNotRead)
		default:
			return nil, nil, fmt.Errorf("%w: LV %s: segment type %q not supported", errNotRead, lv.name, s.typ)
		}
	}
	return out, notes, nil
}

// subLV returns the LV an area refers to, or nil when it names a PV.
func (m *vgMapper) subLV(a areaRef) *lvMeta {
	if a.lv != "" {
		return m.vg.lv(a.lv)
	}
	if m.vg.pv(a.pv) != nil {
		return nil
	}
	return m.vg.lv(a.pv)
}

// firstGoodLeg maps the first image of a mirror or raid1 segment that lies
// wholly on present devices, in the image's own offsets, and says which
// area it is.
func (m *vgMapper) firstGoodLeg(s segMeta, depth int) ([]seg, areaRef, error) {
	var firstErr error
	for _, a := range s.areas {
		sub := m.subLV(a)
		if sub == nil {
			continue
		}
		segs, _, err := m.mapLV(sub, depth+1)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ok := true
		for _, sg := range segs {
			for _, l := range sg.legs {
				ok = ok && l.dev != nil
			}
		}
		if ok {
			return segs, a, nil
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w: no complete %s image", errNotRead, s.typ)
	}
	return nil, areaRef{}, firstErr
}

// cutSegs returns the part [from, from+n) of segs, moved to start at to.
func cutSegs(segs []seg, from, n, to int64) []seg {
	var out []seg
	end := from + n
	for _, s := range segs {
		lo, hi := max(s.off, from), min(s.off+s.n, end)
		if lo >= hi {
			continue
		}
		c := s
		c.skip = s.skip + (lo - s.off)
		c.off = lo - from + to
		c.n = hi - lo
		out = append(out, c)
	}
	return out
}

// errReader is the reader of a volume that cannot be read.
type errReader struct{ err error }

func (e errReader) ReadAt([]byte, int64) (int, error) { return 0, e.err }

// areaName is the LV name an area refers to.
func areaName(a areaRef) string {
	if a.lv != "" {
		return a.lv
	}
	return a.pv
}

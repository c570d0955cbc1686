package volume

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Bounds on what one VG's metadata may describe.
const (
	lvmMaxLVs      = 4096
	lvmMaxSegments = 1 << 16
	lvmMaxStripes  = 128
	// lvmMaxBytes bounds any size computed from metadata (64 PiB).
	lvmMaxBytes = 1 << 56
)

// vgMeta is one parsed copy of a volume group's metadata.
type vgMeta struct {
	name, id   string
	seqno      int64
	extentSize int64 // bytes
	pvs        []*pvMeta
	lvs        []*lvMeta
}

// pvMeta is a physical volume as the VG metadata describes it.
type pvMeta struct {
	key     string // "pv0"
	id      string // without dashes
	device  string // the device name when the metadata was written
	peStart int64  // bytes from the PV's start
	peCount int64
	devSize int64 // bytes, as recorded (0: unknown)
}

// lvMeta is a logical volume as the VG metadata describes it.
type lvMeta struct {
	name, id string
	visible  bool
	segs     []segMeta
	extents  int64 // sum of the segments' extent counts
}

// segMeta is one segment of an LV.
type segMeta struct {
	start, count int64 // in extents of the LV
	typ          string
	stripeSize   int64 // bytes; 0 for a single area
	areas        []areaRef
	pool         string // thin: the pool LV
}

// areaRef is where a segment's area lies: extents of a PV or of another LV.
type areaRef struct {
	pv    string // key of a PV ("pv0"), or ""
	lv    string // name of an LV, or ""
	start int64  // first extent in that PV or LV
}

var errBadVG = errors.New("lvm: bad VG metadata")

// parseVG turns the text of one metadata copy into a vgMeta.
func parseVG(text []byte) (*vgMeta, error) {
	root, err := parseCfg(text)
	if err != nil {
		return nil, err
	}
	var sec *cfgNode
	for _, c := range root.children {
		if c.isSec {
			sec = c
			break
		}
	}
	if sec == nil {
		return nil, fmt.Errorf("%w: no VG section", errBadVG)
	}
	vg := &vgMeta{name: sec.name, id: undashUUID(sec.str("id"))}
	var ok bool
	if vg.seqno, ok = sec.num("seqno"); !ok {
		return nil, fmt.Errorf("%w: no seqno", errBadVG)
	}
	es, ok := sec.num("extent_size")
	if !ok || es <= 0 || es > 1<<32 {
		return nil, fmt.Errorf("%w: extent_size %d", errBadVG, es)
	}
	vg.extentSize = es * lvmSector
	if vg.id == "" {
		return nil, fmt.Errorf("%w: no id", errBadVG)
	}
	for _, p := range sec.section("physical_volumes").sections() {
		pv := &pvMeta{key: p.name, id: undashUUID(p.str("id")), device: p.str("device")}
		ps, _ := p.num("pe_start")
		pc, _ := p.num("pe_count")
		if ps < 0 || ps > lvmMaxBytes/lvmSector || pc < 0 || pc > lvmMaxBytes/vg.extentSize {
			return nil, fmt.Errorf("%w: PV %s: pe_start %d, pe_count %d", errBadVG, p.name, ps, pc)
		}
		pv.peStart, pv.peCount = ps*lvmSector, pc
		if ds, ok := p.num("dev_size"); ok && ds > 0 && ds < lvmMaxBytes/lvmSector {
			pv.devSize = ds * lvmSector
		}
		vg.pvs = append(vg.pvs, pv)
	}
	nseg := 0
	for _, l := range sec.section("logical_volumes").sections() {
		if len(vg.lvs) >= lvmMaxLVs {
			return nil, fmt.Errorf("%w: more than %d LVs", errBadVG, lvmMaxLVs)
		}
		lv := &lvMeta{name: l.name, id: undashUUID(l.str("id")),
			visible: slices.Contains(l.strings("status"), "VISIBLE")}
		for _, s := range l.sections() {
			if nseg++; nseg > lvmMaxSegments {
				return nil, fmt.Errorf("%w: more than %d segments", errBadVG, lvmMaxSegments)
			}
			seg, err := parseSegment(s, vg.extentSize)
			if err != nil {
				return nil, fmt.Errorf("%w: LV %s %s: %v", errBadVG, l.name, s.name, err)
			}
			lv.segs = append(lv.segs, seg)
		}
		slices.SortFunc(lv.segs, func(a, b segMeta) int { return cmpInt(a.start, b.start) })
		var next int64
		for _, s := range lv.segs {
			if s.start != next {
				return nil, fmt.Errorf("%w: LV %s: segment at extent %d, expected %d", errBadVG, l.name, s.start, next)
			}
			next += s.count
		}
		if next > lvmMaxBytes/vg.extentSize {
			return nil, fmt.Errorf("%w: LV %s too large", errBadVG, l.name)
		}
		lv.extents = next
		vg.lvs = append(vg.lvs, lv)
	}
	return vg, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sections returns the child sections of n.
func (n *cfgNode) sections() []*cfgNode {
	if n == nil {
		return nil
	}
	var out []*cfgNode
	for _, c := range n.children {
		if c.isSec {
			out = append(out, c)
		}
	}
	return out
}

// parseSegment reads one "segmentN { ... }" section.
func parseSegment(s *cfgNode, extentSize int64) (segMeta, error) {
	var seg segMeta
	var ok bool
	if seg.start, ok = s.num("start_extent"); !ok || seg.start < 0 {
		return seg, errors.New("no start_extent")
	}
	if seg.count, ok = s.num("extent_count"); !ok || seg.count <= 0 || seg.count > lvmMaxBytes/extentSize {
		return seg, fmt.Errorf("extent_count %d", seg.count)
	}
	if seg.start > lvmMaxBytes/extentSize {
		return seg, fmt.Errorf("start_extent %d", seg.start)
	}
	seg.typ = s.str("type")
	switch seg.typ {
	case "striped":
		n, _ := s.num("stripe_count")
		if n < 1 || n > lvmMaxStripes {
			return seg, fmt.Errorf("stripe_count %d", n)
		}
		areas, err := areaPairs(s.list("stripes"), extentSize)
		if err != nil {
			return seg, err
		}
		if int64(len(areas)) != n {
			return seg, fmt.Errorf("%d stripes listed, stripe_count %d", len(areas), n)
		}
		if n > 1 {
			ss, _ := s.num("stripe_size")
			if ss <= 0 || ss > 1<<32 || seg.count%n != 0 {
				return seg, fmt.Errorf("stripe_size %d with %d extents over %d stripes", ss, seg.count, n)
			}
			seg.stripeSize = ss * lvmSector
		}
		seg.areas = areas
	case "mirror":
		areas, err := areaPairs(s.list("mirrors"), extentSize)
		if err != nil {
			return seg, err
		}
		seg.areas = areas
	case "raid1":
		// raids = [ "lv_rmeta_0", "lv_rimage_0", ... ]: the images are
		// full copies starting at their extent 0.
		for i, name := range s.strings("raids") {
			if i%2 == 1 && len(seg.areas) < lvmMaxStripes {
				seg.areas = append(seg.areas, areaRef{lv: name, start: seg.start})
			}
		}
	case "thin":
		seg.pool = s.str("thin_pool")
	case "thin-pool":
		seg.pool = s.str("pool")
	}
	return seg, nil
}

// areaPairs decodes [ "pv0", 0, "pv1", 0 ]: names with their first
// extent. A name of a PV key ("pvN") refers to a PV, any other to an LV;
// which one is settled when the VG is assembled.
func areaPairs(l []cfgValue, extentSize int64) ([]areaRef, error) {
	if len(l)%2 != 0 || len(l) > 2*lvmMaxStripes {
		return nil, fmt.Errorf("%d area elements", len(l))
	}
	var out []areaRef
	for i := 0; i < len(l); i += 2 {
		if l[i].isNum || l[i].isArr || !l[i+1].isNum || l[i+1].num < 0 || l[i+1].num > lvmMaxBytes/extentSize {
			return nil, fmt.Errorf("bad area %d", i/2)
		}
		out = append(out, areaRef{pv: l[i].str, start: l[i+1].num})
	}
	return out, nil
}

// pv returns the PV with key k.
func (vg *vgMeta) pv(k string) *pvMeta {
	for _, p := range vg.pvs {
		if p.key == k {
			return p
		}
	}
	return nil
}

// lv returns the LV named name.
func (vg *vgMeta) lv(name string) *lvMeta {
	for _, l := range vg.lvs {
		if l.name == name {
			return l
		}
	}
	return nil
}

// segType names an LV by its first segment: "linear" for a striped
// segment of one stripe, as lvs does.
func (l *lvMeta) segType() string {
	if len(l.segs) == 0 {
		return ""
	}
	s := l.segs[0]
	if s.typ == "striped" && len(s.areas) == 1 {
		return "linear"
	}
	if s.typ == "striped" {
		return "striped (" + strconv.Itoa(len(s.areas)) + " stripes)"
	}
	return s.typ
}

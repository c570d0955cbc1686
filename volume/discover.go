package volume

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/vzsalvage/vzsalvage/damage"
)

// Discover finds every volume on a guest's disks and says what each holds.
//
// For each disk, in order: a filesystem whose superblock lies in sector 0
// (FAT, exFAT, NTFS) makes the disk one whole-disk volume; otherwise a
// partition table is read — GPT when the MBR is protective (or missing while
// a GPT header is there; a hybrid MBR's other entries are ignored, as Linux
// does), the MBR's primary, extended and logical partitions otherwise. A
// disk without a partition table is listed as one volume ("<disk>"), with
// FS "" if nothing is recognised. A disk with a partition table is not
// listed itself, unless something at offset 0 also looks like a filesystem:
// then both are listed and a note on the disk says so (the filesystem
// reader tells which is real).
//
// Every partition and disk volume holding an LVM2 PV has FS "LVM2_member";
// the logical volumes of its VG follow the first such volume of the VG. The
// VG's metadata is the newest copy whose checksum holds on any of its PVs
// (over several disks if need be); when the newest is damaged, an older
// copy from the metadata ring is used and the LVs say so. Thin pools and
// thin volumes, and segment types other than linear, striped, mirror,
// raid1, zero and error, are listed with a reader that returns an error.
//
// Volume.R of a partition is an io.SectionReader: reads past the
// partition's end return io.EOF. Bytes of a partition or LV that lie past
// the end of their disk read as zeros, and Volume.Damage marks them lost;
// so are the extents of a PV that is missing. Problems that stop nothing
// go in Notes. Discover never writes to a disk and never panics on input.
func Discover(disks []Disk) []Volume {
	var vols []Volume
	var pvs []*pvSource
	for _, d := range disks {
		dev := newDevice(d)
		vs := discoverDisk(dev)
		for _, v := range vs {
			switch {
			case v.FS == "LVM2_member":
				if lb, err := findLabel(v.R, v.Size); err == nil {
					pvs = append(pvs, &pvSource{vol: len(vols), dev: dev, base: v.Offset, size: v.Size, label: lb})
				}
			case v.FS == "" && v.Kind != "lv" && !strings.Contains(v.PartType, "xtended"):
				// A PV whose label sector is damaged still has its
				// metadata area header at 4 KiB (lvm2's default).
				if hb := readBlock(v.R, v.Size, lvmDefaultMDA, lvmMDAHeaderSize); hb != nil {
					if _, err := parseMDAHeader(hb, lvmDefaultMDA); err == nil {
						v.FS = "LVM2_member"
						v.Notes = append(v.Notes, "LVM label not found: PV recognised by its metadata area at 4 KiB")
						pvs = append(pvs, &pvSource{vol: len(vols), dev: dev, base: v.Offset, size: v.Size,
							label: pvLabel{mdas: []diskLocn{{lvmDefaultMDA, 0}}, crcOK: true}, unlabelled: true})
					}
				}
			}
			vols = append(vols, v)
		}
	}
	if len(pvs) == 0 {
		return uniqueIDs(vols)
	}
	res := assembleLVM(pvs)
	var out []Volume
	for i, v := range vols {
		v.Notes = append(v.Notes, res.pvNotes[i]...)
		out = append(out, v)
		out = append(out, res.lvs[i]...)
	}
	return uniqueIDs(out)
}

// discoverDisk lists the volumes of one disk: its partitions, or the disk
// itself.
func discoverDisk(dev *device) []Volume {
	whole := func(notes ...string) Volume {
		v := Volume{ID: dev.name, Device: dev.name, Size: dev.size, Kind: "disk",
			R: io.NewSectionReader(dev.r, 0, dev.size), Damage: nilIfEmpty(dev.dmg.Slice(0, dev.size))}
		identify(&v)
		v.Notes = append(v.Notes, notes...)
		return v
	}
	d0 := detect(io.NewSectionReader(dev.r, 0, dev.size), dev.size)
	if isBootSectorFS(d0.fs) {
		return []Volume{whole()}
	}
	t := readPartitions(dev)
	if t == nil || len(t.parts) == 0 {
		var notes []string
		if t != nil {
			notes = append(notes, t.notes...)
		}
		return []Volume{whole(notes...)}
	}
	if dev.dmg.Any(0, 34*512, damage.Tainted) || dev.dmg.Any(dev.size-33*512, 33*512, damage.Tainted) && t.scheme == "gpt" {
		t.notes = append(t.notes, "the partition table's sectors lie in damaged ranges of the disk")
	}
	var vols []Volume
	if d0.fs != "" {
		vols = append(vols, whole(fmt.Sprintf("%s signature at offset 0 alongside a %s partition table", d0.fs, t.scheme)))
	}
	for i, p := range t.parts {
		v := Volume{ID: dev.name + "-p" + strconv.Itoa(p.index), Device: dev.name, Offset: p.off, Size: p.size,
			Kind: "partition", Scheme: t.scheme, Index: p.index, PartType: p.typ, Name: p.name,
			R: io.NewSectionReader(dev.r, p.off, p.size), Damage: nilIfEmpty(dev.dmg.Slice(p.off, p.size))}
		if i == 0 {
			v.Notes = append(v.Notes, t.notes...)
		}
		if !p.container {
			identify(&v)
		}
		vols = append(vols, v)
	}
	return vols
}

// identify fills FS, UUID and Label of a volume from its content.
func identify(v *Volume) {
	d := detect(v.R, v.Size)
	v.FS, v.UUID, v.Label = d.fs, d.uuid, d.label
	if d.note != "" {
		v.Notes = append(v.Notes, d.note)
	}
}

// readPartitions reads a disk's partition table, or returns nil.
func readPartitions(dev *device) *partTable {
	s0 := readSector0(dev.r)
	es, mbrOK := parseMBR(s0)
	protective := mbrOK && hasProtective(es)
	if protective || !mbrOK || allEmpty(es) {
		for _, ss := range []int64{512, 4096} {
			if t := readGPT(dev, ss); t != nil {
				switch {
				case !mbrOK:
					t.notes = append(t.notes, "no protective MBR: GPT found anyway")
				case !protective:
					t.notes = append(t.notes, "MBR has no partitions: GPT found anyway")
				case nonProtective(es) > 0:
					t.notes = append(t.notes, "hybrid MBR: its other entries are ignored, GPT used")
				}
				return t
			}
		}
		if protective {
			return &partTable{scheme: "gpt", notes: []string{"protective MBR, but neither the primary nor the backup GPT is usable"}}
		}
		if !mbrOK {
			return nil
		}
	}
	t := readMBR(dev, es)
	for _, ss := range []int64{512, 4096} {
		if g := readGPTAt(dev, ss, 1); g.ok() {
			t.notes = append(t.notes, "a GPT is present but the MBR is not protective: MBR used, as Linux does")
			break
		}
	}
	return t
}

func allEmpty(es [4]mbrEntry) bool {
	for _, e := range es {
		if !e.empty() {
			return false
		}
	}
	return true
}

func nonProtective(es [4]mbrEntry) int {
	n := 0
	for _, e := range es {
		if !e.empty() && e.typ != mbrProtective {
			n++
		}
	}
	return n
}

// nilIfEmpty returns nil for an empty damage map.
func nilIfEmpty(m *damage.Map) *damage.Map {
	if m.Empty() {
		return nil
	}
	return m
}

// uniqueIDs makes volume ids unique by suffixing repeats with "~2", "~3".
func uniqueIDs(vols []Volume) []Volume {
	seen := map[string]int{}
	for i := range vols {
		id := vols[i].ID
		if seen[id]++; seen[id] > 1 {
			vols[i].ID = id + "~" + strconv.Itoa(seen[id])
			vols[i].Notes = append(vols[i].Notes, "id "+id+" already used by another volume")
		}
	}
	return vols
}

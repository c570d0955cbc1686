package volume

import (
	"encoding/binary"
	"fmt"
	"io"
)

// MBR layout: four 16-byte entries at 446 and the 0x55AA signature at 510.
const (
	mbrSector     = 512
	mbrEntriesOff = 446
	// mbrMaxLogical bounds the chain of extended boot records.
	mbrMaxLogical = 256
	mbrProtective = 0xEE
)

// partition is one entry of a partition table, in bytes of its disk.
type partition struct {
	index     int
	off, size int64
	typ       string // "0x83 (Linux)", "0FC63DAF-... (Linux filesystem)"
	name      string // GPT partition name
	container bool   // an MBR extended partition
}

// partTable is what a disk's partitioning says.
type partTable struct {
	scheme string // "mbr" or "gpt"
	parts  []partition
	notes  []string
}

// mbrEntry is one decoded MBR partition entry.
type mbrEntry struct {
	boot       byte
	typ        byte
	lba, count uint32
}

func (e mbrEntry) empty() bool { return e.typ == 0 || e.count == 0 }

func isExtended(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

// parseMBR decodes sector 0. ok is false without the signature or when a
// boot indicator is neither 0x00 nor 0x80 (not a partition table).
func parseMBR(b []byte) (es [4]mbrEntry, ok bool) {
	if len(b) < mbrSector || b[510] != 0x55 || b[511] != 0xAA {
		return es, false
	}
	for i := range es {
		p := b[mbrEntriesOff+16*i:]
		es[i] = mbrEntry{boot: p[0], typ: p[4],
			lba: binary.LittleEndian.Uint32(p[8:]), count: binary.LittleEndian.Uint32(p[12:])}
		if p[0] != 0 && p[0] != 0x80 {
			return es, false
		}
	}
	return es, true
}

// hasProtective reports whether an entry is a GPT protective one (0xEE).
func hasProtective(es [4]mbrEntry) bool {
	for _, e := range es {
		if e.typ == mbrProtective && e.count != 0 {
			return true
		}
	}
	return false
}

// readMBR lists the primary partitions (1-4 by slot) and the logical ones
// (5 on, in chain order) of the MBR entries es.
func readMBR(d *device, es [4]mbrEntry) *partTable {
	t := &partTable{scheme: "mbr"}
	sectors := d.size / mbrSector
	for i, e := range es {
		if e.empty() {
			continue
		}
		p := partition{index: i + 1, off: int64(e.lba) * mbrSector, size: int64(e.count) * mbrSector,
			typ: mbrTypeName(e.typ), container: isExtended(e.typ)}
		if int64(e.lba)+int64(e.count) > sectors {
			t.notes = append(t.notes, fmt.Sprintf("partition %d ends %d bytes past the end of the disk",
				p.index, p.off+p.size-d.size))
		}
		t.parts = append(t.parts, p)
	}
	next := 5
	for _, e := range es {
		if !e.empty() && isExtended(e.typ) {
			t.parts = append(t.parts, readLogicals(d, int64(e.lba), int64(e.count), &next, &t.notes)...)
		}
	}
	return t
}

// readLogicals walks the chain of extended boot records of the extended
// partition at sector start (count sectors long). Links are relative to the
// extended partition, logical partitions to their EBR. The walk stops at a
// cycle, a link outside the extended partition, or mbrMaxLogical records.
func readLogicals(d *device, start, count int64, next *int, notes *[]string) []partition {
	var out []partition
	seen := map[int64]bool{}
	ebr := start
	for range mbrMaxLogical {
		if seen[ebr] {
			*notes = append(*notes, fmt.Sprintf("extended partition: EBR chain loops back to sector %d", ebr))
			return out
		}
		seen[ebr] = true
		b := readBlock(d.r, -1, ebr*mbrSector, mbrSector)
		if b == nil || b[510] != 0x55 || b[511] != 0xAA {
			*notes = append(*notes, fmt.Sprintf("extended partition: EBR at sector %d damaged, logical partitions from there on lost", ebr))
			return out
		}
		var link *mbrEntry
		for i := range 4 {
			p := b[mbrEntriesOff+16*i:]
			e := mbrEntry{boot: p[0], typ: p[4], lba: binary.LittleEndian.Uint32(p[8:]), count: binary.LittleEndian.Uint32(p[12:])}
			if e.empty() {
				continue
			}
			if isExtended(e.typ) {
				if link == nil {
					link = &e
				}
				continue
			}
			ls, lc := ebr+int64(e.lba), int64(e.count)
			// The 3rd and 4th entries of an EBR often hold garbage: take
			// them only when they fit in the extended partition.
			if i >= 2 && (ls < start || ls+lc > start+count) {
				continue
			}
			if ls+lc > d.size/mbrSector {
				*notes = append(*notes, fmt.Sprintf("partition %d ends %d bytes past the end of the disk",
					*next, (ls+lc)*mbrSector-d.size))
			}
			out = append(out, partition{index: *next, off: ls * mbrSector, size: lc * mbrSector, typ: mbrTypeName(e.typ)})
			*next++
		}
		if link == nil {
			return out
		}
		n := start + int64(link.lba)
		if n <= start || n >= start+count {
			*notes = append(*notes, fmt.Sprintf("extended partition: EBR link to sector %d outside the extended partition", n))
			return out
		}
		ebr = n
	}
	*notes = append(*notes, fmt.Sprintf("extended partition: more than %d logical partitions, rest ignored", mbrMaxLogical))
	return out
}

// readSector0 reads the first 512 bytes of a device.
func readSector0(r io.ReaderAt) []byte {
	return readBlock(r, -1, 0, mbrSector)
}

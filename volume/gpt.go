package volume

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

// GPT (UEFI specification, chapter 5): a header in LBA 1 with its CRC-32,
// an array of partition entries with another CRC-32, and a backup header in
// the disk's last LBA whose entries lie just before it.
const (
	gptSignature  = "EFI PART"
	gptMinHeader  = 92
	gptMaxEntries = 16384
	// gptMaxArray bounds the bytes of one partition entry array.
	gptMaxArray = 4 << 20
)

// gptHeader is a decoded GPT header.
type gptHeader struct {
	myLBA, altLBA           int64
	firstUsable, lastUsable int64
	entriesLBA              int64
	numEntries, entrySize   int64
	entriesCRC              uint32
}

// parseGPTHeader decodes and checks a header read from LBA lba.
func parseGPTHeader(b []byte, lba int64) (gptHeader, error) {
	var h gptHeader
	if len(b) < gptMinHeader || string(b[:8]) != gptSignature {
		return h, fmt.Errorf("no GPT signature")
	}
	le := binary.LittleEndian
	hs := int(le.Uint32(b[12:]))
	if hs < gptMinHeader || hs > len(b) {
		return h, fmt.Errorf("header size %d", hs)
	}
	c := make([]byte, hs)
	copy(c, b[:hs])
	clear(c[16:20])
	if crc32.ChecksumIEEE(c) != le.Uint32(b[16:]) {
		return h, fmt.Errorf("header CRC mismatch")
	}
	h = gptHeader{
		myLBA: int64(le.Uint64(b[24:]) & (1<<62 - 1)), altLBA: int64(le.Uint64(b[32:]) & (1<<62 - 1)),
		firstUsable: int64(le.Uint64(b[40:]) & (1<<62 - 1)), lastUsable: int64(le.Uint64(b[48:]) & (1<<62 - 1)),
		entriesLBA: int64(le.Uint64(b[72:]) & (1<<62 - 1)),
		numEntries: int64(le.Uint32(b[80:])), entrySize: int64(le.Uint32(b[84:])),
		entriesCRC: le.Uint32(b[88:]),
	}
	if h.myLBA != lba {
		return h, fmt.Errorf("header says it is at LBA %d", h.myLBA)
	}
	if h.entrySize < 128 || h.entrySize%8 != 0 || h.numEntries > gptMaxEntries || h.numEntries*h.entrySize > gptMaxArray {
		return h, fmt.Errorf("%d entries of %d bytes", h.numEntries, h.entrySize)
	}
	return h, nil
}

// gptRead is one header with its entry array, as far as they check out.
type gptRead struct {
	lba     int64
	hdr     gptHeader
	hdrErr  error
	entries []byte
	entErr  error
}

func (g gptRead) ok() bool { return g.hdrErr == nil && g.entErr == nil }

// readGPTAt reads and checks the header at lba and its entries.
func readGPTAt(d *device, ss, lba int64) gptRead {
	g := gptRead{lba: lba}
	b := readBlock(d.r, -1, lba*ss, int(ss))
	if lba <= 0 || lba*ss >= d.size || b == nil {
		g.hdrErr = fmt.Errorf("LBA %d is outside the disk", lba)
		return g
	}
	if g.hdr, g.hdrErr = parseGPTHeader(b, lba); g.hdrErr != nil {
		return g
	}
	g.entries, g.entErr = readGPTEntries(d, ss, g.hdr)
	return g
}

// readGPTEntries reads a header's entry array and checks its CRC. On a
// mismatch the bytes are still returned with the error.
func readGPTEntries(d *device, ss int64, h gptHeader) ([]byte, error) {
	n := h.numEntries * h.entrySize
	if h.entriesLBA <= 0 || h.entriesLBA*ss+n > d.size {
		return nil, fmt.Errorf("entries at LBA %d lie outside the disk", h.entriesLBA)
	}
	b := readBlock(d.r, -1, h.entriesLBA*ss, int(n))
	if b == nil {
		return nil, fmt.Errorf("entries unreadable")
	}
	if crc32.ChecksumIEEE(b) != h.entriesCRC {
		return b, fmt.Errorf("entries CRC mismatch")
	}
	return b, nil
}

// readGPT reads the GPT of a disk with sectors of ss bytes, falling back to
// the backup header and entries when the primary ones are damaged. It
// returns nil when neither copy is usable.
func readGPT(d *device, ss int64) *partTable {
	last := d.size/ss - 1
	if last < 2 {
		return nil
	}
	prim := readGPTAt(d, ss, 1)
	var backs []gptRead
	tried := map[int64]bool{}
	for _, lba := range []int64{prim.hdr.altLBA, last} {
		if prim.hdrErr != nil && lba == prim.hdr.altLBA {
			continue
		}
		if lba > 1 && !tried[lba] {
			tried[lba] = true
			backs = append(backs, readGPTAt(d, ss, lba))
		}
	}
	var back gptRead
	for _, b := range backs {
		if b.ok() {
			back = b
			break
		}
	}
	if back.lba == 0 && len(backs) > 0 {
		back = backs[0]
	}

	t := &partTable{scheme: "gpt"}
	var use gptRead
	switch {
	case prim.ok():
		use = prim
		if back.lba == 0 || !back.ok() {
			t.notes = append(t.notes, "backup GPT damaged or missing: "+gptProblem(back))
		}
	case back.ok():
		use = back
		t.notes = append(t.notes, fmt.Sprintf("primary GPT damaged (%s): backup at LBA %d used", gptProblem(prim), back.lba))
	case prim.hdrErr == nil && back.hdrErr == nil && back.lba != 0:
		// Both headers check out but both entry arrays fail their CRC.
		use = prim
		if prim.entries == nil {
			use = back
		}
		t.notes = append(t.notes, "both GPT entry arrays fail their CRC: entries used unchecked")
	case prim.hdrErr == nil && prim.entries != nil:
		use = prim
		t.notes = append(t.notes, "GPT entries fail their CRC and the backup GPT is unusable: entries used unchecked")
	case back.hdrErr == nil && back.entries != nil && back.lba != 0:
		use = back
		t.notes = append(t.notes, fmt.Sprintf("primary GPT damaged (%s), backup entries fail their CRC: used unchecked", gptProblem(prim)))
	default:
		return nil
	}
	t.parts = gptPartitions(use.entries, use.hdr, ss, d.size, &t.notes)
	return t
}

// gptProblem says what was wrong with a header read.
func gptProblem(g gptRead) string {
	switch {
	case g.lba == 0:
		return "not found"
	case g.hdrErr != nil:
		return g.hdrErr.Error()
	case g.entErr != nil:
		return g.entErr.Error()
	}
	return "ok"
}

// gptPartitions decodes the used entries of an entry array.
func gptPartitions(b []byte, h gptHeader, ss, disk int64, notes *[]string) []partition {
	var out []partition
	le := binary.LittleEndian
	for i := int64(0); i < h.numEntries && (i+1)*h.entrySize <= int64(len(b)); i++ {
		e := b[i*h.entrySize : (i+1)*h.entrySize]
		if allZero(e[:16]) {
			continue
		}
		first, last := int64(le.Uint64(e[32:])&(1<<62-1)), int64(le.Uint64(e[40:])&(1<<62-1))
		if last < first || last >= beyondEnd/ss {
			*notes = append(*notes, fmt.Sprintf("GPT entry %d: bad LBA range %d-%d, ignored", i+1, first, last))
			continue
		}
		p := partition{index: int(i + 1), off: first * ss, size: (last - first + 1) * ss,
			typ: gptTypeName(e[:16]), name: strings.TrimRight(utf16String(e[56:128]), "\x00")}
		if p.off+p.size > disk {
			*notes = append(*notes, fmt.Sprintf("partition %d ends %d bytes past the end of the disk", p.index, p.off+p.size-disk))
		}
		out = append(out, p)
	}
	return out
}

// formatGUID spells a GPT GUID (first three fields little-endian) in upper
// case, as sfdisk and sgdisk print it.
func formatGUID(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

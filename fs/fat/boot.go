package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var le = binary.LittleEndian

// geometry is what a boot sector says about the volume's layout.
type geometry struct {
	exfat    bool
	bits     int   // FAT entry width: 12, 16 or 32
	ss       int64 // bytes per sector
	cs       int64 // bytes per cluster
	fatOff   int64 // byte offset of the first FAT
	fatLen   int64 // bytes per FAT
	nfats    int
	active   int    // the FAT in use (FAT32 without mirroring, exFAT TexFAT)
	clusters uint32 // data clusters: valid numbers are 2..clusters+1
	heap     int64  // byte offset of cluster 2
	rootOff  int64  // FAT12/16: byte offset of the fixed root directory
	rootLen  int64
	rootClus uint32 // FAT32, exFAT: first cluster of the root directory
	size     int64  // bytes the boot sector says the volume has
	serial   uint32
	label    string
	dirty    bool
}

var errNotFAT = errors.New("not a FAT or exFAT filesystem")

// parseBoot decodes a FAT12/16/32 or exFAT boot sector and checks that its
// geometry is usable within a volume of volSize bytes.
func parseBoot(b []byte, volSize int64) (*geometry, error) {
	if len(b) < 512 {
		return nil, errNotFAT
	}
	if string(b[3:11]) == "EXFAT   " {
		return parseExfatBoot(b, volSize)
	}
	g := &geometry{ss: int64(le.Uint16(b[11:]))}
	spc := int64(b[13])
	rsvd := int64(le.Uint16(b[14:]))
	g.nfats = int(b[16])
	rootEnt := int64(le.Uint16(b[17:]))
	tot := int64(le.Uint16(b[19:]))
	if tot == 0 {
		tot = int64(le.Uint32(b[32:]))
	}
	fatSz := int64(le.Uint16(b[22:]))
	fat32 := fatSz == 0
	if fat32 {
		fatSz = int64(le.Uint32(b[36:]))
	}
	switch {
	case g.ss != 512 && g.ss != 1024 && g.ss != 2048 && g.ss != 4096:
		return nil, fmt.Errorf("sector size %d invalid: %w", g.ss, errNotFAT)
	case spc == 0 || spc&(spc-1) != 0:
		return nil, fmt.Errorf("sectors per cluster %d invalid: %w", spc, errNotFAT)
	case rsvd == 0 || g.nfats == 0 || g.nfats > 4 || fatSz == 0 || tot == 0:
		return nil, fmt.Errorf("reserved sectors, FAT count, FAT size or total size invalid: %w", errNotFAT)
	case b[21] != 0xF0 && b[21] < 0xF8:
		return nil, fmt.Errorf("media byte %#x invalid: %w", b[21], errNotFAT)
	}
	g.cs = g.ss * spc
	g.fatOff = rsvd * g.ss
	g.fatLen = fatSz * g.ss
	g.rootOff = g.fatOff + int64(g.nfats)*g.fatLen
	g.rootLen = (rootEnt*32 + g.ss - 1) / g.ss * g.ss
	g.heap = g.rootOff + g.rootLen
	g.size = tot * g.ss
	if g.heap >= g.size {
		return nil, fmt.Errorf("no room for data: %w", errNotFAT)
	}
	g.clusters = uint32(min((g.size-g.heap)/g.cs, 0x0FFFFFF5))
	switch {
	case g.clusters < 4085 && !fat32:
		g.bits = 12
	case g.clusters < 65525 && !fat32:
		g.bits = 16
	default:
		g.bits = 32
	}
	if need := (int64(g.clusters) + 2) * int64(g.bits) / 8; need > g.fatLen {
		// A FAT too small for the clusters: only what it maps is usable.
		g.clusters = uint32(g.fatLen*8/int64(g.bits) - 2)
	}
	lab := 43
	if g.bits == 32 {
		if !fat32 || rootEnt != 0 {
			return nil, fmt.Errorf("FAT32 geometry invalid: %w", errNotFAT)
		}
		g.rootClus = le.Uint32(b[44:])
		flags := le.Uint16(b[40:])
		if flags&0x80 != 0 && int(flags&0xF) < g.nfats {
			g.active = int(flags & 0xF)
		}
		lab = 71
	} else if rootEnt == 0 {
		return nil, fmt.Errorf("no root directory: %w", errNotFAT)
	}
	if b[lab-5] == 0x29 || b[lab-5] == 0x28 { // extended boot signature
		g.serial = le.Uint32(b[lab-4:])
		if l := trimLabel(b[lab : lab+11]); l != "NO NAME" {
			g.label = l
		}
	}
	return g, nil
}

// parseExfatBoot decodes an exFAT main boot sector.
func parseExfatBoot(b []byte, volSize int64) (*geometry, error) {
	g := &geometry{exfat: true, bits: 32}
	ssShift, spcShift := b[108], b[109]
	if ssShift < 9 || ssShift > 12 || int(ssShift)+int(spcShift) > 25 {
		return nil, fmt.Errorf("exFAT sector or cluster size invalid: %w", errNotFAT)
	}
	g.ss = 1 << ssShift
	g.cs = g.ss << spcShift
	g.fatOff = int64(le.Uint32(b[80:])) * g.ss
	g.fatLen = int64(le.Uint32(b[84:])) * g.ss
	g.heap = int64(le.Uint32(b[88:])) * g.ss
	g.clusters = le.Uint32(b[92:])
	g.rootClus = le.Uint32(b[96:])
	g.serial = le.Uint32(b[100:])
	g.nfats = int(b[110])
	g.size = int64(le.Uint64(b[72:])) * g.ss
	flags := le.Uint16(b[106:])
	g.dirty = flags&2 != 0
	if flags&1 != 0 && g.nfats == 2 {
		g.active = 1
	}
	switch {
	case g.nfats != 1 && g.nfats != 2:
		return nil, fmt.Errorf("exFAT FAT count %d invalid: %w", g.nfats, errNotFAT)
	case g.fatOff < 24*g.ss || g.fatLen == 0 || g.heap < g.fatOff+int64(g.nfats)*g.fatLen:
		return nil, fmt.Errorf("exFAT layout invalid: %w", errNotFAT)
	case g.clusters == 0 || g.clusters > 0xFFFFFFF5 || int64(g.clusters+2)*4 > g.fatLen:
		return nil, fmt.Errorf("exFAT cluster count %d invalid: %w", g.clusters, errNotFAT)
	case g.rootClus < 2 || g.rootClus >= g.clusters+2:
		return nil, fmt.Errorf("exFAT root cluster %d invalid: %w", g.rootClus, errNotFAT)
	}
	return g, nil
}

// exfatBootChecksum computes the checksum of an exFAT boot region's first
// 11 sectors (the volume flags and percent-in-use bytes left out).
func exfatBootChecksum(region []byte, ss int) uint32 {
	var c uint32
	for i, x := range region[:11*ss] {
		if i == 106 || i == 107 || i == 112 {
			continue
		}
		c = c<<31 | c>>1 + uint32(x)
	}
	return c
}

// checkExfatRegion verifies a boot region (12 sectors) against its
// checksum sector.
func checkExfatRegion(region []byte, ss int) bool {
	if len(region) < 12*ss {
		return false
	}
	c := exfatBootChecksum(region, ss)
	for i := 11 * ss; i < 12*ss; i += 4 {
		if le.Uint32(region[i:]) != c {
			return false
		}
	}
	return true
}

func trimLabel(b []byte) string {
	end := len(b)
	for end > 0 && (b[end-1] == ' ' || b[end-1] == 0) {
		end--
	}
	return latin1(b[:end])
}

// latin1 decodes bytes as ISO 8859-1 (short names are in an OEM code
// page that is not recorded; ASCII is right in any).
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

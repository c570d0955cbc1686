package volume

import (
	"encoding/binary"
	"fmt"
	"io"
)

// isBootSectorFS reports whether fs keeps its superblock in sector 0 with
// the 0x55AA signature an MBR also has: such a volume is never read as a
// partition table.
func isBootSectorFS(fs string) bool {
	return fs == "vfat" || fs == "exfat" || fs == "ntfs"
}

// fatGeometry is what a FAT boot sector says about the volume's layout.
type fatGeometry struct {
	bps, spc         int64 // bytes per sector, sectors per cluster
	reserved, nfats  int64
	rootEntries      int64
	fatSize, sectors int64
	fat32            bool
	rootCluster      uint32
}

// parseFATBoot checks a FAT boot sector the way blkid does and returns its
// geometry.
func parseFATBoot(b []byte) (g fatGeometry, ok bool) {
	if len(b) < 512 || (b[0] != 0xEB && b[0] != 0xE9) {
		return g, false
	}
	if string(b[3:11]) == "NTFS    " || string(b[3:11]) == "EXFAT   " {
		return g, false
	}
	g.bps = int64(binary.LittleEndian.Uint16(b[0x0B:]))
	g.spc = int64(b[0x0D])
	g.reserved = int64(binary.LittleEndian.Uint16(b[0x0E:]))
	g.nfats = int64(b[0x10])
	g.rootEntries = int64(binary.LittleEndian.Uint16(b[0x11:]))
	g.sectors = int64(binary.LittleEndian.Uint16(b[0x13:]))
	media := b[0x15]
	g.fatSize = int64(binary.LittleEndian.Uint16(b[0x16:]))
	if g.sectors == 0 {
		g.sectors = int64(binary.LittleEndian.Uint32(b[0x20:]))
	}
	if g.bps < 512 || g.bps > 4096 || g.bps&(g.bps-1) != 0 ||
		g.spc == 0 || g.spc&(g.spc-1) != 0 || g.reserved == 0 ||
		g.nfats == 0 || g.nfats > 4 || (media != 0xF0 && media < 0xF8) || g.sectors == 0 {
		return g, false
	}
	if g.fatSize == 0 {
		g.fat32 = true
		g.fatSize = int64(binary.LittleEndian.Uint32(b[0x24:]))
		g.rootCluster = binary.LittleEndian.Uint32(b[0x2C:])
		if g.fatSize == 0 || g.rootEntries != 0 {
			return g, false
		}
	}
	return g, true
}

// probeFAT recognises FAT12/16/32 (as blkid's "vfat"), falling back to the
// FAT32 backup boot sector (sector 6) when sector 0 is damaged.
func probeFAT(r io.ReaderAt, size int64) (detection, bool) {
	b := readBlock(r, size, 0, 512)
	g, ok := parseFATBoot(b)
	note := ""
	if !ok {
		b = readBlock(r, size, 6*512, 512)
		if g, ok = parseFATBoot(b); !ok || !g.fat32 {
			return detection{}, false
		}
		note = "vfat: boot sector damaged, backup boot sector 6 used"
	}
	d := detection{fs: "vfat", note: note}
	serialOff, labelOff, sigOff := 0x27, 0x2B, 0x26
	if g.fat32 {
		serialOff, labelOff, sigOff = 0x43, 0x47, 0x42
	}
	if b[sigOff] == 0x29 || b[sigOff] == 0x28 {
		d.uuid = serialUUID(binary.LittleEndian.Uint32(b[serialOff:]))
		if b[sigOff] == 0x29 {
			if l := trimLabel(string(b[labelOff : labelOff+11])); l != "NO NAME" {
				d.label = l
			}
		}
	}
	// blkid prefers the volume-label entry of the root directory.
	if l, found := fatRootLabel(r, size, g); found {
		d.label = l
	}
	return d, true
}

// fatRootLabel looks for the volume label entry in the root directory (the
// fixed root of FAT12/16, or the first cluster of the FAT32 root). Bounded:
// at most 64 KiB are read.
func fatRootLabel(r io.ReaderAt, size int64, g fatGeometry) (string, bool) {
	var off, n int64
	if g.fat32 {
		if g.rootCluster < 2 {
			return "", false
		}
		data := (g.reserved + g.nfats*g.fatSize) * g.bps
		off = data + int64(g.rootCluster-2)*g.spc*g.bps
		n = g.spc * g.bps
	} else {
		off = (g.reserved + g.nfats*g.fatSize) * g.bps
		n = g.rootEntries * 32
	}
	n = min(n, 64<<10)
	b := readBlock(r, size, off, int(n))
	if b == nil {
		return "", false
	}
	for i := 0; i+32 <= len(b); i += 32 {
		e := b[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xE5 || e[11]&0x3F == 0x0F {
			continue
		}
		if e[11]&0x08 != 0 && e[11]&0x10 == 0 {
			l := trimLabel(string(e[:11]))
			if l == "NO NAME" {
				return "", false
			}
			return l, true
		}
	}
	return "", false
}

// probeExFAT recognises exFAT, checking the boot region checksum and using
// the backup boot region (sectors 12-23) when the main one is damaged.
func probeExFAT(r io.ReaderAt, size int64) (detection, bool) {
	// The main boot sector at 0, then the backup at sector 12 for either
	// sector size (unknown when the main boot sector is gone).
	for i, off := range []int64{0, 12 * 512, 12 * 4096} {
		b := readBlock(r, size, off, 512)
		if b == nil || string(b[3:11]) != "EXFAT   " || b[0x6C] < 9 || b[0x6C] > 12 || b[0x6D] > 25-b[0x6C] {
			continue
		}
		bps := int64(1) << b[0x6C]
		if i > 0 && off != 12*bps {
			continue
		}
		if !exfatChecksumOK(r, size, off, bps) {
			continue
		}
		d := detection{fs: "exfat", uuid: serialUUID(binary.LittleEndian.Uint32(b[0x64:]))}
		if i > 0 {
			d.note = "exfat: main boot region damaged, backup boot region used"
		}
		heap := int64(binary.LittleEndian.Uint32(b[0x58:])) * bps
		cluster := bps << b[0x6D]
		if root := int64(binary.LittleEndian.Uint32(b[0x60:])); root >= 2 {
			if l, ok := exfatLabel(r, size, heap+(root-2)*cluster, min(cluster, 64<<10)); ok {
				d.label = l
			}
		}
		return d, true
	}
	return detection{}, false
}

// exfatChecksumOK verifies the boot region checksum: sector 11 repeats a
// checksum of sectors 0-10 (skipping the VolumeFlags and PercentInUse bytes).
func exfatChecksumOK(r io.ReaderAt, size, off, bps int64) bool {
	b := readBlock(r, size, off, int(12*bps))
	if b == nil {
		return false
	}
	var sum uint32
	for i := int64(0); i < 11*bps; i++ {
		if i == 106 || i == 107 || i == 112 {
			continue
		}
		sum = (sum<<31 | sum>>1) + uint32(b[i])
	}
	return binary.LittleEndian.Uint32(b[11*bps:]) == sum
}

// exfatLabel finds the volume label entry (type 0x83) in n bytes of the
// root directory at off.
func exfatLabel(r io.ReaderAt, size, off, n int64) (string, bool) {
	b := readBlock(r, size, off, int(n))
	for i := 0; i+32 <= len(b); i += 32 {
		switch b[i] {
		case 0x00:
			return "", false
		case 0x83:
			k := min(int(b[i+1]), 11)
			return utf16String(b[i+2 : i+2+2*k]), true
		}
	}
	return "", false
}

// probeNTFS recognises NTFS by its boot sector (or the backup in the
// volume's last sector) and reads the label from the $Volume record of the
// MFT (or of $MFTMirr).
func probeNTFS(r io.ReaderAt, size int64) (detection, bool) {
	b := readBlock(r, size, 0, 512)
	note := ""
	g, ok := parseNTFSBoot(b)
	if !ok && size >= 1024 {
		b = readBlock(r, size, (size/512-1)*512, 512)
		if g, ok = parseNTFSBoot(b); !ok {
			return detection{}, false
		}
		note = "ntfs: boot sector damaged, backup boot sector used"
	}
	if !ok {
		return detection{}, false
	}
	d := detection{fs: "ntfs", uuid: fmt.Sprintf("%016X", binary.LittleEndian.Uint64(b[0x48:])), note: note}
	for _, mft := range []int64{g.mft, g.mirr} {
		if l, ok := ntfsVolumeName(r, size, mft+3*g.recSize, g.recSize, g.bps); ok {
			d.label = l
			break
		}
	}
	return d, true
}

type ntfsGeometry struct {
	bps, recSize int64
	mft, mirr    int64 // byte offsets of $MFT and $MFTMirr
}

func parseNTFSBoot(b []byte) (g ntfsGeometry, ok bool) {
	if b == nil || string(b[3:11]) != "NTFS    " {
		return g, false
	}
	g.bps = int64(binary.LittleEndian.Uint16(b[0x0B:]))
	spc := int64(b[0x0D])
	if spc > 0x80 {
		if 256-spc > 20 {
			return g, false
		}
		spc = 1 << (256 - spc)
	}
	if g.bps < 256 || g.bps > 4096 || g.bps&(g.bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 {
		return g, false
	}
	cluster := g.bps * spc
	c := int8(b[0x40])
	switch {
	case c < 0 && c > -32:
		g.recSize = 1 << -c
	case c > 0:
		g.recSize = int64(c) * cluster
	}
	if g.recSize < 256 || g.recSize > 1<<16 {
		return g, false
	}
	mft := binary.LittleEndian.Uint64(b[0x30:])
	mirr := binary.LittleEndian.Uint64(b[0x38:])
	if mft > 1<<40 || mirr > 1<<40 {
		return g, false
	}
	g.mft, g.mirr = int64(mft)*cluster, int64(mirr)*cluster
	return g, true
}

// ntfsVolumeName reads MFT record at off and returns its $VOLUME_NAME value.
func ntfsVolumeName(r io.ReaderAt, size, off, recSize, bps int64) (string, bool) {
	b := readBlock(r, size, off, int(recSize))
	if b == nil || string(b[:4]) != "FILE" {
		return "", false
	}
	// Undo the update sequence: the last two bytes of every stride hold the
	// sequence number; the real bytes are in the update sequence array.
	usa := int(binary.LittleEndian.Uint16(b[4:]))
	cnt := int(binary.LittleEndian.Uint16(b[6:]))
	stride := int(min(bps, 512))
	if cnt < 1 || usa+2*cnt > len(b) || (cnt-1)*stride > len(b) {
		return "", false
	}
	for i := 1; i < cnt; i++ {
		end := i*stride - 2
		if b[end] != b[usa] || b[end+1] != b[usa+1] {
			return "", false
		}
		b[end], b[end+1] = b[usa+2*i], b[usa+2*i+1]
	}
	p := int(binary.LittleEndian.Uint16(b[0x14:]))
	for n := 0; n < 64 && p+16 <= len(b); n++ {
		typ := binary.LittleEndian.Uint32(b[p:])
		l := int(binary.LittleEndian.Uint32(b[p+4:]))
		if typ == 0xFFFFFFFF || l < 16 || p+l > len(b) {
			break
		}
		if typ == 0x60 && b[p+8] == 0 && l >= 24 {
			vl := int(binary.LittleEndian.Uint32(b[p+0x10:]))
			vo := int(binary.LittleEndian.Uint16(b[p+0x14:]))
			if vo+vl <= l {
				return utf16String(b[p+vo : p+vo+vl]), true
			}
			return "", false
		}
		p += l
	}
	return "", false
}

package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// Detect says what a volume holds by its superblock magic: "ext2", "ext3",
// "ext4", "jbd" (an external ext journal), "xfs", "btrfs", "vfat" (FAT12/16/32),
// "exfat", "ntfs", "swap", "crypto_LUKS" (encrypted: reported, never read),
// "zfs_member", "LVM2_member", or "" when nothing is recognised. uuid and
// label are given where the format has them, spelled as blkid spells them.
//
// Where a format keeps a second copy of its superblock (ext backup
// superblocks, btrfs mirrors, the FAT32, exFAT and NTFS backup boot
// sectors), a damaged primary copy does not hide the filesystem.
func Detect(r io.ReaderAt, size int64) (fs, uuid, label string) {
	d := detect(r, size)
	return d.fs, d.uuid, d.label
}

// detection is what detect found, with a note when it needed a backup copy.
type detection struct {
	fs, uuid, label string
	note            string
}

// A prober looks for one format; ok is false when the format is absent.
type prober func(r io.ReaderAt, size int64) (d detection, ok bool)

// probers run in order; the first that recognises the volume wins. Formats
// with long, specific magics at fixed places come first, the two-byte ext
// magic and the heuristic FAT checks later.
var probers = []prober{
	probeLUKS,
	probeLVM,
	probeXFS,
	probeNTFS,
	probeExFAT,
	probeBtrfs,
	probeExt,
	probeFAT,
	probeSwap,
	probeZFS,
}

func detect(r io.ReaderAt, size int64) detection {
	for _, p := range probers {
		if d, ok := p(r, size); ok {
			return d
		}
	}
	return detection{}
}

// readBlock reads n bytes at off, or returns nil if they are not all there.
func readBlock(r io.ReaderAt, size, off int64, n int) []byte {
	if off < 0 || n <= 0 || (size >= 0 && off+int64(n) > size) {
		return nil
	}
	b := make([]byte, n)
	if k, _ := r.ReadAt(b, off); k != n {
		return nil
	}
	return b
}

// formatUUID spells 16 bytes the way blkid does: 8-4-4-4-12 lower-case hex.
func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// cString returns b up to its first NUL byte.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// utf16String decodes little-endian UTF-16 up to the first NUL.
func utf16String(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// probeLUKS recognises LUKS1 and LUKS2 headers. The volume is encrypted:
// vzsalvage reports it and reads nothing inside.
func probeLUKS(r io.ReaderAt, size int64) (detection, bool) {
	b := readBlock(r, size, 0, 512)
	if b == nil || !bytes.Equal(b[:6], []byte("LUKS\xba\xbe")) {
		return detection{}, false
	}
	d := detection{fs: "crypto_LUKS", uuid: cString(b[168:208])}
	if binary.BigEndian.Uint16(b[6:]) == 2 {
		d.label = cString(b[24:72])
	}
	return d, true
}

// probeLVM recognises an LVM2 physical volume label in sectors 0-3.
func probeLVM(r io.ReaderAt, size int64) (detection, bool) {
	lb, err := findLabel(r, size)
	if err != nil {
		return detection{}, false
	}
	return detection{fs: "LVM2_member", uuid: lb.uuid}, true
}

// probeXFS recognises an XFS superblock at offset 0.
func probeXFS(r io.ReaderAt, size int64) (detection, bool) {
	b := readBlock(r, size, 0, 512)
	if b == nil || string(b[:4]) != "XFSB" {
		return detection{}, false
	}
	bs := binary.BigEndian.Uint32(b[4:])
	if bs < 512 || bs > 65536 || bs&(bs-1) != 0 {
		return detection{}, false
	}
	return detection{fs: "xfs", uuid: formatUUID(b[32:48]), label: cString(b[108:120])}, true
}

// btrfsMirrors are the byte offsets of the btrfs superblock and its copies.
var btrfsMirrors = []int64{64 << 10, 64 << 20, 256 << 30}

// probeBtrfs recognises a btrfs superblock, checking its crc32c, and falls
// back to the mirror copies when the primary is damaged.
func probeBtrfs(r io.ReaderAt, size int64) (detection, bool) {
	for i, off := range btrfsMirrors {
		b := readBlock(r, size, off, 4096)
		if b == nil || string(b[0x40:0x48]) != "_BHRfS_M" || int64(binary.LittleEndian.Uint64(b[0x30:])) != off {
			continue
		}
		if binary.LittleEndian.Uint16(b[0xc4:]) == 0 &&
			crc32.Checksum(b[0x20:], castagnoli) != binary.LittleEndian.Uint32(b) {
			continue
		}
		d := detection{fs: "btrfs", uuid: formatUUID(b[0x20:0x30]), label: cString(b[0x12b:0x22b])}
		if i > 0 {
			d.note = fmt.Sprintf("btrfs: primary superblock damaged, mirror at %d used", off)
		}
		return d, true
	}
	return detection{}, false
}

// ext feature bits that decide between ext2, ext3 and ext4, as blkid does.
const (
	extCompatHasJournal    = 0x4
	extIncompatJournalDev  = 0x8
	extIncompatExt3Allowed = 0x2 | 0x4 | 0x10 // filetype, recover, meta_bg
	extROCompatExt2Allowed = 0x1 | 0x2 | 0x4  // sparse_super, large_file, btree_dir
)

// probeExt recognises an ext2/3/4 superblock at 1024, or a backup copy in
// block group 1 when the primary is damaged.
func probeExt(r io.ReaderAt, size int64) (detection, bool) {
	if d, ok := extAt(r, size, 1024); ok {
		return d, true
	}
	// Backup superblocks start group 1: block 8193 with 1 KiB blocks,
	// block 16384 with 2 KiB, block 32768 with 4 KiB (and larger).
	for _, off := range []int64{8193 * 1024, 16384 * 2048, 32768 * 4096, 65536 * 8192} {
		if d, ok := extAt(r, size, off); ok {
			d.note = fmt.Sprintf("%s: primary superblock damaged, backup at %d used", d.fs, off)
			return d, true
		}
	}
	return detection{}, false
}

func extAt(r io.ReaderAt, size, off int64) (detection, bool) {
	b := readBlock(r, size, off, 1024)
	if b == nil || binary.LittleEndian.Uint16(b[0x38:]) != 0xEF53 {
		return detection{}, false
	}
	logBlock := binary.LittleEndian.Uint32(b[0x18:])
	if logBlock > 6 || binary.LittleEndian.Uint32(b[0:]) == 0 {
		return detection{}, false
	}
	if off != 1024 {
		// A backup copy must say which group it describes and match the
		// block size its place implies.
		bs := int64(1024) << logBlock
		group := binary.LittleEndian.Uint16(b[0x5A:])
		first := int64(binary.LittleEndian.Uint32(b[0x14:]))
		per := int64(binary.LittleEndian.Uint32(b[0x20:]))
		if group != 1 || per == 0 || (first+per)*bs != off {
			return detection{}, false
		}
	}
	compat := binary.LittleEndian.Uint32(b[0x5C:])
	incompat := binary.LittleEndian.Uint32(b[0x60:])
	ro := binary.LittleEndian.Uint32(b[0x64:])
	d := detection{uuid: formatUUID(b[0x68:0x78]), label: cString(b[0x78:0x88])}
	switch {
	case incompat&extIncompatJournalDev != 0:
		d.fs = "jbd"
	case incompat&^extIncompatExt3Allowed != 0 || ro&^extROCompatExt2Allowed != 0:
		d.fs = "ext4"
	case compat&extCompatHasJournal != 0:
		d.fs = "ext3"
	default:
		d.fs = "ext2"
	}
	return d, true
}

// probeSwap recognises a Linux swap area (or a suspend image in one) for
// the usual page sizes.
func probeSwap(r io.ReaderAt, size int64) (detection, bool) {
	for _, ps := range []int64{4096, 8192, 16384, 65536} {
		m := readBlock(r, size, ps-10, 10)
		if m == nil {
			continue
		}
		switch string(m) {
		case "SWAPSPACE2", "S1SUSPEND\x00", "ULSUSPEND\x00", "LINHIB0001":
			h := readBlock(r, size, 1024, 48)
			if h == nil {
				return detection{fs: "swap"}, true
			}
			d := detection{fs: "swap", label: cString(h[28:44])}
			if u := h[12:28]; !allZero(u) {
				d.uuid = formatUUID(u)
			}
			return d, true
		case "SWAP-SPACE":
			return detection{fs: "swap"}, true
		}
	}
	return detection{}, false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// serialUUID spells a FAT or exFAT volume serial number as blkid does.
func serialUUID(v uint32) string {
	return fmt.Sprintf("%04X-%04X", v>>16, v&0xffff)
}

// trimLabel removes the space padding of an 8.3-style label.
func trimLabel(s string) string {
	return strings.TrimRight(cString([]byte(s)), " ")
}

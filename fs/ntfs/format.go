package ntfs

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf16"
)

// On-disk layout, as documented by the Linux-NTFS project's "NTFS
// Documentation" and the ntfs-3g headers (layout.h).

var le = binary.LittleEndian

// Attribute types.
const (
	atStandardInfo = 0x10
	atAttrList     = 0x20
	atFileName     = 0x30
	atVolumeName   = 0x60
	atData         = 0x80
	atIndexRoot    = 0x90
	atIndexAlloc   = 0xA0
	atBitmap       = 0xB0
	atReparse      = 0xC0
	atEnd          = 0xFFFFFFFF
)

// Record numbers of system files.
const (
	recMFT     = 0
	recMFTMirr = 1
	recVolume  = 3
	recRoot    = 5
	recExtend  = 11
	firstUser  = 16 // records below are system files
)

// Record header flags.
const (
	recInUse = 1
	recIsDir = 2
)

// Attribute flags.
const (
	attrCompressed = 0x0001
	attrEncrypted  = 0x4000
	attrSparse     = 0x8000
)

// File attribute bits ($STANDARD_INFORMATION, $FILE_NAME).
const (
	faReadOnly  = 0x0001
	faSystem    = 0x0004
	faDirectory = 0x10000000
)

// Reparse tags.
const (
	tagSymlink    = 0xA000000C
	tagMountPoint = 0xA0000003
)

// $FILE_NAME namespaces.
const nsDOS = 2

const sectorStride = 512 // the update sequence protects every 512 bytes

// boot is a parsed NTFS boot sector.
type boot struct {
	bps       int64 // bytes per sector
	cluster   int64
	sectors   int64
	mftLCN    int64
	mirrLCN   int64
	recSize   int64
	indexSize int64
	serial    uint64
}

// parseBoot checks and parses a boot sector.
func parseBoot(b []byte) (*boot, error) {
	if len(b) < 512 || string(b[3:11]) != "NTFS    " {
		return nil, fmt.Errorf("no NTFS signature")
	}
	bt := &boot{bps: int64(le.Uint16(b[0x0B:])), sectors: int64(le.Uint64(b[0x28:]) & (1<<48 - 1)),
		mftLCN: int64(le.Uint64(b[0x30:]) & (1<<48 - 1)), mirrLCN: int64(le.Uint64(b[0x38:]) & (1<<48 - 1)),
		serial: le.Uint64(b[0x48:])}
	if bt.bps < 256 || bt.bps > 4096 || bt.bps&(bt.bps-1) != 0 {
		return nil, fmt.Errorf("%d bytes per sector", bt.bps)
	}
	spc := int64(b[0x0D])
	if spc > 0x80 {
		if 256-spc > 20 {
			return nil, fmt.Errorf("sectors per cluster %#x", b[0x0D])
		}
		spc = 1 << (256 - spc)
	}
	if spc == 0 || spc&(spc-1) != 0 {
		return nil, fmt.Errorf("%d sectors per cluster", spc)
	}
	bt.cluster = spc * bt.bps
	if bt.cluster > 2<<20 {
		return nil, fmt.Errorf("cluster of %d bytes", bt.cluster)
	}
	var err error
	if bt.recSize, err = sizeField(int8(b[0x40]), bt.cluster); err != nil || bt.recSize < 512 || bt.recSize > 64<<10 {
		return nil, fmt.Errorf("MFT record size %d %v", bt.recSize, err)
	}
	if bt.indexSize, err = sizeField(int8(b[0x44]), bt.cluster); err != nil || bt.indexSize < 512 || bt.indexSize > 64<<10 {
		return nil, fmt.Errorf("index record size %d %v", bt.indexSize, err)
	}
	if bt.sectors == 0 || bt.mftLCN == 0 {
		return nil, fmt.Errorf("empty geometry")
	}
	return bt, nil
}

// sizeField decodes the record size fields: clusters when positive, 2^-v
// bytes when negative.
func sizeField(v int8, cluster int64) (int64, error) {
	if v > 0 {
		return int64(v) * cluster, nil
	}
	if -int(v) > 20 {
		return 0, fmt.Errorf("size exponent %d", -int(v))
	}
	return 1 << uint(-int(v)), nil
}

// fixup applies the update sequence array of a multi-sector record (MFT
// record or index block) in place, checking every protected sector.
func fixup(b []byte, magic string) error {
	if len(b) < 48 || string(b[:4]) != magic {
		return fmt.Errorf("no %s signature", magic)
	}
	off, count := int(le.Uint16(b[4:])), int(le.Uint16(b[6:]))
	if count < 2 || count-1 != len(b)/sectorStride || off < 8 || off+2*count > len(b) || off+2*count > sectorStride {
		return fmt.Errorf("update sequence array %d+%d", off, count)
	}
	usn := le.Uint16(b[off:])
	for i := 1; i < count; i++ {
		end := i*sectorStride - 2
		if le.Uint16(b[end:]) != usn {
			return fmt.Errorf("sector %d of the record fails its update sequence check (torn or damaged)", i-1)
		}
		copy(b[end:end+2], b[off+2*i:off+2*i+2])
	}
	return nil
}

// attr is one parsed attribute of an MFT record.
type attr struct {
	typ      uint32
	name     string
	flags    uint16
	id       uint16
	resident bool
	value    []byte // resident value
	at       int    // offset in the record
	// non-resident
	startVCN  int64
	lastVCN   int64
	runs      []dataRun
	runsErr   error
	compUnit  int
	allocSize int64
	realSize  int64
	initSize  int64
}

// dataRun maps vcn [vcn, vcn+n) to lcn [lcn, lcn+n); lcn -1 is sparse.
type dataRun struct {
	vcn, lcn, n int64
}

const maxRuns = 1 << 20

// parseAttrs parses the attributes of a fixed-up MFT record.
func parseAttrs(rec []byte, clusters int64) ([]attr, error) {
	off := int(le.Uint16(rec[0x14:]))
	used := int(le.Uint32(rec[0x18:]))
	if used > len(rec) || used < 0x30 {
		used = len(rec)
	}
	var out []attr
	for n := 0; off+8 <= used && n < 512; n++ {
		typ := le.Uint32(rec[off:])
		if typ == atEnd {
			return out, nil
		}
		l := int(le.Uint32(rec[off+4:]))
		if l < 24 || l > used-off || l%8 != 0 {
			return out, fmt.Errorf("attribute at %d: length %d", off, l)
		}
		a, err := parseAttr(rec[off:off+l], clusters)
		if err != nil {
			return out, fmt.Errorf("attribute %#x at %d: %v", typ, off, err)
		}
		a.at = off
		out = append(out, a)
		off += l
	}
	return out, fmt.Errorf("no end marker")
}

func parseAttr(b []byte, clusters int64) (attr, error) {
	a := attr{typ: le.Uint32(b), resident: b[8] == 0, flags: le.Uint16(b[0x0C:]), id: le.Uint16(b[0x0E:])}
	nl, no := int(b[9]), int(le.Uint16(b[0x0A:]))
	if nl > 0 {
		if no+2*nl > len(b) {
			return a, fmt.Errorf("name past the attribute")
		}
		a.name = utf16String(b[no : no+2*nl])
	}
	if a.resident {
		vl, vo := int(le.Uint32(b[0x10:])), int(le.Uint16(b[0x14:]))
		if vo > len(b) || vl > len(b)-vo {
			return a, fmt.Errorf("resident value %d+%d past the attribute", vo, vl)
		}
		a.value = b[vo : vo+vl]
		return a, nil
	}
	if len(b) < 0x40 {
		return a, fmt.Errorf("non-resident header of %d bytes", len(b))
	}
	a.startVCN = int64(le.Uint64(b[0x10:]) & (1<<62 - 1))
	a.lastVCN = int64(le.Uint64(b[0x18:]))
	ro := int(le.Uint16(b[0x20:]))
	a.compUnit = int(le.Uint16(b[0x22:]))
	a.allocSize = int64(le.Uint64(b[0x28:]) & (1<<62 - 1))
	a.realSize = int64(le.Uint64(b[0x30:]) & (1<<62 - 1))
	a.initSize = int64(le.Uint64(b[0x38:]) & (1<<62 - 1))
	if a.compUnit > 8 {
		return a, fmt.Errorf("compression unit of 2^%d clusters", a.compUnit)
	}
	if ro > len(b) {
		return a, fmt.Errorf("runlist offset %d", ro)
	}
	a.runs, a.runsErr = parseRuns(b[ro:], a.startVCN, clusters)
	return a, nil
}

// parseRuns decodes a runlist starting at vcn. Runs pointing outside the
// volume (clusters) end the list with an error.
func parseRuns(b []byte, vcn, clusters int64) ([]dataRun, error) {
	var out []dataRun
	lcn := int64(0)
	for p := 0; p < len(b) && len(out) < maxRuns; {
		h := b[p]
		if h == 0 {
			return out, nil
		}
		ln, lo := int(h&0x0F), int(h>>4)
		if ln == 0 || ln > 8 || lo > 8 || p+1+ln+lo > len(b) {
			return out, fmt.Errorf("run header %#x at %d", h, p)
		}
		n := int64(0)
		for i := ln - 1; i >= 0; i-- {
			n = n<<8 | int64(b[p+1+i])
		}
		if n <= 0 || n > clusters {
			return out, fmt.Errorf("run of %d clusters", n)
		}
		r := dataRun{vcn: vcn, lcn: -1, n: n}
		if lo > 0 {
			d := int64(int8(b[p+ln+lo])) // sign from the top byte
			for i := lo - 2; i >= 0; i-- {
				d = d<<8 | int64(b[p+1+ln+i])
			}
			lcn += d
			if lcn < 0 || lcn+n > clusters {
				return out, fmt.Errorf("run at cluster %d+%d outside the volume", lcn, n)
			}
			r.lcn = lcn
		}
		out = append(out, r)
		vcn += n
		p += 1 + ln + lo
	}
	return out, fmt.Errorf("runlist without an end")
}

// fileName is a parsed $FILE_NAME value.
type fileName struct {
	parent    uint64 // MFT reference (record | seq<<48)
	namespace uint8
	name      string
	attrs     uint32
}

func parseFileName(b []byte) (fileName, bool) {
	if len(b) < 0x42 {
		return fileName{}, false
	}
	n := int(b[0x40])
	if 0x42+2*n > len(b) || n == 0 {
		return fileName{}, false
	}
	return fileName{parent: le.Uint64(b), namespace: b[0x41], attrs: le.Uint32(b[0x38:]),
		name: utf16String(b[0x42 : 0x42+2*n])}, true
}

// utf16String decodes UTF-16LE (unpaired surrogates become U+FFFD).
func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// ntfsEpoch is 1601-01-01 in Unix seconds.
const ntfsEpoch = -11644473600

// ntfsTime converts 100 ns intervals since 1601 to a time.
func ntfsTime(v uint64) time.Time {
	if v == 0 || v > 1<<62 {
		return time.Time{}
	}
	return time.Unix(ntfsEpoch+int64(v/1e7), int64(v%1e7)*100)
}

// ref splits an MFT reference into record number and sequence number.
func ref(r uint64) (uint64, uint16) { return r & (1<<48 - 1), uint16(r >> 48) }

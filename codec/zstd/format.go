package zstd

import (
	"errors"
	"fmt"
)

// Format constants from RFC 8878.
const (
	frameMagic        = 0xFD2FB528
	skippableMagicLow = 0x184D2A50 // 0x184D2A50..0x184D2A5F
	skippableMask     = 0xFFFFFFF0
	maxBlockSize      = 128 << 10 // Block_Maximum_Size upper limit
	minWindow         = 1 << 10

	// MaxWindow is the largest frame window the decoder accepts; vzdump uses
	// 2 MiB and `zstd --long` at most 128 MiB. Memory is bounded by it.
	MaxWindow = 256 << 20
)

// Block types.
const (
	blockRaw        = 0
	blockRLE        = 1
	blockCompressed = 2
	blockReserved   = 3
)

var (
	errWindowTooLarge = errors.New("zstd: frame window exceeds the 256 MiB limit")
	errDictionary     = errors.New("zstd: frame needs a dictionary")
)

// frameHeader is a parsed Frame_Header.
type frameHeader struct {
	size        int   // bytes from the magic to the first block header
	window      int64 // Window_Size
	blockMax    int   // Block_Maximum_Size
	contentSize int64 // Frame_Content_Size, -1 when absent
	checksum    bool  // Content_Checksum_flag
	dictID      uint32
}

func le16(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 }
func le24(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

// headerNeed returns how many bytes the frame header starting b needs
// (b holds at least the magic and the descriptor byte), or 0 if the
// descriptor is invalid.
func headerNeed(fhd byte) int {
	if fhd&0x08 != 0 { // reserved bit
		return 0
	}
	n := 5
	single := fhd&0x20 != 0
	if !single {
		n++
	}
	n += [4]int{0, 1, 2, 4}[fhd&3]
	switch fhd >> 6 {
	case 0:
		if single {
			n++
		}
	case 1:
		n += 2
	case 2:
		n += 4
	case 3:
		n += 8
	}
	return n
}

// parseFrameHeader parses the frame header at the start of b (magic
// included). It returns errShort when b is too short.
func parseFrameHeader(b []byte) (frameHeader, error) {
	var h frameHeader
	if len(b) < 5 {
		return h, errShort
	}
	if le32(b) != frameMagic {
		return h, errors.New("zstd: bad frame magic")
	}
	fhd := b[4]
	need := headerNeed(fhd)
	if need == 0 {
		return h, errors.New("zstd: reserved bit set in frame header")
	}
	if len(b) < need {
		return h, errShort
	}
	h.size = need
	p := 5
	single := fhd&0x20 != 0
	if !single {
		wd := b[p]
		p++
		exp := uint(wd >> 3)
		base := int64(1) << (10 + exp)
		h.window = base + (base/8)*int64(wd&7)
	}
	switch fhd & 3 {
	case 1:
		h.dictID = uint32(b[p])
		p++
	case 2:
		h.dictID = le16(b[p:])
		p += 2
	case 3:
		h.dictID = le32(b[p:])
		p += 4
	}
	h.contentSize = -1
	switch fhd >> 6 {
	case 0:
		if single {
			h.contentSize = int64(b[p])
		}
	case 1:
		h.contentSize = int64(le16(b[p:])) + 256
	case 2:
		h.contentSize = int64(le32(b[p:]))
	case 3:
		v := le64(b[p:])
		if v > 1<<62 {
			return h, errors.New("zstd: absurd frame content size")
		}
		h.contentSize = int64(v)
	}
	if single {
		h.window = h.contentSize
	}
	h.checksum = fhd&0x04 != 0
	if h.dictID != 0 {
		return h, errDictionary
	}
	if h.window > MaxWindow {
		return h, fmt.Errorf("%w (window %d bytes)", errWindowTooLarge, h.window)
	}
	h.blockMax = int(min(h.window, maxBlockSize))
	return h, nil
}

// blockHeader is a parsed 3-byte Block_Header.
type blockHeader struct {
	last bool
	typ  int
	size int // Block_Size field
	clen int // bytes of Block_Content that follow the header
}

func parseBlockHeader(b []byte) blockHeader {
	v := le24(b)
	h := blockHeader{last: v&1 != 0, typ: int(v>>1) & 3, size: int(v >> 3)}
	h.clen = h.size
	if h.typ == blockRLE {
		h.clen = 1
	}
	return h
}

// check reports why a block header cannot be right for a frame whose
// Block_Maximum_Size is blockMax, or "" if it can. It does not allocate:
// a resync scan checks a header at every input offset.
func (h blockHeader) check(blockMax int) string {
	switch {
	case h.typ == blockReserved:
		return "reserved block type"
	case h.size > blockMax:
		return "block size exceeds the frame's Block_Maximum_Size"
	}
	return ""
}

// litHeader is a parsed Literals_Section_Header.
type litHeader struct {
	typ     int // 0 raw, 1 RLE, 2 compressed, 3 treeless
	hsize   int // header bytes
	regen   int // Regenerated_Size
	csize   int // Compressed_Size (types 2, 3), bytes after the header
	streams int // 1 or 4
}

const (
	litRaw        = 0
	litRLE        = 1
	litCompressed = 2
	litTreeless   = 3
)

var errShort = errors.New("zstd: input too short")

// parseLitHeader parses the literals section header at the start of b.
func parseLitHeader(b []byte) (litHeader, error) {
	var h litHeader
	if len(b) < 1 {
		return h, errShort
	}
	h.typ = int(b[0] & 3)
	sf := int(b[0]>>2) & 3
	if h.typ <= litRLE {
		switch sf {
		case 0, 2:
			h.hsize, h.regen = 1, int(b[0]>>3)
		case 1:
			if len(b) < 2 {
				return h, errShort
			}
			h.hsize, h.regen = 2, int(b[0]>>4)|int(b[1])<<4
		case 3:
			if len(b) < 3 {
				return h, errShort
			}
			h.hsize, h.regen = 3, int(b[0]>>4)|int(b[1])<<4|int(b[2])<<12
		}
		if h.typ == litRaw {
			h.csize = h.regen
		} else {
			h.csize = 1
		}
		return h, nil
	}
	var bits uint
	switch sf {
	case 0:
		h.hsize, bits, h.streams = 3, 10, 1
	case 1:
		h.hsize, bits, h.streams = 3, 10, 4
	case 2:
		h.hsize, bits, h.streams = 4, 14, 4
	case 3:
		h.hsize, bits, h.streams = 5, 18, 4
	}
	if len(b) < h.hsize {
		return h, errShort
	}
	var v uint64
	for i := h.hsize - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	mask := uint64(1)<<bits - 1
	h.regen = int(v>>4) & int(mask)
	h.csize = int(v>>(4+bits)) & int(mask)
	return h, nil
}

package lzo

import (
	"encoding/binary"
	"errors"
	"hash/adler32"
	"hash/crc32"
)

// The lzop file format (lzop 1.04, as vzdump writes it through `lzop`):
//
//	magic        89 4c 5a 4f 00 0d 0a 1a 0a
//	header       version u16, lib version u16, [version needed u16],
//	             method u8, [level u8], flags u32, [filter u32], mode u32,
//	             mtime low u32, [mtime high u32], name length u8, name,
//	             checksum u32 of the header fields (Adler-32, or CRC-32
//	             with flagHeaderCRC32); [..] present from version 0x0940
//	[extra]      length u32, data, checksum u32 (flagExtraField)
//	blocks       uncompressed length u32 (0 ends the file), compressed
//	             length u32, checksums of the uncompressed data (Adler-32
//	             then CRC-32, as the flags say), checksums of the compressed
//	             data (only when it is shorter: equal lengths mean a stored
//	             block), then the data.
//
// All integers are big-endian. vzdump runs `lzop` on a pipe: its files have
// flags 0x0300000d (Unix, stdin, stdout, Adler-32 of each block's output):
// no checksum of the compressed data.
var magic = [9]byte{0x89, 'L', 'Z', 'O', 0, '\r', '\n', 0x1a, '\n'}

// Header flags.
const (
	flagAdler32D     = 0x0001
	flagAdler32C     = 0x0002
	flagExtraField   = 0x0040
	flagCRC32D       = 0x0100
	flagCRC32C       = 0x0200
	flagMultipart    = 0x0400
	flagFilter       = 0x0800
	flagHeaderCRC32  = 0x1000
	flagReservedMask = 0x000fc000 // must be zero
)

// Methods; all three decode with the LZO1X decompressor.
const (
	methodLZO1X1   = 1
	methodLZO1X115 = 2
	methodLZO1X999 = 3
)

const (
	// MaxBlockSize is the largest uncompressed block lzop accepts.
	MaxBlockSize = 64 << 20
	// blockSize is the size lzop writes every block but the last in.
	blockSize = 256 << 10
	// maxExtraField bounds the optional extra header field (lzop itself
	// never writes one).
	maxExtraField = 64 << 10
	// maxBlockHeader is the longest block header: two lengths and four
	// checksums.
	maxBlockHeader = 24
	// minBlockBytes is the shortest a block header can be.
	minBlockBytes = 4 + 4
)

var (
	errShortHeader = errors.New("header ends early")
	errNotLzop     = errors.New("no lzop magic")
	errVersion     = errors.New("unsupported lzop version")
	errMethod      = errors.New("unsupported compression method")
	errFilterFlag  = errors.New("lzop filters are not supported")
	errFlags       = errors.New("reserved flag bits set")
)

// fileHeader is what the reader needs from an lzop header.
type fileHeader struct {
	len         int // bytes from the magic to the first block
	version     uint16
	method      byte
	flags       uint32
	checksumBad bool
}

// parseFileHeader parses the lzop header at the start of b.
func parseFileHeader(b []byte) (fileHeader, error) {
	var h fileHeader
	if len(b) < len(magic) {
		if string(b) != string(magic[:len(b)]) {
			return h, errNotLzop
		}
		return h, errShortHeader
	}
	if [9]byte(b[:9]) != magic {
		return h, errNotLzop
	}
	p := len(magic)
	need := func(n int) bool { return len(b) >= p+n }
	if !need(5) {
		return h, errShortHeader
	}
	h.version = binary.BigEndian.Uint16(b[p:])
	p += 4 // version, library version
	if h.version < 0x0900 {
		return h, errVersion
	}
	if h.version >= 0x0940 {
		p += 2 // version needed to extract
	}
	if !need(2) {
		return h, errShortHeader
	}
	h.method = b[p]
	p++
	if h.version >= 0x0940 {
		p++ // level
	}
	if !need(4) {
		return h, errShortHeader
	}
	h.flags = binary.BigEndian.Uint32(b[p:])
	p += 4
	if h.flags&flagFilter != 0 {
		p += 4
	}
	p += 8 // mode, mtime low
	if h.version >= 0x0940 {
		p += 4 // mtime high
	}
	if !need(1) {
		return h, errShortHeader
	}
	p += 1 + int(b[p]) // name
	if !need(4) {
		return h, errShortHeader
	}
	want := binary.BigEndian.Uint32(b[p:])
	if h.flags&flagHeaderCRC32 != 0 {
		h.checksumBad = crc32.ChecksumIEEE(b[len(magic):p]) != want
	} else {
		h.checksumBad = adler32.Checksum(b[len(magic):p]) != want
	}
	p += 4
	if h.flags&flagExtraField != 0 {
		if !need(4) {
			return h, errShortHeader
		}
		n := binary.BigEndian.Uint32(b[p:])
		if n > maxExtraField {
			return h, errors.New("extra header field too long")
		}
		p += 4 + int(n) + 4
		if !need(0) {
			return h, errShortHeader
		}
	}
	h.len = p
	// Judge the fields only once the checksum has had its say.
	switch {
	case h.method < methodLZO1X1 || h.method > methodLZO1X999:
		return h, errMethod
	case h.flags&flagFilter != 0:
		return h, errFilterFlag
	case h.flags&flagReservedMask != 0:
		return h, errFlags
	}
	return h, nil
}

// maxFileHeader is the longest header parseFileHeader can accept.
const maxFileHeader = 9 + 2 + 2 + 2 + 1 + 1 + 4 + 4 + 4 + 4 + 4 + 1 + 255 + 4 + 4 + maxExtraField + 4

// blockHeader is one block's header.
type blockHeader struct {
	len            int // header bytes, lengths and checksums
	dstLen, srcLen int
	adlerD, crcD   uint32
	adlerC, crcC   uint32
}

// layout says which checksums a file's blocks carry.
type layout struct{ adlerD, crcD, adlerC, crcC bool }

func layoutOf(flags uint32) layout {
	return layout{flags&flagAdler32D != 0, flags&flagCRC32D != 0, flags&flagAdler32C != 0, flags&flagCRC32C != 0}
}

// parseBlockHeader parses a block header at the start of b. It returns ok
// false when b is too short; a zero dstLen is the end-of-file marker.
func (l layout) parseBlockHeader(b []byte) (h blockHeader, ok bool) {
	if len(b) < 4 {
		return h, false
	}
	h.dstLen = int(binary.BigEndian.Uint32(b))
	h.len = 4
	if h.dstLen == 0 {
		return h, true
	}
	if len(b) < 8 {
		return h, false
	}
	h.srcLen = int(binary.BigEndian.Uint32(b[4:]))
	p := 8
	next := func(on bool, v *uint32) bool {
		if !on {
			return true
		}
		if len(b) < p+4 {
			return false
		}
		*v = binary.BigEndian.Uint32(b[p:])
		p += 4
		return true
	}
	if !next(l.adlerD, &h.adlerD) || !next(l.crcD, &h.crcD) {
		return h, false
	}
	if h.srcLen < h.dstLen {
		if !next(l.adlerC, &h.adlerC) || !next(l.crcC, &h.crcC) {
			return h, false
		}
	}
	h.len = p
	return h, true
}

// compressedHeaderLen is the header length of a compressed (not stored)
// block.
func (l layout) compressedHeaderLen() int {
	n := 8
	for _, on := range []bool{l.adlerD, l.crcD, l.adlerC, l.crcC} {
		if on {
			n += 4
		}
	}
	return n
}

// hasDataSum reports whether blocks carry a checksum of their output.
func (l layout) hasDataSum() bool { return l.adlerD || l.crcD }

// verifyData checks a block's output against its header.
func (l layout) verifyData(h *blockHeader, out []byte) bool {
	if l.adlerD && adler32.Checksum(out) != h.adlerD {
		return false
	}
	if l.crcD && crc32.ChecksumIEEE(out) != h.crcD {
		return false
	}
	return true
}

// verifyCompressed checks a compressed block's input; true when there is
// nothing to check.
func (l layout) verifyCompressed(h *blockHeader, src []byte) bool {
	if h.srcLen >= h.dstLen {
		return true
	}
	if l.adlerC && adler32.Checksum(src) != h.adlerC {
		return false
	}
	if l.crcC && crc32.ChecksumIEEE(src) != h.crcC {
		return false
	}
	return true
}

package gzip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Member header layout (RFC 1952, section 2.3).
const (
	id1, id2  = 0x1f, 0x8b
	cmDeflate = 8

	flagText     = 1 << 0
	flagHCRC     = 1 << 1
	flagExtra    = 1 << 2
	flagName     = 1 << 3
	flagComment  = 1 << 4
	flagReserved = 0xe0

	fixedHeaderLen = 10
	trailerLen     = 8

	// maxString bounds FNAME and FCOMMENT: gzip stores a file name, pigz a
	// name and a comment; anything longer is damage, not a name.
	maxString = 4096
	// maxHeaderLen is the longest header parseHeader accepts.
	maxHeaderLen = fixedHeaderLen + 2 + 0xffff + 2*(maxString+1) + 2
)

var (
	errShortHeader = errors.New("header ends early")
	errNotGzip     = errors.New("no gzip magic")
	errMethod      = errors.New("compression method is not deflate")
	errFlags       = errors.New("reserved flag bits set")
	errLongString  = errors.New("file name or comment too long")
)

// header is what vzsalvage needs from a member header.
type header struct {
	len     int  // bytes from ID1 to the first deflate byte
	hcrcBad bool // FHCRC present and wrong
}

// parseHeader parses the member header at the start of b. It returns
// errShortHeader when b ends inside the header.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < fixedHeaderLen {
		if len(b) >= 1 && b[0] != id1 || len(b) >= 2 && b[1] != id2 {
			return h, errNotGzip
		}
		return h, errShortHeader
	}
	if b[0] != id1 || b[1] != id2 {
		return h, errNotGzip
	}
	if b[2] != cmDeflate {
		return h, errMethod
	}
	flg := b[3]
	if flg&flagReserved != 0 {
		return h, errFlags
	}
	p := fixedHeaderLen
	if flg&flagExtra != 0 {
		if len(b) < p+2 {
			return h, errShortHeader
		}
		p += 2 + int(binary.LittleEndian.Uint16(b[p:]))
		if len(b) < p {
			return h, errShortHeader
		}
	}
	for _, f := range []byte{flagName, flagComment} {
		if flg&f == 0 {
			continue
		}
		end := p + maxString + 1
		n := bytes.IndexByte(b[p:min(len(b), end)], 0)
		if n < 0 {
			if len(b) >= end {
				return h, errLongString
			}
			return h, errShortHeader
		}
		p += n + 1
	}
	if flg&flagHCRC != 0 {
		if len(b) < p+2 {
			return h, errShortHeader
		}
		want := binary.LittleEndian.Uint16(b[p:])
		h.hcrcBad = uint16(crc32.ChecksumIEEE(b[:p])) != want
		p += 2
	}
	h.len = p
	return h, nil
}

// plausibleStart reports whether b (at least 10 bytes) looks like the start
// of a member header as gzip, pigz and zlib write them: the test applied
// while scanning damaged input for the next member.
func plausibleStart(b []byte) bool {
	if len(b) < fixedHeaderLen || b[0] != id1 || b[1] != id2 || b[2] != cmDeflate || b[3]&flagReserved != 0 {
		return false
	}
	xfl, os := b[8], b[9]
	return (xfl == 0 || xfl == 2 || xfl == 4) && (os <= 13 || os == 255)
}

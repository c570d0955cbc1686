package lzo

import (
	"encoding/binary"
	"errors"
)

// Errors of the LZO1X block decoder.
var (
	ErrInputOverrun     = errors.New("lzo1x: compressed data ends early")
	ErrOutputOverrun    = errors.New("lzo1x: output larger than the room given")
	ErrLookbehind       = errors.New("lzo1x: match reaches before the start of the output")
	ErrInputNotConsumed = errors.New("lzo1x: data after the end-of-stream marker")
)

// Decompress1X decodes one LZO1X block (as written by lzo1x_1_compress,
// lzo1x_1_15 and lzo1x_999, and by lzop) and appends the result to dst. The
// output must fit in cap(dst): the caller knows how large a block may be,
// and Decompress1X never allocates. Matches may reach back only into the
// bytes this call produced. src must end exactly with the end-of-stream
// marker.
func Decompress1X(dst, src []byte) ([]byte, error) {
	out, used, err := decompress1X(dst, src)
	if err == nil && used < len(src) {
		err = ErrInputNotConsumed
	}
	return out, err
}

// decompress1X is Decompress1X that stops at the end-of-stream marker and
// also returns how many bytes of src it used: a damaged length field in an
// lzop block header leaves the block itself decodable.
//
// The format is described in the Linux kernel's
// Documentation/staging/lzo.rst. Every length and distance is checked
// against the input and the output before it is used.
func decompress1X(dst, src []byte) (out []byte, used int, err error) {
	start := len(dst)
	buf := dst[:cap(dst)]
	op := start
	ip := 0
	n := len(src)
	if n == 0 {
		return dst, 0, ErrInputOverrun
	}

	// state is the number of literals the previous instruction copied
	// (0..3), or 4 after a run of 4 or more: it changes the meaning of
	// instructions 0..15.
	state := 0
	if src[0] > 17 {
		t := int(src[0]) - 17
		ip = 1
		if t > n-ip {
			return buf[:op], ip, ErrInputOverrun
		}
		if t > len(buf)-op {
			return buf[:op], ip, ErrOutputOverrun
		}
		op += copy(buf[op:op+t], src[ip:ip+t])
		ip += t
		state = min(t, 4)
	}

	for {
		if ip >= n {
			return buf[:op], ip, ErrInputOverrun
		}
		inst := int(src[ip])
		ip++
		var length, dist int
		switch {
		case inst >= 64:
			// 1LLDDDSS or 01LDDDSS: copy 5..8 or 3..4 bytes within 2 KiB;
			// distance high bits in the next byte.
			if ip >= n {
				return buf[:op], ip, ErrInputOverrun
			}
			length = inst>>5 + 1
			dist = int(src[ip])<<3 + inst>>2&7 + 1
			ip++
			state = inst & 3
		case inst >= 32:
			// 001LLLLL: copy within 16 KiB, LE16 distance and state.
			length = inst & 31
			if length == 0 {
				if length, ip, err = longLength(src, ip, 31); err != nil {
					return buf[:op], ip, err
				}
			}
			length += 2
			if ip+2 > n {
				return buf[:op], ip, ErrInputOverrun
			}
			v := int(binary.LittleEndian.Uint16(src[ip:]))
			ip += 2
			dist = v>>2 + 1
			state = v & 3
		case inst >= 16:
			// 0001HLLL: copy within 16..48 KiB, or the end of the stream.
			length = inst & 7
			if length == 0 {
				if length, ip, err = longLength(src, ip, 7); err != nil {
					return buf[:op], ip, err
				}
			}
			length += 2
			if ip+2 > n {
				return buf[:op], ip, ErrInputOverrun
			}
			v := int(binary.LittleEndian.Uint16(src[ip:]))
			ip += 2
			dist = (inst&8)<<11 + v>>2
			if dist == 0 {
				return buf[:op], ip, nil // end-of-stream marker
			}
			dist += 16384
			state = v & 3
		case state == 0:
			// 0000LLLL after no literals: a run of 4 or more literals.
			length = inst
			if length == 0 {
				if length, ip, err = longLength(src, ip, 15); err != nil {
					return buf[:op], ip, err
				}
			}
			length += 3
			if length > n-ip {
				return buf[:op], ip, ErrInputOverrun
			}
			if length > len(buf)-op {
				return buf[:op], ip, ErrOutputOverrun
			}
			op += copy(buf[op:op+length], src[ip:ip+length])
			ip += length
			state = 4
			continue
		default:
			// 0000DDSS after literals: copy 2 bytes within 1 KiB (after
			// 1..3 literals) or 3 bytes at 2..3 KiB (after a run).
			if ip >= n {
				return buf[:op], ip, ErrInputOverrun
			}
			dist = inst>>2 + int(src[ip])<<2 + 1
			length = 2
			if state == 4 {
				dist += 2048
				length = 3
			}
			ip++
			state = inst & 3
		}

		// The match.
		if dist > op-start {
			return buf[:op], ip, ErrLookbehind
		}
		if length > len(buf)-op {
			return buf[:op], ip, ErrOutputOverrun
		}
		from := op - dist
		switch {
		case dist >= 8 && length <= 32 && op+40 <= len(buf):
			// Short and far enough back: eight bytes at a time, each
			// chunk read before it is overwritten; what is written past
			// the match lies inside buf and is overwritten next.
			for i := 0; i < length; i += 8 {
				binary.LittleEndian.PutUint64(buf[op+i:], binary.LittleEndian.Uint64(buf[from+i:]))
			}
			op += length
		case dist >= length:
			op += copy(buf[op:op+length], buf[from:from+length])
		default:
			// Overlapping: the copied pattern repeats every dist bytes, so
			// each copy may take everything written since from.
			end := op + length
			for op < end {
				op += copy(buf[op:end], buf[from:op])
			}
		}

		// Then 0..3 literals.
		if state > 0 {
			if state > n-ip {
				return buf[:op], ip, ErrInputOverrun
			}
			if state > len(buf)-op {
				return buf[:op], ip, ErrOutputOverrun
			}
			if ip+4 <= n && op+4 <= len(buf) {
				binary.LittleEndian.PutUint32(buf[op:], binary.LittleEndian.Uint32(src[ip:]))
			} else {
				copy(buf[op:op+state], src[ip:ip+state])
			}
			op += state
			ip += state
		}
	}
}

// longLength reads an extended length: zero bytes adding 255 each, then a
// non-zero byte added to base.
func longLength(src []byte, ip, base int) (int, int, error) {
	z := ip
	for ip < len(src) && src[ip] == 0 {
		ip++
	}
	if ip >= len(src) {
		return 0, ip, ErrInputOverrun
	}
	l := (ip-z)*255 + base + int(src[ip])
	return l, ip + 1, nil
}

package btrfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash/crc32"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/crypto/blake2b"
)

// csum is one of btrfs's checksum algorithms (superblock csum_type).
type csum struct {
	typ  uint16
	size int
	name string
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newCsum(typ uint16) (csum, error) {
	switch typ {
	case 0:
		return csum{typ, 4, "crc32c"}, nil
	case 1:
		return csum{typ, 8, "xxhash64"}, nil
	case 2:
		return csum{typ, 32, "sha256"}, nil
	case 3:
		return csum{typ, 32, "blake2b"}, nil
	}
	return csum{}, fmt.Errorf("unknown checksum type %d", typ)
}

// sum appends the checksum of b to dst.
func (c csum) sum(dst, b []byte) []byte {
	switch c.typ {
	case 0:
		return le.AppendUint32(dst, crc32.Checksum(b, castagnoli))
	case 1:
		return le.AppendUint64(dst, xxhash.Sum64(b))
	case 2:
		s := sha256.Sum256(b)
		return append(dst, s[:]...)
	default:
		s := blake2b.Sum256(b)
		return append(dst, s[:]...)
	}
}

// verify checks a superblock or tree block: the checksum in its first
// bytes covers everything after the 32-byte checksum field.
func (c csum) verify(b []byte) bool {
	var buf [32]byte
	return bytes.Equal(c.sum(buf[:0], b[32:]), b[:c.size])
}

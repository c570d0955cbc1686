package vma

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
)

// ExtentHeader is the 512-byte header of an extent.
type ExtentHeader struct {
	// BlockCount is the number of 4 KiB blocks after the header.
	BlockCount int
	UUID       [16]byte
	// Entries holds the non-empty slots, in slot order.
	Entries []BlockInfo
}

// DataSize returns the number of data bytes after the header.
func (e *ExtentHeader) DataSize() int64 { return int64(e.BlockCount) * BlockSize }

// extentMD5 returns the MD5 of an extent header with its checksum field zeroed.
func extentMD5(b []byte) [16]byte {
	var tmp [ExtentHeaderSize]byte
	copy(tmp[:], b[:ExtentHeaderSize])
	clear(tmp[extOffMD5 : extOffMD5+16])
	return md5.Sum(tmp[:])
}

// ParseExtentHeader parses and checks a 512-byte extent header against the
// archive's uuid, in the order Proxmox's reader checks: checksum, uuid,
// magic, then the consistency of the entries with the block count. The
// entries are returned as they are; checking them against the devices is
// the caller's work.
func ParseExtentHeader(b []byte, uuid [16]byte) (*ExtentHeader, error) {
	if len(b) < ExtentHeaderSize {
		return nil, fmt.Errorf("read short extent (%d bytes)", len(b))
	}
	b = b[:ExtentHeaderSize]
	if sum := extentMD5(b); !bytes.Equal(sum[:], b[extOffMD5:extOffMD5+16]) {
		return nil, ErrExtentChecksum
	}
	if !bytes.Equal(b[extOffUUID:extOffUUID+16], uuid[:]) {
		return nil, ErrExtentUUID
	}
	return parseExtentBody(b)
}

// parseExtentBody checks magic and block count of a header whose checksum
// and uuid are already known to be right.
func parseExtentBody(b []byte) (*ExtentHeader, error) {
	if string(b[:4]) != extentMagic || b[4] != 0 || b[5] != 0 {
		return nil, ErrExtentMagic
	}
	e := &ExtentHeader{BlockCount: int(binary.BigEndian.Uint16(b[extOffBlockCount:]))}
	copy(e.UUID[:], b[extOffUUID:])
	blocks := 0
	for i := 0; i < EntriesPerExtent; i++ {
		bi := BlockInfo(binary.BigEndian.Uint64(b[extOffInfo+8*i:]))
		if bi.Dev() == 0 {
			continue
		}
		e.Entries = append(e.Entries, bi)
		blocks += bi.Blocks()
	}
	if blocks != e.BlockCount {
		return nil, fmt.Errorf("%w (%d blocks listed, block count %d)", ErrExtentBlocks, blocks, e.BlockCount)
	}
	return e, nil
}

// IsExtentHeader reports whether b starts with a valid extent header of the
// archive with the given uuid: magic, uuid and checksum all right. It is the
// resynchronisation marker of a damaged stream.
func IsExtentHeader(b []byte, uuid [16]byte) bool {
	if len(b) < ExtentHeaderSize || string(b[:4]) != extentMagic ||
		!bytes.Equal(b[extOffUUID:extOffUUID+16], uuid[:]) {
		return false
	}
	sum := extentMD5(b)
	return bytes.Equal(sum[:], b[extOffMD5:extOffMD5+16])
}

// MarshalExtentHeader writes a 512-byte extent header for the given entries
// (at most EntriesPerExtent) into b.
func MarshalExtentHeader(b []byte, uuid [16]byte, entries []BlockInfo) error {
	if len(entries) > EntriesPerExtent {
		return fmt.Errorf("vma: %d entries in one extent", len(entries))
	}
	if len(b) < ExtentHeaderSize {
		return fmt.Errorf("vma: extent header buffer too small")
	}
	b = b[:ExtentHeaderSize]
	clear(b)
	copy(b, extentMagic)
	blocks := 0
	for i, e := range entries {
		binary.BigEndian.PutUint64(b[extOffInfo+8*i:], uint64(e))
		blocks += e.Blocks()
	}
	binary.BigEndian.PutUint16(b[extOffBlockCount:], uint16(blocks))
	copy(b[extOffUUID:], uuid[:])
	sum := extentMD5(b)
	copy(b[extOffMD5:], sum[:])
	return nil
}

// Package qcow2 reads qcow2 disk images (versions 2 and 3), as QEMU's
// docs/interop/qcow2.txt describes them: L1 and L2 tables, zero clusters,
// compressed clusters (deflate or zstd) and extended L2 entries
// (subclusters). Images with a backing file, an external data file or
// encryption are refused with a clear error; internal snapshots are
// ignored (the active L1 table is read).
//
// Every size read from the image is bounded before it sizes an allocation:
// the L1 table (at most 32 MiB, QEMU's own limit), the cluster size (at most
// 2 MiB) and the L2 cache. Refcount tables are never read. A damaged table
// entry (an L2 table or cluster outside the file, a misaligned offset, a
// compressed cluster that does not decompress) makes ReadAt fail for that
// range only, with an error wrapping ErrCorrupt; it never panics.
package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by Open and ReadAt.
var (
	ErrNotQcow2    = errors.New("qcow2: not a qcow2 image")
	ErrBackingFile = errors.New("qcow2: image has a backing file (not supported: convert it with qemu-img first)")
	ErrEncrypted   = errors.New("qcow2: image is encrypted (not supported)")
	ErrUnsupported = errors.New("qcow2: unsupported feature")
	ErrCorrupt     = errors.New("qcow2: corrupt image")
)

const (
	magic = "QFI\xfb"

	minClusterBits = 9
	maxClusterBits = 21 // QEMU's limit: 2 MiB clusters
	minExtL2Bits   = 14

	// maxL1Bytes is QEMU's limit on the active L1 table.
	maxL1Bytes = 32 << 20
	// maxBackingName is the longest backing file name the format allows.
	maxBackingName = 1023

	v2HeaderLen = 72
	v3HeaderLen = 104
)

// Incompatible feature bits (version 3).
const (
	IncompatDirty        = 1 << 0
	IncompatCorrupt      = 1 << 1
	IncompatExternalData = 1 << 2
	IncompatCompression  = 1 << 3
	IncompatExtendedL2   = 1 << 4
	knownIncompat        = IncompatDirty | IncompatCorrupt | IncompatExternalData | IncompatCompression | IncompatExtendedL2
)

// Compression types of compressed clusters.
const (
	CompressionDeflate = 0
	CompressionZstd    = 1
)

// Table entry bits.
const (
	entryCopied     = 1 << 63
	entryCompressed = 1 << 62
	entryZero       = 1 << 0
	offsetMask      = 0x00fffffffffffe00 // bits 9-55
)

// Header is the decoded image header.
type Header struct {
	Version              uint32
	BackingFileOffset    uint64
	BackingFileSize      uint32
	ClusterBits          uint32
	Size                 uint64 // virtual disk size in bytes
	CryptMethod          uint32
	L1Size               uint32
	L1TableOffset        uint64
	RefcountOffset       uint64
	RefcountClusters     uint32
	NbSnapshots          uint32
	SnapshotsOffset      uint64
	Incompatible         uint64
	Compatible           uint64
	Autoclear            uint64
	RefcountOrder        uint32
	HeaderLength         uint32
	CompressionType      uint8
	ExtendedL2           bool
	Dirty, MarkedCorrupt bool
}

// parseHeader decodes and checks the header in b (at least 104 bytes, or
// the whole file if shorter).
func parseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < v2HeaderLen || string(b[:4]) != magic {
		return h, ErrNotQcow2
	}
	be := binary.BigEndian
	h.Version = be.Uint32(b[4:])
	h.BackingFileOffset = be.Uint64(b[8:])
	h.BackingFileSize = be.Uint32(b[16:])
	h.ClusterBits = be.Uint32(b[20:])
	h.Size = be.Uint64(b[24:])
	h.CryptMethod = be.Uint32(b[32:])
	h.L1Size = be.Uint32(b[36:])
	h.L1TableOffset = be.Uint64(b[40:])
	h.RefcountOffset = be.Uint64(b[48:])
	h.RefcountClusters = be.Uint32(b[56:])
	h.NbSnapshots = be.Uint32(b[60:])
	h.SnapshotsOffset = be.Uint64(b[64:])
	switch h.Version {
	case 2:
		h.RefcountOrder, h.HeaderLength = 4, v2HeaderLen
	case 3:
		if len(b) < v3HeaderLen {
			return h, fmt.Errorf("%w: version 3 header truncated", ErrCorrupt)
		}
		h.Incompatible = be.Uint64(b[72:])
		h.Compatible = be.Uint64(b[80:])
		h.Autoclear = be.Uint64(b[88:])
		h.RefcountOrder = be.Uint32(b[96:])
		h.HeaderLength = be.Uint32(b[100:])
		if h.HeaderLength < v3HeaderLen {
			return h, fmt.Errorf("%w: header length %d", ErrCorrupt, h.HeaderLength)
		}
		if h.HeaderLength > v3HeaderLen && len(b) > v3HeaderLen {
			h.CompressionType = b[104]
		}
	default:
		return h, fmt.Errorf("%w: version %d", ErrUnsupported, h.Version)
	}
	if h.ClusterBits < minClusterBits || h.ClusterBits > maxClusterBits {
		return h, fmt.Errorf("%w: cluster_bits %d", ErrUnsupported, h.ClusterBits)
	}
	if h.CryptMethod != 0 {
		return h, ErrEncrypted
	}
	if h.Incompatible&^knownIncompat != 0 {
		return h, fmt.Errorf("%w: incompatible feature bits %#x", ErrUnsupported, h.Incompatible&^knownIncompat)
	}
	if h.Incompatible&IncompatExternalData != 0 {
		return h, fmt.Errorf("%w: external data file", ErrUnsupported)
	}
	h.Dirty = h.Incompatible&IncompatDirty != 0
	h.MarkedCorrupt = h.Incompatible&IncompatCorrupt != 0
	h.ExtendedL2 = h.Incompatible&IncompatExtendedL2 != 0
	if h.ExtendedL2 && h.ClusterBits < minExtL2Bits {
		return h, fmt.Errorf("%w: extended L2 entries with cluster_bits %d", ErrCorrupt, h.ClusterBits)
	}
	if h.Incompatible&IncompatCompression == 0 {
		h.CompressionType = CompressionDeflate
	}
	if h.CompressionType != CompressionDeflate && h.CompressionType != CompressionZstd {
		return h, fmt.Errorf("%w: compression type %d", ErrUnsupported, h.CompressionType)
	}
	if uint64(h.L1Size)*8 > maxL1Bytes {
		return h, fmt.Errorf("%w: L1 table of %d entries", ErrCorrupt, h.L1Size)
	}
	if h.Size > 1<<62 {
		return h, fmt.Errorf("%w: virtual size %d", ErrCorrupt, h.Size)
	}
	return h, nil
}

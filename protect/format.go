// Package protect keeps backups restorable: it verifies a new backup end to
// end and writes its sidecar (ARCHIVE.vzsalvage), a small record that later
// locates any damage to the archive (even damage no checksum of the archive
// itself can see) and repairs it from Reed-Solomon parity; it re-checks
// stored backups against their sidecars (scrub) and says so by mail or
// webhook (package protect/alert).
//
// The sidecar format is documented in docs/sidecar.md. In short: a
// preamble, records (each with its own checksum), an index record and a
// footer that points at the index. The records are the header (JSON), the
// hash of every cluster of every device (pages of 4096 clusters, zero
// clusters as bits), the hash of every 4 KiB chunk of the archive file, and
// the parity, per segment of the file.
package protect

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Version is the sidecar format version this package writes; it reads
// versions 1 and 2 (docs/sidecar.md, Versioning). Version 2 pins the archive
// by the SHA-256 of its chunk hashes (ArchiveInfo.ChunksSHA256) instead of
// the SHA-256 of its bytes (ArchiveInfo.SHA256): protect then reads the
// archive's bytes once per hash fewer (a sixth of its CPU time).
const Version = 2

// minVersion is the oldest format version this package reads.
const minVersion = 1

// Layout constants of the file (docs/sidecar.md).
const (
	magic        = "VZSALVSC"
	footerMagic  = "VZSCEND\x00"
	preambleSize = 16
	recHeadSize  = 24 // type u32, reserved u32, key u64, payload length u64
	recSumSize   = 8  // xxh64 of head and payload
	footerSize   = 32 // magic, index offset u64, index record size u64, xxh64
	indexEntry   = 32 // type u32, reserved u32, key u64, offset u64, size u64
)

// Record types.
const (
	recHeader  = 1 // JSON Header, key 0
	recCluster = 2 // a page of cluster hashes, key dev<<32 | page
	recChunks  = 3 // chunk hashes of a segment, key segment
	recParity  = 4 // parity of a segment, key segment
	recIndex   = 5 // the index, key 0
	recMembers = 6 // a page of a container's member hashes, key page
)

// Member hash pages: a container backup's members, 4096 to a record, each
// as the xxh64 of its header blocks and of its content (ctar.MemberHash).
const (
	pageMembers = 4096
	memberEntry = 16
	// maxMembers bounds the members a sidecar may announce (as the tar
	// reader bounds an archive's).
	maxMembers = 50_000_000
)

// Cluster hash pages.
const (
	pageClusters = 4096
	pageAllZero  = 0 // kind byte: every cluster of the page is zero
	pageAllData  = 1 // kind byte: a hash for every cluster
	pageBitmap   = 2 // kind byte: a bitmap of non-zero clusters, then their hashes
)

// maxRecord bounds any record read from a sidecar.
const maxRecord = 1 << 30

// Errors.
var (
	// ErrNoSidecar is returned when an archive has no sidecar.
	ErrNoSidecar = errors.New("no sidecar")
	// ErrFormat wraps every problem found in a sidecar's structure.
	ErrFormat = errors.New("not a usable vzsalvage sidecar")
)

// Header is the sidecar's header record (JSON).
type Header struct {
	Format  string      `json:"format"` // "vzsalvage-sidecar"
	Version int         `json:"version"`
	Created string      `json:"created"` // RFC 3339
	Tool    string      `json:"tool"`
	Archive ArchiveInfo `json:"archive"`
	VMA     VMAInfo     `json:"vma"`
	// Tar is set for a container backup (whose VMA is then empty).
	Tar      *TarInfo     `json:"tar,omitempty"`
	Clusters ClusterInfo  `json:"clusters"`
	Chunks   ChunkInfo    `json:"chunks"`
	Parity   Parity       `json:"parity"`
	Verify   VerifyResult `json:"verify"`
}

// ArchiveInfo identifies the archive file the sidecar protects.
type ArchiveInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// SHA256 is the hex SHA-256 of the archive's bytes (version 1 only).
	SHA256 string `json:"sha256,omitempty"`
	// ChunksSHA256 is the hex SHA-256 of the chunk hashes of the whole
	// file in order, 8 bytes (little-endian) each: the concatenation of the
	// chunk-hash records' payloads in segment order (version 2 only).
	ChunksSHA256 string `json:"chunks_sha256,omitempty"`
	Compression  string `json:"compression"`
	MTime        int64  `json:"mtime"`
}

// Pin names the digest that pins the archive, for messages and identities:
// "sha256:HEX" (version 1) or "chunks-sha256:HEX" (version 2).
func (a ArchiveInfo) Pin() string {
	if a.SHA256 != "" {
		return "sha256:" + a.SHA256
	}
	return "chunks-sha256:" + a.ChunksSHA256
}

// VMAInfo is what the archive's VMA header said.
type VMAInfo struct {
	UUID    string       `json:"uuid"`
	Ctime   int64        `json:"ctime"`
	Devices []DeviceInfo `json:"devices"`
}

// TarInfo describes the member hashes of a container backup.
type TarInfo struct {
	Members int64  `json:"members"`
	Hash    string `json:"hash"` // "xxh64"
	Page    int    `json:"page"` // members per page record
}

// DeviceInfo is one disk of the archive.
type DeviceInfo struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// ClusterInfo describes the cluster hashes.
type ClusterInfo struct {
	Hash string `json:"hash"` // "xxh64"
	Size int    `json:"size"` // 65536
	Page int    `json:"page"` // clusters per page record
}

// ChunkInfo describes the chunk hashes of the archive file.
type ChunkInfo struct {
	Hash string `json:"hash"` // "xxh64"
	Size int    `json:"size"` // the parity's shard size
}

// VerifyResult is what the verification at protect time found.
type VerifyResult struct {
	Status   string `json:"status"`
	Checksum string `json:"checksum"`
}

// recKey identifies a record.
type recKey struct {
	typ uint32
	key uint64
}

// recLoc is where a record is in the file.
type recLoc struct {
	off, size int64 // size includes head and checksum
}

func clusterKey(dev uint8, page int64) uint64 { return uint64(dev)<<32 | uint64(page) }

// recordSum is the checksum of a record's head and payload.
func recordSum(head, payload []byte) uint64 {
	d := xxhash.New()
	d.Write(head)
	d.Write(payload)
	return d.Sum64()
}

func putRecHead(b []byte, typ uint32, key uint64, n int64) {
	binary.LittleEndian.PutUint32(b[0:], typ)
	binary.LittleEndian.PutUint32(b[4:], 0)
	binary.LittleEndian.PutUint64(b[8:], key)
	binary.LittleEndian.PutUint64(b[16:], uint64(n))
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

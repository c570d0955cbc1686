// Package vma reads and writes Proxmox VE's VMA ("Virtual Machine Archive")
// backup format, the payload of vzdump's .vma, .vma.zst, .vma.gz and
// .vma.lzo files.
//
// A VMA stream is a header (configs and device table) followed by extents:
// a 512-byte extent header listing up to 59 clusters of 64 KiB, then the
// clusters' non-zero 4 KiB blocks. All numbers are big-endian. The format is
// described in Proxmox's vma_spec.txt; this package follows Proxmox's own
// reader and writer (vma-reader.c, vma-writer.c) where the text and the code
// disagree.
//
// Reader reads an archive strictly (every check Proxmox's reader applies,
// plus clusters missing at the end) or, with Options.Salvage, reads past
// damage and accounts for every cluster. Writer writes what Proxmox's writer
// writes.
package vma

import (
	"errors"
	"fmt"
	"math/bits"
)

// Sizes of the format.
const (
	BlockSize        = 4096  // a data block
	ClusterSize      = 65536 // a cluster: 16 blocks
	BlocksPerCluster = ClusterSize / BlockSize

	HeaderFixedSize  = 12288      // the main header before the blob buffer
	MaxHeaderSize    = 512 * 1024 // the writer's cap on the main header
	ExtentHeaderSize = 512

	// EntriesPerExtent is the number of blockinfo slots in an extent header.
	EntriesPerExtent = 59
	// WriterEntries is how many entries Proxmox's writer puts in an extent
	// before flushing it.
	WriterEntries = 58
	// MaxExtentSize is the largest possible extent: a header and 59 full
	// clusters.
	MaxExtentSize = ExtentHeaderSize + EntriesPerExtent*ClusterSize

	MaxConfigs = 256
	MaxDevices = 256 // device ids 1..255; 0 is never used
	// MaxDeviceSize bounds a device's size (4 PiB); larger headers are
	// rejected as invalid.
	MaxDeviceSize = 1 << 52

	maxBlob = 65535
)

const (
	headerMagic = "VMA\x00"
	extentMagic = "VMAE"

	offVersion    = 4
	offUUID       = 8
	offCtime      = 24
	offMD5        = 32
	offBlobOffset = 48
	offBlobSize   = 52
	offHeaderSize = 56
	offConfigName = 2044
	offConfigData = 3068
	offDevInfo    = 4096
	devInfoSize   = 32

	extOffBlockCount = 6
	extOffUUID       = 8
	extOffMD5        = 24
	extOffInfo       = 40
)

// Errors, with the messages Proxmox's reader uses where it has one.
var (
	ErrNotVMA         = errors.New("not a vma file - wrong magic number")
	ErrHeaderSize     = errors.New("wrong vma header size")
	ErrHeaderChecksum = errors.New("wrong vma header chechsum")
	ErrVersion        = errors.New("wrong vma version")
	ErrBlobBuffer     = errors.New("wrong vma blob buffer offset/size")
	ErrDataPointer    = errors.New("vma contains invalid data pointers")
	ErrDevice         = errors.New("vma contains an invalid device entry")

	ErrExtentChecksum = errors.New("wrong vma extent header chechsum")
	ErrExtentUUID     = errors.New("wrong vma extent uuid")
	ErrExtentMagic    = errors.New("wrong vma extent header magic")
	ErrExtentBlocks   = errors.New("vma extent error - missing blocks")
	ErrDevID          = errors.New("got wrong dev id")
	ErrBeyondEnd      = errors.New("got wrong block address - write beyond end")
	ErrDuplicate      = errors.New("found duplicated cluster")
	ErrShortExtent    = errors.New("short vma extent")
	ErrMissing        = errors.New("detected missing cluster")
)

// Config is a file stored in the archive header (qemu-server.conf,
// qemu-server.fw).
type Config struct {
	Name string
	Data []byte
}

// Device is a disk stored in the archive.
type Device struct {
	ID   uint8  // 1..255
	Name string // "drive-scsi0", "drive-efidisk0", ...
	Size int64  // bytes; need not be a multiple of ClusterSize
}

// Clusters returns the number of clusters that cover the device.
func (d Device) Clusters() int64 { return (d.Size + ClusterSize - 1) / ClusterSize }

// BlockInfo is one slot of an extent header: a 16-bit mask of stored
// blocks, a device id and a cluster number. A zero BlockInfo is an empty slot.
type BlockInfo uint64

// MakeBlockInfo builds a BlockInfo.
func MakeBlockInfo(mask uint16, dev uint8, cluster uint32) BlockInfo {
	return BlockInfo(uint64(mask)<<48 | uint64(dev)<<32 | uint64(cluster))
}

// Mask returns the stored-block mask: bit j set = block j of the cluster is stored.
func (b BlockInfo) Mask() uint16 { return uint16(b >> 48) }

// Dev returns the device id (0 = empty slot).
func (b BlockInfo) Dev() uint8 { return uint8(b >> 32) }

// Cluster returns the cluster number within the device.
func (b BlockInfo) Cluster() uint32 { return uint32(b) }

// Blocks returns the number of stored blocks.
func (b BlockInfo) Blocks() int { return bits.OnesCount16(b.Mask()) }

func (b BlockInfo) String() string {
	return fmt.Sprintf("dev %d cluster %d mask %04x", b.Dev(), b.Cluster(), b.Mask())
}

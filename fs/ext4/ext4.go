// Package ext4 reads ext2, ext3 and ext4 filesystems, read-only and
// resiliently: damaged metadata is reported on the object it belongs to and
// reading goes on. It implements fs.FS; a Node is an inode number.
//
// What it reads: superblocks (falling back to backup copies), group
// descriptors (32 and 64 bit, meta_bg, flex_bg; each descriptor from the
// first good copy, else inferred from its neighbours, and group 0's inode
// table found by searching for the root directory when no copy is left),
// extent trees and the old indirect block maps, inline data, linear and
// htree directories (an htree directory is read through its leaf blocks,
// which hold every entry; every mapped block is read, as debugfs does, even
// past a wrong i_size), fast and slow symlinks, hard links, sparse files
// (holes and unwritten extents read as zeros), extended attributes in the
// inode, in an xattr block and in EA inodes, and metadata_csum checksums (a
// mismatch becomes a Problem; reading goes on).
//
// Problems: those of a node's inode, block map and attributes are in
// Stat().Problems; those of a directory's blocks (checksums, invalid
// records skipped) come with ReadDir's error, which accompanies every entry
// that could be read.
//
// The journal (jbd2, internal journal inode, or the superblock's backup of
// its block map) is offered in two views: as on disk (like mount -o
// norecovery) and with committed transactions replayed into an in-memory
// overlay of block locations, honouring revoke records, escaped blocks and
// the v2/v3 checksums. The image is never written and the overlay holds at
// most one entry per journal block. Fast-commit blocks are not replayed.
//
// Extended attributes are returned by their full names. Values are the raw
// bytes, except the POSIX ACLs (system.posix_acl_access and
// system.posix_acl_default), which ext4 stores in a compact form of its own
// and which are converted to the form the Linux xattr interface uses
// (version 2, as getfattr shows and setxattr takes). The internal
// system.data attribute (inline data) and the encryption context are not
// listed.
//
// Names in encrypted directories are ciphertext; where one holds a NUL or
// a '/', those bytes and '%' are written as %XX. Device numbers (Stat.Rdev)
// use the glibc dev_t encoding that stat(2) reports and mknod(2) takes.
//
// Orphans: inodes on the orphan list or in the orphan file (files deleted
// while still open, whose deletion the kernel completes on the next mount)
// are never returned by Orphans. Orphans returns valid, in-use inodes that
// no directory reaches, topmost first: an unreachable directory is returned,
// not its contents. A directory entry that names an orphan-list inode is
// still listed (the kernel never leaves one; a damaged directory might).
//
// Bounds, whatever the disk says: 4M group descriptors, 4M runs and 512K
// tree blocks per block map, 256 MiB and 4M entries per directory, 4 MiB of
// attribute values per inode; loops in extent trees, indirect maps and the
// orphan list are detected.
package ext4

import (
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/ringcache"
)

// JournalMode selects which view of a journalled filesystem to read.
type JournalMode int

const (
	// Auto replays the journal when it needs recovery and replays cleanly,
	// and reads the on-disk view otherwise.
	Auto JournalMode = iota
	// Replay replays every committed transaction it can, even when parts
	// of the journal are damaged.
	Replay
	// OnDisk reads the filesystem as it is on disk (mount -o norecovery).
	OnDisk
)

// Views reported in fs.Info.View.
const (
	ViewOnDisk   = "on-disk"
	ViewReplayed = "replayed"
)

// Options configure Open.
type Options struct {
	Journal JournalMode
	// Damage lists volume byte ranges known to be lost or tainted (may be
	// nil): redundant copies (backup superblock, group descriptors) are
	// preferred over damaged primaries, and objects read from damaged
	// metadata blocks carry a Problem.
	Damage *damage.Map
}

// FS is an open ext2/3/4 filesystem. It implements fs.FS and is safe for
// concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	opt  Options

	sb           *superblock
	bs           int64
	groups       uint64
	gdtBlocks    uint64
	itableBlocks uint64
	inodeSize    int64
	inodesCount  uint32
	metadataCsum bool
	csumSeed     uint32
	gd           []groupDesc

	sbBackup bool     // the superblock in use is a backup copy
	jov      *overlay // replayed journal blocks; nil for the on-disk view
	info     fs.Info

	cache *ringcache.Cache[uint64, []byte] // metadata blocks

	orphanOnce sync.Once
	orphans    []fs.Node
	orphansErr error

	namesOnce sync.Once
	names     map[uint32]named // orphans' names from the journal's log (names.go)
}

var (
	_ fs.FS    = (*FS)(nil)
	_ fs.Namer = (*FS)(nil)
)

// Probe reports whether r looks like an ext2/3/4 filesystem (a superblock
// magic number and a sane geometry at byte 1024).
func Probe(r io.ReaderAt) bool {
	b := make([]byte, sbSize)
	if _, err := r.ReadAt(b, sbOffset); err != nil && err != io.EOF {
		return false
	}
	return parseSuperblock(b).validate() == nil
}

// Open reads the filesystem on r, a volume of size bytes. It fails only
// when no usable superblock is found; everything else damaged is reported in
// Info().Problems and on the objects concerned.
func Open(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	f := &FS{r: r, size: size, opt: opt}
	f.cache = ringcache.New[uint64, []byte](256)
	c, problems, err := f.findSuperblock()
	if err != nil {
		return nil, err
	}
	if err := f.setup(c.sb); err != nil {
		return nil, err
	}
	f.sbBackup = c.group != 0
	problems = append(problems, f.loadGroups()...)
	view, jp := f.openJournal()
	problems = append(problems, jp...)
	if f.jov != nil {
		// The journal may hold newer copies of the superblock and the
		// group descriptors.
		if sb := f.replayedSuperblock(); sb != nil {
			if err := f.setup(sb); err != nil {
				return nil, err
			}
		}
		problems = append(problems, f.loadGroups()...)
		f.cache.Reset()
	}
	if f.sb.incompat&incompatJournalDev != 0 {
		problems = append(problems, "this is an external journal device, not a filesystem")
	}
	f.info = fs.Info{
		Type:      f.sb.fsType(),
		UUID:      fs.FormatUUID(f.sb.uuid),
		Label:     fs.CString(f.sb.volumeName[:]),
		BlockSize: int(f.bs),
		Size:      int64(f.sb.blocksCount) * f.bs,
		View:      view,
		Problems:  problems,
	}
	return f, nil
}

// setup derives the geometry from a validated superblock.
func (f *FS) setup(sb *superblock) error {
	if err := sb.validate(); err != nil {
		return fmt.Errorf("ext4: superblock: %v: %w", err, fs.ErrDamaged)
	}
	bs := sb.blockSize()
	if sb.blocksCount > uint64(1<<62)/uint64(bs) {
		return fmt.Errorf("ext4: block count %d too large: %w", sb.blocksCount, fs.ErrDamaged)
	}
	groups := sb.groupCount()
	ds := uint64(sb.descBytes())
	if groups == 0 || groups > maxGroups || int64(groups*ds) > f.size {
		return fmt.Errorf("ext4: %d block groups is more than the volume can hold: %w", groups, fs.ErrDamaged)
	}
	f.sb = sb
	f.bs = bs
	f.groups = groups
	perBlock := uint64(bs) / ds
	f.gdtBlocks = (groups + perBlock - 1) / perBlock
	f.inodeSize = int64(sb.inodeSize)
	f.itableBlocks = (uint64(sb.inodesPerGroup)*uint64(sb.inodeSize) + uint64(bs) - 1) / uint64(bs)
	f.inodesCount = sb.inodesCount
	if max := groups * uint64(sb.inodesPerGroup); uint64(f.inodesCount) > max {
		f.inodesCount = uint32(min(max, 1<<32-1))
	}
	f.metadataCsum = sb.roCompat&roCompatMetadataCsum != 0
	if sb.incompat&incompatCsumSeed != 0 {
		f.csumSeed = sb.checksumSeed
	} else {
		f.csumSeed = crc32c(^uint32(0), sb.uuid[:])
	}
	return nil
}

// Info describes the filesystem.
func (f *FS) Info() fs.Info {
	i := f.info
	i.Problems = append([]string(nil), i.Problems...)
	return i
}

// Root returns the root directory's node (inode 2).
func (f *FS) Root() fs.Node { return rootIno }

// readRaw reads len(p) bytes at volume offset off, without the journal
// overlay. Bytes past the end of the volume read as zeros and make it
// return an error wrapping fs.ErrDamaged.
func (f *FS) readRaw(p []byte, off int64) error {
	if off < 0 {
		return fmt.Errorf("ext4: negative offset: %w", fs.ErrDamaged)
	}
	n := len(p)
	if off >= f.size {
		clear(p)
		return fmt.Errorf("ext4: offset %d past the end of the volume: %w", off, fs.ErrDamaged)
	}
	short := false
	if int64(n) > f.size-off {
		n = int(f.size - off)
		clear(p[n:])
		short = true
	}
	got, err := f.r.ReadAt(p[:n], off)
	if got < n {
		clear(p[got:n])
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("ext4: reading at %d: %v: %w", off, err, fs.ErrDamaged)
	}
	if short {
		return fmt.Errorf("ext4: read at %d runs past the end of the volume: %w", off, fs.ErrDamaged)
	}
	return nil
}

// readBlock reads block blk (len(p) == block size) as the current view
// sees it: from the journal where a replayed copy exists.
func (f *FS) readBlock(p []byte, blk uint64) error {
	if f.sb != nil && blk >= f.sb.blocksCount {
		clear(p)
		return fmt.Errorf("ext4: block %d out of range: %w", blk, fs.ErrDamaged)
	}
	if f.jov != nil {
		if e, ok := f.jov.m[blk]; ok {
			err := f.readRaw(p, e.off)
			if e.escape && len(p) >= 4 {
				be.PutUint32(p, jbdMagic)
			}
			return err
		}
	}
	return f.readRaw(p, int64(blk)*f.bs)
}

// blockPos returns the volume offset holding block blk's content in the
// current view (a journal block where the journal was replayed over it).
func (f *FS) blockPos(blk uint64) int64 {
	if f.jov != nil {
		if e, ok := f.jov.m[blk]; ok {
			return e.off
		}
	}
	return int64(blk) * f.bs
}

// suspect reports whether any of [off, off+n) is in the damage map.
func (f *FS) suspect(off, n int64) bool {
	return f.opt.Damage.Any(off, n, damage.Tainted)
}

func (f *FS) suspectBlock(blk uint64) bool { return f.suspect(f.blockPos(blk), f.bs) }

// metaBlock returns block blk through a small cache. The slice is shared:
// callers must not modify it.
func (f *FS) metaBlock(blk uint64) ([]byte, error) {
	if b, ok := f.cache.Get(blk); ok {
		return b, nil
	}
	b := make([]byte, f.bs)
	if err := f.readBlock(b, blk); err != nil {
		return b, err
	}
	f.cache.Put(blk, b)
	return b, nil
}

// errDamaged returns an error wrapping fs.ErrDamaged.
func errDamaged(format string, args ...any) error {
	return fmt.Errorf("ext4: "+format+": %w", append(args, fs.ErrDamaged)...)
}

// sortedKeys returns the keys of m in increasing order.
func sortedKeys[V any](m map[uint64]V) []uint64 {
	k := make([]uint64, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Slice(k, func(i, j int) bool { return k[i] < k[j] })
	return k
}

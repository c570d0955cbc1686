// Package xfs reads XFS filesystems (v4 and v5), read-only and resiliently:
// damaged metadata is reported on the object it belongs to and reading goes
// on. It implements fs.FS; a Node is an XFS inode number.
//
// What it reads: the primary superblock, falling back to the secondary
// copies of the other allocation groups; inodes (versions 1 to 3, large
// extent counters, big timestamps), located from their numbers alone;
// extent lists and extent B+trees (bmbt) of any depth, unwritten extents
// (read as zeros) and shared (reflinked) extents; short-form, block, leaf
// and node directories (every directory data block below the leaf offset
// is read, so a lost index never hides an entry); local and remote
// symlinks; extended attributes in short form, leaf and node (dabtree)
// form with remote values; and on v5 filesystems every checksum on the way
// (superblock, inodes, bmbt blocks, directory, attribute, symlink and
// remote value blocks, AGIs and inode B+tree blocks): a mismatch becomes a
// Problem on the object and reading goes on.
//
// Problems: those of a node's inode, data fork and attributes are in
// Stat().Problems; those of a directory's blocks (checksums, invalid entries
// skipped) come with ReadDir's error, which accompanies every entry that
// could be read.
//
// Extended attributes are returned by their Linux names: user.*, trusted.*
// (XFS's root namespace), security.* (secure namespace); the POSIX ACLs XFS
// keeps as trusted.SGI_ACL_FILE and trusted.SGI_ACL_DEFAULT in a format of
// its own become system.posix_acl_access and system.posix_acl_default in
// the Linux xattr format (version 2, as getfattr shows them). Parent
// pointers and attributes left incomplete by a crash are not listed.
//
// A dirty log (one that does not end with an unmount record: a crash, or
// a backup of a running guest) is replayed in memory by default, as a
// mount would, and never written (logreplay.go, logitems.go): buffer,
// inode and inode chunk (icreate) items, with cancelled buffers skipped
// and v5 blocks newer than a transaction left alone. Intents (extent
// frees, rmap, refcount, bmap, attribute and mapping exchange updates)
// are not carried out: an unfinished one is reported. Quota buffers are
// not replayed. Replayed v5 blocks get the transaction's LSN and a fresh
// checksum, as the kernel writes them back. A log damaged before its head
// is not replayed (see LogAuto). With Options.Log LogOnDisk the
// filesystem is read as on disk (like mount -o norecovery). Info().View
// and Info().Problems say which was done.
//
// Orphans returns valid, in-use inodes (allocated according to the inode
// B+trees, or found by scanning for inode chunks where a B+tree is lost)
// that no directory reaches, topmost first. Inodes on the unlinked lists
// (deleted while open) and the filesystem's own inodes (quotas, realtime
// bitmap and summary) are never returned.
//
// Device numbers (Stat.Rdev) use the glibc dev_t encoding that stat(2)
// reports and mknod(2) takes.
//
// Bounds, whatever the disk says: 4M extents and 512K bmbt blocks per fork,
// 256 MiB and 4M entries per directory, 4 MiB of attribute values per
// inode, 64K dabtree blocks per attribute fork, and a bounded chunk scan;
// loops in B+trees and dabtrees are detected.
package xfs

import (
	"fmt"
	"io"
	"sync"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/ringcache"
)

// Options configure Open.
type Options struct {
	// Damage lists volume byte ranges known to be lost or tainted (may be
	// nil): secondary superblocks are preferred over a damaged primary, and
	// objects read from damaged metadata carry a Problem.
	Damage *damage.Map
	// Log selects the view of a filesystem whose log is dirty: replayed
	// in memory (the default) or as on disk.
	Log LogMode
}

// FS is an open XFS filesystem. It implements fs.FS and is safe for
// concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	opt  Options

	ov        *overlay // blocks replayed from the log (nil: none)
	sb        *superblock
	bs        int64 // block size
	dirBlk    int64 // directory block size
	inoShift  uint  // bits of an AG-relative inode number
	coreSize  int   // inode core size (100 or 176)
	ftype     bool  // directory entries carry a file type
	v5        bool
	info      fs.Info
	cache     *ringcache.Cache[cacheKey, []byte] // metadata blocks
	orphanOne sync.Once
	orphans   []fs.Node
	orphanErr error
}

var _ fs.FS = (*FS)(nil)

// Probe reports whether r looks like an XFS filesystem (a superblock magic
// number and a sane geometry at byte 0).
func Probe(r io.ReaderAt) bool {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		return false
	}
	return parseSuperblock(b).validate(be.Uint32(b)) == nil
}

// Open reads the filesystem on r, a volume of size bytes. It fails only
// when no usable superblock is found; everything else damaged is reported
// in Info().Problems and on the objects concerned.
func Open(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	f := &FS{r: r, size: size, opt: opt}
	f.cache = ringcache.New[cacheKey, []byte](256)
	c, problems, err := f.findSuperblock()
	if err != nil {
		return nil, err
	}
	sb := c.sb
	f.sb = sb
	f.bs = int64(sb.blockSize)
	f.dirBlk = f.bs << sb.dirBlkLog
	f.inoShift = uint(sb.agBlkLog) + uint(sb.inoPBLog)
	f.v5 = sb.v5()
	f.coreSize = dinodeV2Size
	if f.v5 {
		f.coreSize = dinodeV3Size
	}
	f.ftype = sb.ftype()
	if need := int64(sb.dblocks) * f.bs; need > size {
		problems = append(problems, fmt.Sprintf("the volume (%d bytes) is smaller than the filesystem (%d bytes)", size, need))
	}
	view, lp := f.openLog()
	problems = append(problems, lp...)
	if c := sb.versionNum & versionNumMask; c == 5 && sb.incompat&^(incompatFtype|incompatSpinodes|incompatMetaUUID|incompatBigtime|1<<4|incompatNrext64) != 0 {
		problems = append(problems, fmt.Sprintf("unknown incompatible features 0x%x: some files may read wrongly", sb.incompat))
	}
	f.info = fs.Info{
		Type:      "xfs",
		UUID:      fs.FormatUUID(sb.uuid),
		Label:     fs.CString(sb.fname[:]),
		BlockSize: int(f.bs),
		Size:      int64(sb.dblocks) * f.bs,
		View:      view,
		Problems:  problems,
	}
	return f, nil
}

// Info describes the filesystem.
func (f *FS) Info() fs.Info {
	i := f.info
	i.Problems = append([]string(nil), i.Problems...)
	return i
}

// Root returns the root directory's node.
func (f *FS) Root() fs.Node { return fs.Node(f.sb.rootIno) }

// readAt reads len(p) bytes at volume offset off, as replayed from the
// log where it was. Bytes past the end of the volume read as zeros and
// make it return an error wrapping fs.ErrDamaged.
func (f *FS) readAt(p []byte, off int64) error {
	err := f.readRaw(p, off)
	if f.ov != nil {
		f.ov.apply(p, off)
	}
	return err
}

// readRaw reads len(p) bytes at volume offset off as they are on the
// volume (see fs.ReadVolume).
func (f *FS) readRaw(p []byte, off int64) error {
	return fs.ReadVolume(f.r, f.size, p, off, "xfs")
}

// suspect reports whether any of [off, off+n) is in the damage map.
func (f *FS) suspect(off, n int64) bool {
	return f.opt.Damage.Any(off, n, damage.Tainted)
}

// fsbOK reports whether filesystem block number fsb (AG number in the high
// bits) and the n blocks after it lie inside one allocation group.
func (f *FS) fsbOK(fsb, n uint64) bool {
	ag := fsb >> f.sb.agBlkLog
	agb := fsb & (1<<f.sb.agBlkLog - 1)
	return ag < uint64(f.sb.agCount) && n <= uint64(f.sb.agBlocks) && agb+n <= uint64(f.sb.agBlocks) &&
		ag*uint64(f.sb.agBlocks)+agb+n <= f.sb.dblocks
}

// fsbPos returns the volume byte offset of filesystem block fsb.
func (f *FS) fsbPos(fsb uint64) int64 {
	ag := fsb >> f.sb.agBlkLog
	agb := fsb & (1<<f.sb.agBlkLog - 1)
	return int64(ag*uint64(f.sb.agBlocks)+agb) * f.bs
}

// agPos returns the volume byte offset of block agb of AG ag.
func (f *FS) agPos(ag, agb uint32) int64 {
	return (int64(ag)*int64(f.sb.agBlocks) + int64(agb)) * f.bs
}

// metaBlock reads n bytes at volume offset pos through a small cache. The
// slice is shared: callers must not modify it.
func (f *FS) metaBlock(pos int64, n int) ([]byte, error) {
	key := cacheKey{pos, n}
	if b, ok := f.cache.Get(key); ok {
		return b, nil
	}
	b := make([]byte, n)
	if err := f.readAt(b, pos); err != nil {
		return b, err
	}
	f.cache.Put(key, b)
	return b, nil
}

type cacheKey struct {
	pos int64
	n   int
}

// errDamaged returns an error wrapping fs.ErrDamaged.
func errDamaged(format string, args ...any) error {
	return fmt.Errorf("xfs: "+format+": %w", append(args, fs.ErrDamaged)...)
}

type problemLog = fs.ProblemLog

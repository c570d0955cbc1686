// Package btrfs reads single-device btrfs filesystems, read-only and
// resiliently, and implements fs.FS.
//
// What it reads: the superblock (falling back to the mirrors at 64 MiB and
// 256 GiB), the system chunk array and the chunk tree (single, DUP and
// RAID1-like profiles; striped profiles and other devices are reported),
// the root tree (falling back to the superblock's backup roots of earlier
// commits), every subvolume and snapshot, inodes, directories (DIR_INDEX
// and DIR_ITEM together, so that losing the leaf of one loses no name),
// hard links, symlinks, extended attributes (POSIX ACLs are stored in the
// Linux xattr form already), inline, regular, preallocated and compressed
// extents (zlib, LZO, zstd) and holes.
//
// Checksums: every tree block is checked (crc32c, xxhash64, sha256 or
// blake2b, as the superblock says) and read from its other copy (DUP
// metadata) when it fails; every data sector with a checksum in the csum
// tree is checked when read, falling back to another copy. A sector that
// fails on every copy reads as zeros, the read returns an error wrapping
// fs.ErrDamaged, and from then on Layout lists the file range in Lost: so
// damage that nothing else noticed (one flipped bit) is named by its file.
// Layout reports what reads found; it does not read data itself.
//
// Subvolumes and snapshots are read as the directories they are linked
// at in their parent (Info.View says so when there are any). A Node is a
// subvolume index (in the order they were first met, 0 for the top-level
// tree 5) in its top 16 bits and the inode number in the other 48.
//
// Bounds, whatever the disk says: tree depth 8, 1M chunks, 4M extents per
// file, 4M entries per directory, 128 MiB decoded per compressed extent
// (btrfs writes at most 128 KiB), 64 KiB of xattr values per inode.
// Orphan (unlinked but open) inodes, the tree log of fsync'd changes and
// quota trees are not read.
package btrfs

import (
	"errors"
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
	// nil): copies that lie outside it are read first.
	Damage *damage.Map
}

// FS is an open btrfs filesystem. It is safe for concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	opt  Options
	sb   *superblock
	cs   csum
	ns   int64 // node size
	ss   int64 // sector size

	chunks   chunkMap
	rootTree treeRoot
	csumTree treeRoot // zero when absent
	info     fs.Info

	cache *ringcache.Cache[uint64, *block] // tree blocks by logical address

	mu      sync.Mutex
	subvols []subvol          // by index
	byID    map[uint64]int    // subvolume id -> index
	bad     map[fs.Node][]run // file ranges found bad by their checksums
	nbad    int

	orphanOnce sync.Once
	orphans    []fs.Node
	orphansErr error
}

var _ fs.FS = (*FS)(nil)

// treeRoot locates the root block of a tree.
type treeRoot struct {
	bytenr uint64
	level  uint8
}

// subvol is one subvolume (or snapshot) tree.
type subvol struct {
	id     uint64
	root   treeRoot
	dirid  uint64
	rdonly bool
	err    error // the root item could not be read
}

// mirrors are the superblock copies' offsets.
var mirrors = []int64{64 << 10, 64 << 20, 256 << 30}

// Probe reports whether r holds a btrfs superblock at 64 KiB whose checksum
// holds.
func Probe(r io.ReaderAt) bool {
	b := make([]byte, superSize)
	if _, err := r.ReadAt(b, mirrors[0]); err != nil && err != io.EOF {
		return false
	}
	_, err := parseSuperblock(b, mirrors[0])
	return err == nil
}

// Open reads the btrfs filesystem on r, a volume of size bytes. It fails
// only when no superblock or no root tree can be read; everything else
// damaged is reported on the objects concerned.
func Open(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	f := &FS{r: r, size: size, opt: opt, byID: map[uint64]int{}, bad: map[fs.Node][]run{}}
	f.cache = ringcache.New[uint64, *block](512)
	var problems []string
	if err := f.findSuperblock(&problems); err != nil {
		return nil, err
	}
	if err := f.loadChunks(&problems); err != nil {
		return nil, err
	}
	if err := f.loadRoots(&problems); err != nil {
		return nil, err
	}
	if f.sb.numDevices > 1 {
		problems = append(problems, fmt.Sprintf("%d devices: only what lies on this one is read", f.sb.numDevices))
	}
	if f.sb.logRoot != 0 {
		problems = append(problems, "a tree log of fsync'd changes is not replayed")
	}
	f.info = fs.Info{
		Type:      "btrfs",
		UUID:      fs.FormatUUID(f.sb.fsid),
		Label:     f.sb.label,
		BlockSize: int(f.ss),
		Size:      int64(f.sb.totalBytes),
		Problems:  problems,
	}
	if f.hasSubvolumes() {
		f.info.View = "subvolumes and snapshots as directories"
	}
	return f, nil
}

// findSuperblock picks the newest superblock copy whose checksum holds,
// preferring copies outside the damage map.
func (f *FS) findSuperblock(problems *[]string) error {
	var best *superblock
	bestSuspect := true
	var first string // why the primary copy was not used
	for i, off := range mirrors {
		if off+superSize > f.size {
			break
		}
		b := make([]byte, superSize)
		var sb *superblock
		_, err := f.r.ReadAt(b, off)
		if err == nil || err == io.EOF {
			sb, err = parseSuperblock(b, off)
		}
		if err != nil {
			if i == 0 {
				first = err.Error()
			}
			continue
		}
		sus := f.suspect(off, superSize)
		if best == nil || bestSuspect && !sus || sus == bestSuspect && sb.generation > best.generation {
			best, bestSuspect = sb, sus
			if i > 0 && first == "" {
				first = "in damage or older"
			}
		}
	}
	if best == nil {
		return fmt.Errorf("btrfs: no usable superblock (primary: %s): %w", first, fs.ErrDamaged)
	}
	if first != "" && int64(le.Uint64(best.raw[sbBytenr:])) != mirrors[0] {
		*problems = append(*problems, "primary superblock not used ("+first+"): a mirror was")
	}
	f.sb = best
	cs, _ := newCsum(best.csumType)
	f.cs, f.ns, f.ss = cs, int64(best.nodeSize), int64(best.sectorSize)
	if best.incompat&incompatRAID56 != 0 {
		*problems = append(*problems, "RAID5/6 chunks are not read")
	}
	return nil
}

// loadChunks reads the system chunk array, then the chunk tree (falling
// back to the backup roots).
func (f *FS) loadChunks(problems *[]string) error {
	a := f.sb.sysArray
	for p := 0; p+17 <= len(a); {
		k := parseKey(a[p:])
		p += 17
		if k.typ != typeChunkItem {
			return fmt.Errorf("btrfs: system chunk array holds a key of type %d: %w", k.typ, fs.ErrDamaged)
		}
		c, n, err := parseChunk(k.off, a[p:], f.sb.devid)
		if err != nil {
			return fmt.Errorf("btrfs: system chunk array: %v: %w", err, fs.ErrDamaged)
		}
		f.chunks.add(c)
		p += n
	}
	roots := []treeRoot{{f.sb.chunkRoot, f.sb.chunkLevel}}
	for _, b := range f.sb.backups() {
		roots = append(roots, treeRoot{b.chunkRoot, b.chunkLevel})
	}
	var firstErr error
	for i, root := range roots {
		var got []chunk
		err := f.iterate(root, key{0, typeChunkItem, 0}, key{^uint64(0), typeChunkItem, ^uint64(0)}, func(it item) bool {
			if it.key.typ == typeChunkItem {
				if c, _, err := parseChunk(it.key.off, it.data, f.sb.devid); err == nil {
					got = append(got, c)
				}
			}
			return len(got) < maxChunks
		})
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if len(got) == 0 {
			continue
		}
		for _, c := range got {
			f.chunks.add(c)
		}
		if i > 0 {
			*problems = append(*problems, fmt.Sprintf("chunk tree damaged (%v): the backup root of an earlier commit used", firstErr))
		} else if err != nil {
			*problems = append(*problems, fmt.Sprintf("chunk tree: %v", err))
		}
		return nil
	}
	*problems = append(*problems, fmt.Sprintf("chunk tree unreadable (%v): only the system chunks are known", firstErr))
	return nil
}

// loadRoots finds the root tree (falling back to backup roots), the
// top-level fs tree and the csum tree.
func (f *FS) loadRoots(problems *[]string) error {
	roots := []treeRoot{{f.sb.root, f.sb.rootLevel}}
	for _, b := range f.sb.backups() {
		roots = append(roots, treeRoot{b.treeRoot, b.treeLevel})
	}
	var firstErr error
	for i, root := range roots {
		f.rootTree = root
		top := f.loadSubvol(fsTreeID)
		if top.err != nil {
			if firstErr == nil {
				firstErr = top.err
			}
			continue
		}
		if i > 0 {
			*problems = append(*problems, fmt.Sprintf("root tree damaged (%v): the backup root of an earlier commit used", firstErr))
		}
		f.subvols = []subvol{top}
		f.byID[fsTreeID] = 0
		if cs := f.loadSubvol(csumTreeID); cs.err == nil {
			f.csumTree = cs.root
		} else {
			*problems = append(*problems, fmt.Sprintf("csum tree: %v: data read unverified", cs.err))
		}
		return nil
	}
	return fmt.Errorf("btrfs: no readable root tree: %v: %w", firstErr, fs.ErrDamaged)
}

// loadSubvol reads the root item of tree id from the root tree.
func (f *FS) loadSubvol(id uint64) subvol {
	s := subvol{id: id, dirid: firstFreeID}
	var found bool
	err := f.iterate(f.rootTree, key{id, typeRootItem, 0}, key{id, typeRootItem, ^uint64(0)}, func(it item) bool {
		if len(it.data) < 239 {
			return true
		}
		s.root = treeRoot{le.Uint64(it.data[176:]), it.data[238]}
		s.dirid = le.Uint64(it.data[168:])
		s.rdonly = le.Uint64(it.data[208:])&rootRdonly != 0
		found = true
		return false
	})
	switch {
	case found && s.root.level > maxLevel:
		s.err = fmt.Errorf("tree %d: level %d: %w", id, s.root.level, fs.ErrDamaged)
	case found:
		// The root block itself must be readable.
		if _, err := f.treeBlock(s.root.bytenr, int(s.root.level)); err != nil {
			s.err = fmt.Errorf("tree %d: %w", id, err)
		}
	case err != nil:
		s.err = fmt.Errorf("tree %d: root item unreadable: %w", id, err)
	default:
		s.err = fmt.Errorf("tree %d: no root item: %w", id, fs.ErrDamaged)
	}
	return s
}

// hasSubvolumes reports whether the root tree lists subvolumes.
func (f *FS) hasSubvolumes() bool {
	found := false
	f.iterate(f.rootTree, key{firstFreeID, typeRootItem, 0}, key{lastFreeID, typeRootItem, ^uint64(0)}, func(it item) bool {
		if it.key.typ == typeRootItem {
			found = true
			return false
		}
		return true
	})
	return found
}

// Info describes the filesystem.
func (f *FS) Info() fs.Info {
	i := f.info
	i.Problems = append([]string(nil), i.Problems...)
	return i
}

// Root returns the top-level subvolume's root directory.
func (f *FS) Root() fs.Node { return makeNode(0, f.subvols[0].dirid) }

// makeNode and splitNode encode a subvolume index and an inode number.
func makeNode(idx int, ino uint64) fs.Node { return fs.Node(uint64(idx)<<48 | ino&(1<<48-1)) }

func splitNode(n fs.Node) (int, uint64) { return int(uint64(n) >> 48), uint64(n) & (1<<48 - 1) }

const maxSubvols = 1 << 16

// subvolIndex returns the index of subvolume id, reading its root item the
// first time.
func (f *FS) subvolIndex(id uint64) (int, error) {
	f.mu.Lock()
	if i, ok := f.byID[id]; ok {
		err := f.subvols[i].err
		f.mu.Unlock()
		return i, err
	}
	f.mu.Unlock()
	s := f.loadSubvol(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, ok := f.byID[id]; ok {
		return i, f.subvols[i].err
	}
	if len(f.subvols) >= maxSubvols {
		return 0, fmt.Errorf("btrfs: more than %d subvolumes", maxSubvols)
	}
	f.subvols = append(f.subvols, s)
	f.byID[id] = len(f.subvols) - 1
	return len(f.subvols) - 1, s.err
}

// tree returns the subvolume of index idx.
func (f *FS) tree(idx int) (subvol, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx < 0 || idx >= len(f.subvols) {
		return subvol{}, fmt.Errorf("btrfs: no subvolume %d", idx)
	}
	return f.subvols[idx], f.subvols[idx].err
}

// readAt reads len(p) bytes at device offset off (see fs.ReadVolume).
func (f *FS) readAt(p []byte, off int64) error {
	return fs.ReadVolume(f.r, f.size, p, off, "btrfs")
}

// suspect reports whether any byte of [off, off+n) is in the damage map.
func (f *FS) suspect(off, n int64) bool { return f.opt.Damage.Any(off, n, damage.Tainted) }

// order returns copies with those outside the damage map first.
func (f *FS) order(copies []int64, n int64) []int64 {
	out := make([]int64, 0, len(copies))
	for _, p := range copies {
		if !f.suspect(p, n) {
			out = append(out, p)
		}
	}
	for _, p := range copies {
		if f.suspect(p, n) {
			out = append(out, p)
		}
	}
	return out
}

// errDamaged returns an error wrapping fs.ErrDamaged.
func errDamaged(format string, args ...any) error {
	return fmt.Errorf("btrfs: "+format+": %w", append(args, fs.ErrDamaged)...)
}

// joinErrs joins at most a few errors, counting the rest.
func joinErrs(errs []error) error {
	const keep = 4
	if len(errs) <= keep {
		return errors.Join(errs...)
	}
	return errors.Join(append(errs[:keep:keep], fmt.Errorf("and %d more", len(errs)-keep))...)
}

// Package fat reads FAT12, FAT16, FAT32 and exFAT filesystems, read-only
// and resiliently: damaged metadata is reported on the object it belongs to
// and reading goes on. It implements fs.FS.
//
// A Node is the volume offset of a file's directory entry divided by 32
// (the short name entry on FAT, the File entry of the entry set on exFAT);
// the root directory is Node 0. Nodes are learnt from ReadDir; Stat of a
// FAT node not yet listed decodes its short entry directly.
//
// What it reads: the boot sector, falling back to the backup (FAT32: the
// sector BPB_BkBootSec names, usually 6; exFAT: the backup boot region at
// sector 12, chosen when the main region's checksum fails); every copy of
// the FAT, entry by entry: where the copy in use lies in the damage map or
// gives an impossible next cluster, another copy is used, and where copies
// disagree without a way to tell which is right, the file says so; long
// names (their checksum against the short name checked: a long name that
// does not belong is dropped and the short name used); exFAT entry sets
// (their checksum checked), contiguous (NoFatChain) files and the valid
// data length (bytes past it read as zeros). Cluster chains are bounded by
// the cluster count and cycle-checked.
//
// Metadata FAT lacks is synthesised: modes are 0755 for directories and
// 0644 for files, 0444 for read-only files; owners are 0. FAT timestamps
// are local time of an unknown zone: they are returned as if they were
// UTC (a FAT written with TZ=UTC reads back exactly); exFAT timestamps
// carry their UTC offset where the writer recorded it and are converted to
// UTC, else treated like FAT's. Modification times have 2-second
// resolution on FAT (10 ms on exFAT); FAT's access date has no time.
//
// Orphans is always empty: FAT has no inodes to find lost files by.
//
// Bounds, whatever the disk says: 2 MiB per FAT directory (65536
// entries, as the format allows), 64 MiB per exFAT directory,
// chains no longer than the cluster count, 512 MiB of FAT compared at
// open.
package fat

import (
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
)

// Options configure Open.
type Options struct {
	// Damage lists volume byte ranges known to be lost or tainted (may be
	// nil): the backup boot sector and other FAT copies are preferred over
	// damaged ones, and objects read from damaged metadata carry a Problem.
	Damage *damage.Map
}

// FS is an open FAT or exFAT filesystem. It implements fs.FS and is safe
// for concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	opt  Options
	g    *geometry
	info fs.Info

	mu      sync.Mutex
	entries map[fs.Node]*entry
	cache   map[int64][]byte // FAT pages
}

var _ fs.FS = (*FS)(nil)

const (
	pageSize      = 4096
	maxCachePages = 4096
	maxEntries    = 1 << 22
	maxDirBytes   = 64 << 20 // exFAT
	// maxFATDirBytes: a FAT directory holds at most 65536 entries.
	maxFATDirBytes = 2 << 20
	maxCompare     = 512 << 20
)

// Open reads the filesystem on r, a volume of size bytes. It fails only
// when no usable boot sector is found.
func Open(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	f := &FS{r: r, size: size, opt: opt, entries: map[fs.Node]*entry{}, cache: map[int64][]byte{}}
	g, problems, err := f.findBoot()
	if err != nil {
		return nil, err
	}
	f.g = g
	if g.size > size {
		problems = append(problems, fmt.Sprintf("the volume (%d bytes) is smaller than the filesystem (%d bytes)", size, g.size))
	}
	if g.dirty {
		problems = append(problems, "the volume is marked dirty (not unmounted cleanly)")
	}
	problems = append(problems, f.compareFATs()...)
	typ := "vfat"
	if g.exfat {
		typ = "exfat"
	}
	label := g.label
	if l, ok := f.rootLabel(); ok {
		label = l
	}
	f.info = fs.Info{
		Type:      typ,
		UUID:      fmt.Sprintf("%04X-%04X", g.serial>>16, g.serial&0xFFFF),
		Label:     label,
		BlockSize: int(g.cs),
		Size:      g.size,
		Problems:  problems,
	}
	return f, nil
}

// findBoot reads the boot sector, or its backup when the primary is
// invalid, damaged or (exFAT) fails its checksum.
func (f *FS) findBoot() (*geometry, []string, error) {
	var problems []string
	b := make([]byte, 12*4096)
	n := min(int64(len(b)), f.size)
	if err := f.readAt(b[:n], 0); err != nil && n < 512 {
		return nil, nil, fmt.Errorf("fat: boot sector unreadable: %w", errNotFAT)
	}
	g, err := parseBoot(b, f.size)
	switch {
	case err != nil:
		problems = append(problems, "boot sector invalid")
	case g.exfat && !checkExfatRegion(b[:n], int(g.ss)):
		problems = append(problems, "main boot region checksum mismatch")
	case f.suspect(0, g.ss):
		problems = append(problems, "boot sector lies in a damaged range")
	default:
		return g, nil, nil
	}
	primary := g
	// Backups: exFAT's boot region at sector 12, FAT32's boot sector at 6.
	for _, ss := range []int64{512, 4096, 1024, 2048} {
		for _, sec := range []int64{12, 6} {
			off := sec * ss
			m := min(int64(len(b)), f.size-off)
			if m < 512 || f.readAt(b[:m], off) != nil {
				continue
			}
			bg, err := parseBoot(b, f.size)
			if err != nil || bg.ss != ss || bg.exfat != (sec == 12) || f.suspect(off, ss) {
				continue
			}
			if bg.exfat && !checkExfatRegion(b[:m], int(ss)) {
				continue
			}
			return bg, append(problems, fmt.Sprintf("using the backup boot sector at sector %d", sec)), nil
		}
	}
	if primary != nil {
		return primary, problems, nil
	}
	return nil, problems, fmt.Errorf("fat: no usable boot sector: %w", errNotFAT)
}

// Info describes the filesystem.
func (f *FS) Info() fs.Info {
	i := f.info
	i.Problems = append([]string(nil), i.Problems...)
	return i
}

// Root returns the root directory's node, 0.
func (f *FS) Root() fs.Node { return 0 }

// Orphans returns nothing: FAT keeps no inodes to find lost files by.
func (f *FS) Orphans() ([]fs.Node, error) { return nil, nil }

// readAt reads len(p) bytes at volume offset off (see fs.ReadVolume).
func (f *FS) readAt(p []byte, off int64) error {
	return fs.ReadVolume(f.r, f.size, p, off, "fat")
}

func (f *FS) suspect(off, n int64) bool { return f.opt.Damage.Any(off, n, damage.Tainted) }

func errDamaged(format string, args ...any) error {
	return fmt.Errorf("fat: "+format+": %w", append(args, fs.ErrDamaged)...)
}

// clusterPos returns the volume offset of cluster c.
func (f *FS) clusterPos(c uint32) int64 { return f.g.heap + int64(c-2)*f.g.cs }

// validCluster reports whether c names a data cluster inside the volume.
func (f *FS) validCluster(c uint32) bool {
	return c >= 2 && c-2 < f.g.clusters && f.clusterPos(c)+f.g.cs <= f.size
}

// fatPage returns the 4 KiB page of the volume at off (a FAT page),
// through a bounded cache.
func (f *FS) fatPage(off int64) ([]byte, error) {
	f.mu.Lock()
	b := f.cache[off]
	f.mu.Unlock()
	if b != nil {
		return b, nil
	}
	b = make([]byte, pageSize)
	if err := f.readAt(b, off); err != nil {
		return b, err
	}
	f.mu.Lock()
	if len(f.cache) >= maxCachePages {
		clear(f.cache)
	}
	f.cache[off] = b
	f.mu.Unlock()
	return b, nil
}

// entryLoc returns the byte offset and length of cluster c's entry in FAT
// copy i.
func (f *FS) entryLoc(i int, c uint32) (int64, int64) {
	base := f.g.fatOff + int64(i)*f.g.fatLen
	switch f.g.bits {
	case 12:
		return base + int64(c)*3/2, 2
	case 16:
		return base + int64(c)*2, 2
	}
	return base + int64(c)*4, 4
}

// fatEntry returns cluster c's entry in FAT copy i.
func (f *FS) fatEntry(i int, c uint32) (uint32, error) {
	off, n := f.entryLoc(i, c)
	var v [4]byte
	for k := int64(0); k < n; k++ {
		p, err := f.fatPage((off + k) &^ (pageSize - 1))
		if err != nil {
			return 0, err
		}
		v[k] = p[(off+k)&(pageSize-1)]
	}
	x := le.Uint32(v[:])
	switch f.g.bits {
	case 12:
		if c&1 != 0 {
			return x >> 4 & 0xFFF, nil
		}
		return x & 0xFFF, nil
	case 16:
		return x & 0xFFFF, nil
	}
	if f.g.exfat {
		return x, nil
	}
	return x & 0x0FFFFFFF, nil
}

// Classes of FAT entries.
func (f *FS) isEOC(v uint32) bool {
	switch {
	case f.g.exfat:
		return v >= 0xFFFFFFF8
	case f.g.bits == 12:
		return v >= 0xFF8
	case f.g.bits == 16:
		return v >= 0xFFF8
	}
	return v >= 0x0FFFFFF8
}

// chain is a cluster chain mapped to the volume.
type chain struct {
	data     []fs.Extent // in logical order
	meta     []fs.Extent // the FAT entries read
	bytes    int64       // bytes the chain covers
	problems []string
}

// addMeta records bytes [off, off+n) of a FAT as metadata, merging.
func (c *chain) addMeta(off, n int64) {
	if k := len(c.meta); k > 0 && c.meta[k-1].Physical+c.meta[k-1].Length >= off && c.meta[k-1].Physical <= off {
		e := &c.meta[k-1]
		e.Length = max(e.Length, off+n-e.Physical)
		return
	}
	c.meta = append(c.meta, fs.Extent{Physical: off, Length: n})
}

func (c *chain) addCluster(pos, cs int64) {
	if k := len(c.data); k > 0 && c.data[k-1].Physical+c.data[k-1].Length == pos {
		c.data[k-1].Length += cs
	} else {
		c.data = append(c.data, fs.Extent{Logical: c.bytes, Physical: pos, Length: cs})
	}
	c.bytes += cs
}

// follow maps the chain starting at first, up to limit bytes (at least the
// file's size; the whole chain for directories). contiguous follows no
// FAT (exFAT's NoFatChain).
func (f *FS) follow(first uint32, limit int64, contiguous bool) *chain {
	c := &chain{}
	cs := f.g.cs
	if first == 0 {
		return c
	}
	if contiguous {
		n := (limit + cs - 1) / cs
		for i := int64(0); i < n; i++ {
			cl := first + uint32(i)
			if !f.validCluster(cl) || int64(cl) != int64(first)+i {
				c.problems = append(c.problems, fmt.Sprintf("contiguous run leaves the volume at cluster %d", cl))
				break
			}
			c.addCluster(f.clusterPos(cl), cs)
		}
		return c
	}
	seen := map[uint32]bool{}
	cl := first
	for {
		if !f.validCluster(cl) {
			c.problems = append(c.problems, fmt.Sprintf("cluster %d out of range", cl))
			return c
		}
		if seen[cl] {
			c.problems = append(c.problems, fmt.Sprintf("cluster chain loops at cluster %d", cl))
			return c
		}
		seen[cl] = true
		c.addCluster(f.clusterPos(cl), cs)
		if c.bytes >= limit {
			// What the content needs is mapped: a longer chain (lost
			// clusters fsck would free) does not change it.
			if limit == maxDirBytes || limit == maxFATDirBytes {
				c.problems = append(c.problems, fmt.Sprintf("directory larger than %d bytes: the rest not read", limit))
			}
			return c
		}
		next, ok := f.next(c, cl, seen)
		if !ok || f.isEOC(next) {
			return c
		}
		cl = next
	}
}

// next returns the entry that follows cluster cl, choosing among the FAT
// copies: the copy in use, unless its entry lies in damage, cannot be read
// or is impossible (free, bad, out of range, already in the chain) while
// another's is not. Copies that disagree without such a reason put a
// problem on the chain. ok is false when no copy gives a usable entry.
func (f *FS) next(c *chain, cl uint32, seen map[uint32]bool) (uint32, bool) {
	type cand struct {
		v        uint32
		off, n   int64
		good, ok bool
	}
	cands := make([]cand, 0, f.g.nfats)
	order := []int{f.g.active}
	for i := 0; i < f.g.nfats; i++ {
		if i != f.g.active {
			order = append(order, i)
		}
	}
	for _, i := range order {
		off, n := f.entryLoc(i, cl)
		v, err := f.fatEntry(i, cl)
		x := cand{v: v, off: off, n: n, ok: err == nil && !f.suspect(off, n)}
		x.good = x.ok && (f.isEOC(v) || f.validCluster(v) && !seen[v])
		cands = append(cands, x)
	}
	pick := -1
	for i, x := range cands {
		if x.good {
			pick = i
			break
		}
	}
	if pick < 0 {
		c.addMeta(cands[0].off, cands[0].n)
		c.problems = append(c.problems, fmt.Sprintf("chain broken after cluster %d (FAT entry %#x)", cl, cands[0].v))
		return 0, false
	}
	x := cands[pick]
	c.addMeta(x.off, x.n)
	for _, y := range cands {
		if y.good && y.v != x.v {
			c.problems = append(c.problems, fmt.Sprintf("FAT copies disagree after cluster %d (%#x, %#x)", cl, x.v, y.v))
			break
		}
	}
	return x.v, true
}

// compareFATs compares the FAT copies and reports where they differ.
func (f *FS) compareFATs() []string {
	g := f.g
	if g.nfats < 2 || g.exfat {
		return nil
	}
	n := min(g.fatLen, maxCompare)
	const chunk = 1 << 20
	a, b := make([]byte, chunk), make([]byte, chunk)
	var diff, first int64 = 0, -1
	for off := int64(0); off < n; off += chunk {
		k := min(chunk, n-off)
		if f.readAt(a[:k], g.fatOff+off) != nil || f.readAt(b[:k], g.fatOff+g.fatLen+off) != nil {
			break
		}
		for i := int64(0); i < k; i++ {
			if a[i] != b[i] {
				if first < 0 {
					first = off + i
				}
				diff++
			}
		}
	}
	if diff == 0 {
		return nil
	}
	return []string{fmt.Sprintf("the two FAT copies differ in %d bytes (first near cluster %d): each chain uses the copy that is not damaged and makes sense", diff, first*8/int64(g.bits))}
}

// readExtents fills p from byte off of content mapped by exts (in logical
// order); bytes not mapped read as zeros and make it return an error.
func (f *FS) readExtents(exts []fs.Extent, p []byte, off int64) error {
	var dmg error
	for len(p) > 0 {
		i := sort.Search(len(exts), func(i int) bool { return exts[i].Logical+exts[i].Length > off })
		if i == len(exts) || exts[i].Logical > off {
			k := int64(len(p))
			if i < len(exts) {
				k = min(k, exts[i].Logical-off)
			}
			clear(p[:k])
			if dmg == nil {
				dmg = errDamaged("bytes at %d not mapped (cluster chain lost)", off)
			}
			p, off = p[k:], off+k
			continue
		}
		e := exts[i]
		k := min(int64(len(p)), e.Logical+e.Length-off)
		if err := f.readAt(p[:k], e.Physical+off-e.Logical); err != nil && dmg == nil {
			dmg = err
		}
		p, off = p[k:], off+k
	}
	return dmg
}

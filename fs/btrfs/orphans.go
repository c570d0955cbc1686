package btrfs

import (
	"slices"

	"github.com/vzsalvage/vzsalvage/fs"
)

const maxOrphans = 1 << 16

// Orphans returns inodes of the top-level tree and of every subvolume met
// so far that no directory entry reaches: inodes whose every INODE_REF
// names a parent directory that does not list them (a lost directory
// leaf) or that does not exist. Inodes on the orphan list (deleted while
// open) are left out.
func (f *FS) Orphans() ([]fs.Node, error) {
	f.orphanOnce.Do(func() { f.orphans, f.orphansErr = f.findOrphans() })
	return f.orphans, f.orphansErr
}

func (f *FS) findOrphans() ([]fs.Node, error) {
	f.mu.Lock()
	trees := append([]subvol(nil), f.subvols...)
	f.mu.Unlock()
	var out []fs.Node
	var errs []error
	for idx, t := range trees {
		if t.err != nil {
			continue
		}
		// Every inode, its parents (from its refs), and whether some
		// directory lists it.
		refs := map[uint64][]uint64{}
		listed := map[uint64]bool{}
		inodes := map[uint64]bool{}
		deleted := map[uint64]bool{}
		err := f.iterate(t.root, key{firstFreeID, 0, 0}, key{1 << 48, 0, 0}, func(it item) bool {
			switch it.key.typ {
			case typeInodeItem:
				inodes[it.key.obj] = true
			case typeInodeRef:
				refs[it.key.obj] = append(refs[it.key.obj], it.key.off)
			case typeInodeExtref:
				if len(it.data) >= 8 {
					refs[it.key.obj] = append(refs[it.key.obj], le.Uint64(it.data))
				}
			case typeDirIndex, typeDirItem:
				for _, d := range parseDirItems(it.data) {
					if d.loc.typ == typeInodeItem {
						listed[d.loc.obj] = true
					}
				}
			}
			return len(inodes) < 16<<20
		})
		if err != nil {
			errs = append(errs, err)
		}
		f.iterate(t.root, key{^uint64(0) - 4, typeOrphan, 0}, key{^uint64(0) - 4, typeOrphan, ^uint64(0)}, func(it item) bool {
			deleted[it.key.off] = true
			return true
		})
		for ino := range inodes {
			if ino == t.dirid || listed[ino] || deleted[ino] {
				continue
			}
			// Topmost only: an inode whose parent is itself an orphan
			// is reached through that parent.
			below := false
			for _, p := range refs[ino] {
				if inodes[p] && p != ino && !listed[p] && p != t.dirid {
					below = true
				}
			}
			if !below && len(out) < maxOrphans {
				out = append(out, makeNode(idx, ino))
			}
		}
	}
	sortNodes(out)
	if len(errs) > 0 {
		return out, joinErrs(errs)
	}
	return out, nil
}

func sortNodes(ns []fs.Node) { slices.Sort(ns) }

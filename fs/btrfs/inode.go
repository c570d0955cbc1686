package btrfs

import (
	"fmt"
	"io"
	iofs "io/fs"
	"time"

	"github.com/vzsalvage/vzsalvage/fs"
)

// inode is an inode item with where it lies.
type inode struct {
	inodeItem
	idx  int
	ino  uint64
	tree subvol
	at   phys // the item
}

// phys is a device byte range.
type phys struct {
	off int64
	n   int64
}

const (
	maxDirEntries = 4 << 20
	maxXattrBytes = 64 << 10
	maxLinkBytes  = 4095
)

// node reads a node's inode item.
func (f *FS) node(n fs.Node) (*inode, error) {
	idx, ino := splitNode(n)
	t, err := f.tree(idx)
	if err != nil {
		return nil, err
	}
	in := &inode{idx: idx, ino: ino, tree: t}
	found := false
	err = f.iterate(t.root, key{ino, typeInodeItem, 0}, key{ino, typeInodeItem, ^uint64(0)}, func(it item) bool {
		if ii, ok := parseInodeItem(it.data); ok {
			in.inodeItem, in.at, found = ii, phys{it.at, int64(len(it.data))}, true
		}
		return false
	})
	switch {
	case found:
		return in, nil
	case err != nil:
		return nil, fmt.Errorf("btrfs: inode %d of subvolume %d: %w", ino, t.id, err)
	}
	return nil, errDamaged("inode %d of subvolume %d not found", ino, t.id)
}

// Stat returns a node's metadata.
func (f *FS) Stat(n fs.Node) (*fs.Stat, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	st := &fs.Stat{
		Node:  n,
		Mode:  fs.UnixMode(in.mode),
		Size:  in.size,
		Nlink: in.nlink,
		UID:   in.uid,
		GID:   in.gid,
		Rdev:  in.rdev,
		Atime: in.atime,
		Mtime: in.mtime,
		Ctime: in.ctime,
		Btime: in.otime,
	}
	if in.otime.Unix() == 0 && in.otime.Nanosecond() == 0 {
		st.Btime = time.Time{} // not recorded (mkfs --rootdir)
	}
	if st.Mode.IsDir() {
		st.Size = 0 // btrfs counts name lengths twice; it means nothing to a caller
	}
	xa, err := f.xattrs(in)
	if err != nil {
		st.Problems = append(st.Problems, err.Error())
	}
	if len(xa) > 0 {
		st.Xattrs = xa
	}
	return st, nil
}

// xattrs reads an inode's extended attributes.
func (f *FS) xattrs(in *inode) (map[string][]byte, error) {
	var out map[string][]byte
	total := 0
	err := f.iterate(in.tree.root, key{in.ino, typeXattr, 0}, key{in.ino, typeXattr, ^uint64(0)}, func(it item) bool {
		for _, d := range parseDirItems(it.data) {
			if total += len(d.data); total > maxXattrBytes {
				return false
			}
			if out == nil {
				out = map[string][]byte{}
			}
			out[string(d.name)] = append([]byte(nil), d.data...)
		}
		return true
	})
	if err != nil {
		return out, fmt.Errorf("extended attributes: %w", err)
	}
	if total > maxXattrBytes {
		return out, fmt.Errorf("more than %d bytes of extended attributes", maxXattrBytes)
	}
	return out, nil
}

// dirTypes maps btrfs directory entry types to io/fs type bits.
var dirTypes = [...]iofs.FileMode{0: iofs.ModeIrregular, 1: 0, 2: iofs.ModeDir,
	3: iofs.ModeDevice | iofs.ModeCharDevice, 4: iofs.ModeDevice, 5: iofs.ModeNamedPipe,
	6: iofs.ModeSocket, 7: iofs.ModeSymlink}

// ReadDir returns a directory's entries: its DIR_INDEX items (in creation
// order) and any name found only in a DIR_ITEM (when the other's leaf is
// lost). A subvolume or snapshot appears as a directory entry whose node
// is the root directory of that subvolume.
func (f *FS) ReadDir(n fs.Node) ([]fs.DirEntry, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	if in.mode&0o170000 != 0o040000 {
		return nil, fs.ErrNotDir
	}
	var index, hashed []fs.DirEntry
	var problems []error
	err = f.iterate(in.tree.root, key{in.ino, typeDirItem, 0}, key{in.ino, typeDirIndex, ^uint64(0)}, func(it item) bool {
		if it.key.typ != typeDirItem && it.key.typ != typeDirIndex {
			return true
		}
		for _, d := range parseDirItems(it.data) {
			e, err := f.dirEntry(in, d, it)
			if err != nil {
				if len(problems) < 16 {
					problems = append(problems, err)
				}
				continue
			}
			if it.key.typ == typeDirIndex {
				index = append(index, e)
			} else {
				hashed = append(hashed, e)
			}
		}
		return len(index)+len(hashed) < 2*maxDirEntries
	})
	if err != nil {
		problems = append(problems, err)
	}
	seen := make(map[string]bool, len(index))
	out := index[:0:0]
	for _, e := range index {
		if !seen[e.Name] {
			seen[e.Name] = true
			out = append(out, e)
		}
	}
	for _, e := range hashed {
		if !seen[e.Name] {
			seen[e.Name] = true
			out = append(out, e)
		}
	}
	if len(out) > maxDirEntries {
		out = out[:maxDirEntries]
		problems = append(problems, errDamaged("directory %d: more than %d entries", in.ino, maxDirEntries))
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("btrfs: directory %d: %w", in.ino, joinErrs(problems))
	}
	return out, nil
}

// dirEntry converts one entry of a directory item.
func (f *FS) dirEntry(dir *inode, d dirItem, it item) (fs.DirEntry, error) {
	e := fs.DirEntry{Name: string(d.name), Where: fs.Extent{Physical: it.at + int64(d.at), Length: int64(d.len)}}
	if int(d.typ) < len(dirTypes) {
		e.Type = dirTypes[d.typ]
	} else {
		e.Type = iofs.ModeIrregular
	}
	if len(d.name) == 0 {
		return e, errDamaged("directory %d: an entry with an empty name", dir.ino)
	}
	if !fs.ValidName(e.Name) {
		return e, errDamaged("directory %d: an entry named %q, which cannot be a path element", dir.ino, e.Name)
	}
	switch d.loc.typ {
	case typeInodeItem:
		if d.loc.obj >= 1<<48 {
			return e, errDamaged("directory %d: %q names inode %d", dir.ino, e.Name, d.loc.obj)
		}
		e.Node = makeNode(dir.idx, d.loc.obj)
	case typeRootItem:
		if d.loc.obj < firstFreeID || d.loc.obj > lastFreeID {
			return e, errDamaged("directory %d: %q names subvolume %d", dir.ino, e.Name, d.loc.obj)
		}
		idx, err := f.subvolIndex(d.loc.obj)
		if err != nil {
			return e, fmt.Errorf("subvolume %q: %w", e.Name, err)
		}
		t, _ := f.tree(idx)
		e.Node = makeNode(idx, t.dirid)
		e.Type = iofs.ModeDir
	default:
		return e, errDamaged("directory %d: %q has a location of type %d", dir.ino, e.Name, d.loc.typ)
	}
	return e, nil
}

// ReadLink returns a symlink's target (its inline extent).
func (f *FS) ReadLink(n fs.Node) (string, error) {
	in, err := f.node(n)
	if err != nil {
		return "", err
	}
	if in.mode&0o170000 != 0o120000 {
		return "", fs.ErrNotLink
	}
	if in.size <= 0 || in.size > maxLinkBytes {
		return "", errDamaged("symlink %d has size %d", in.ino, in.size)
	}
	fl, err := f.openInode(in)
	if err != nil {
		return "", err
	}
	buf := make([]byte, in.size)
	if _, err := fl.ReadAt(buf, 0); err != nil && err != io.EOF {
		return fs.CString(buf), err
	}
	return fs.CString(buf), nil
}

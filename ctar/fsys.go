package ctar

import (
	"fmt"
	"io"
	iofs "io/fs"
	"strings"

	"github.com/vzsalvage/vzsalvage/fs"
)

// FS presents an Index as a guest filesystem (fs.FS): the "volume" is the
// decompressed tar stream, so a file's Layout names the stream bytes that
// hold its headers (Meta) and content (Data), and the stream's damage map
// judges it like any filesystem's file.
//
// The tree is built from the member names alone, inside the index: ".."
// elements and leading "/" never climb above the root (a name with ".." is
// not placed), a member whose parent is not a directory (a symlink, say) is
// not placed, a hard link names a node of the tree (never a host path), and
// a later member of the same name replaces an earlier one, as tar -x does.
// Directory entries keep the archive's order, so that copying a tree reads
// the stream forward.
type FS struct {
	r     io.ReaderAt
	nodes []node
	dirs  []dirNode
	// problems of nodes, beyond their members' own (few nodes have any)
	problems map[fs.Node][]string
	info     fs.Info
	notes    int // placement problems dropped past maxNotes
}

// node is a file of the tree; an archive may hold millions, so it is
// small: its member, where that member's stream starts in the volume, its
// link count and, for a directory with entries, its dirNode.
type node struct {
	m     *Member // nil: the root without a header, or a directory named only by its content
	base  int64   // offset of m's stream in the volume
	nlink uint32
	dir   int32 // index into FS.dirs, or -1
}

// dirNode holds a directory's entries in archive order.
type dirNode struct {
	children []child
	index    map[string]int32 // name -> position in children, from indexFrom entries on
}

// child is a directory entry: its name (a substring of a member's name)
// and its node.
type child struct {
	name string
	n    fs.Node
}

// indexFrom is the number of entries from which a directory keeps an
// index by name (below it, a lookup scans them).
const indexFrom = 16

// noDirHeader is the problem of a directory named only by the paths of
// its members in a damaged archive.
const noDirHeader = "no header for this directory in the archive (lost in damage?)"

const (
	rootNode = fs.Node(1)
	maxNotes = 100
)

// NewFS builds the tree of x, whose stream r reads (offset 0 = the first
// byte of the stream, size bytes). Configs are left out of the tree.
func NewFS(x *Index, r io.ReaderAt) *FS {
	f := newFS(r, len(x.Members))
	f.info.Size = x.Size
	damaged := !x.Damage.Empty() || x.ProblemCount > 0
	for _, m := range x.Members {
		if !m.Config {
			f.place(m, 0, damaged)
		}
	}
	return f
}

// newFS returns a tree of the root alone, with room for n members.
func newFS(r io.ReaderAt, n int) *FS {
	f := &FS{r: r, nodes: make([]node, 2, n+2), problems: map[fs.Node][]string{}}
	f.info = fs.Info{Type: "tar", BlockSize: BlockSize}
	f.nodes[rootNode] = node{nlink: 1, dir: -1}
	return f
}

// child returns the position of name among directory n's entries.
func (f *FS) child(n fs.Node, name string) (int, bool) {
	d := f.nodes[n].dir
	if d < 0 {
		return 0, false
	}
	dn := &f.dirs[d]
	if dn.index != nil {
		i, ok := dn.index[name]
		return int(i), ok
	}
	for i := range dn.children {
		if dn.children[i].name == name {
			return i, true
		}
	}
	return 0, false
}

// children returns directory n's entries.
func (f *FS) children(n fs.Node) []child {
	if d := f.nodes[n].dir; d >= 0 {
		return f.dirs[d].children
	}
	return nil
}

func (f *FS) note(format string, a ...any) {
	if len(f.info.Problems) < maxNotes {
		f.info.Problems = append(f.info.Problems, fmt.Sprintf(format, a...))
	} else {
		f.notes++
	}
}

// lookup walks a cleaned path from the root through directories only.
func (f *FS) lookup(p string) (fs.Node, bool) {
	n := rootNode
	if p == "" {
		return n, true
	}
	for c := range strings.SplitSeq(p, "/") {
		if !f.isDir(n) {
			return 0, false
		}
		i, ok := f.child(n, c)
		if !ok {
			return 0, false
		}
		n = f.children(n)[i].n
	}
	return n, true
}

func (f *FS) isDir(n fs.Node) bool {
	m := f.nodes[n].m
	return m == nil || m.Type == TypeDir || m.Type == TypeDumpDir
}

// placement says what place did with a member: it put it into directory
// dir under name as node n (old: the node that was there and that it
// replaced, 0 if none; again: a directory named again, whose entries stay
// and whose header is taken), after making the directories in made on the
// way (named only by the member's path). ok is false when the member was
// not placed.
type placement struct {
	ok    bool
	dir   fs.Node
	name  string
	n     fs.Node
	old   fs.Node
	again bool
	made  []madeDir
}

// madeDir is a directory place made on a member's path: n, named name in
// parent.
type madeDir struct {
	parent, n fs.Node
	name      string
}

// place puts member m into the tree.
func (f *FS) place(m *Member, base int64, damaged bool) placement {
	var pl placement
	p, ok := cleanName(m.Name)
	if !ok {
		f.note("%s: name climbs out with \"..\": not placed", m.Name)
		return pl
	}
	for k, v := range m.ACLs() {
		if _, err := aclXattr(v); err != nil {
			f.note("%s: %s ACL not restorable: %v", m.Name, k, err)
		}
	}
	if p == "" {
		if m.Type == TypeDir {
			f.nodes[rootNode].m, f.nodes[rootNode].base = m, base
			return placement{ok: true, n: rootNode, again: true}
		}
		return pl
	}
	dir := rootNode
	elems := strings.Split(p, "/")
	for _, c := range elems[:len(elems)-1] {
		if i, ok := f.child(dir, c); ok {
			dir = f.children(dir)[i].n
			if !f.isDir(dir) {
				f.note("%s: a parent is not a directory: not placed", m.Name)
				return placement{}
			}
			continue
		}
		n := f.add(node{nlink: 1})
		if damaged {
			f.problems[n] = []string{noDirHeader}
		}
		f.link(dir, c, n)
		pl.made = append(pl.made, madeDir{parent: dir, n: n, name: c})
		dir = n
	}
	name := elems[len(elems)-1]
	pl.dir, pl.name = dir, name
	var n fs.Node
	if m.Type == TypeLink {
		t, ok := cleanName(m.Link())
		target, found := f.lookup(t)
		if !ok || !found || f.isDir(target) {
			n = f.add(node{m: m, base: base, nlink: 1})
			f.problems[n] = []string{fmt.Sprintf("hard link to %q, which is not a file of the archive", m.Link())}
		} else {
			n = target
			f.nodes[n].nlink++
		}
	} else {
		n = f.add(node{m: m, base: base, nlink: 1})
	}
	pl.n, pl.ok = n, true
	if i, ok := f.child(dir, name); ok {
		ch := &f.dirs[f.nodes[dir].dir].children[i]
		old := ch.n
		switch {
		case f.isDir(old) && f.isDir(n):
			// a directory named again (or named by its content first): keep
			// its entries, take the header
			f.nodes[old].m, f.nodes[old].base = m, base
			delete(f.problems, old)
			pl.n, pl.again = old, true
			return pl
		case f.isDir(old) && len(f.children(old)) > 0:
			f.note("%s: replaces a directory that is not empty: not placed", m.Name)
			pl.ok = false
			return pl
		}
		if f.nodes[old].nlink > 1 {
			f.nodes[old].nlink--
		}
		ch.n = n
		pl.old = old
		return pl
	}
	f.link(dir, name, n)
	return pl
}

func (f *FS) add(nd node) fs.Node {
	nd.dir = -1
	f.nodes = append(f.nodes, nd)
	return fs.Node(len(f.nodes) - 1)
}

// link adds the entry name for node n to directory dir.
func (f *FS) link(dir fs.Node, name string, n fs.Node) {
	d := f.nodes[dir].dir
	if d < 0 {
		d = int32(len(f.dirs))
		f.dirs = append(f.dirs, dirNode{})
		f.nodes[dir].dir = d
	}
	dn := &f.dirs[d]
	dn.children = append(dn.children, child{name: name, n: n})
	switch k := len(dn.children); {
	case k == indexFrom:
		dn.index = make(map[string]int32, 2*indexFrom)
		for i, c := range dn.children {
			dn.index[c.name] = int32(i)
		}
	case k > indexFrom:
		dn.index[name] = int32(k - 1)
	}
}

// mode returns a node's type and permission bits.
func (f *FS) mode(n fs.Node) iofs.FileMode {
	m := f.nodes[n].m
	if m == nil {
		return iofs.ModeDir | 0o755
	}
	mode := iofs.FileMode(m.Mode & 0o777)
	if m.Mode&0o4000 != 0 {
		mode |= iofs.ModeSetuid
	}
	if m.Mode&0o2000 != 0 {
		mode |= iofs.ModeSetgid
	}
	if m.Mode&0o1000 != 0 {
		mode |= iofs.ModeSticky
	}
	switch m.Type {
	case TypeDir, TypeDumpDir:
		mode |= iofs.ModeDir
	case TypeSymlink:
		mode |= iofs.ModeSymlink
	case TypeChar:
		mode |= iofs.ModeDevice | iofs.ModeCharDevice
	case TypeBlock:
		mode |= iofs.ModeDevice
	case TypeFifo:
		mode |= iofs.ModeNamedPipe
	}
	return mode
}

func (f *FS) node(n fs.Node) (*node, error) {
	if n < rootNode || int(n) >= len(f.nodes) {
		return nil, fmt.Errorf("node %d: %w", n, iofs.ErrNotExist)
	}
	return &f.nodes[n], nil
}

// Info implements fs.FS.
func (f *FS) Info() fs.Info {
	i := f.info
	if f.notes > 0 {
		i.Problems = append(i.Problems[:len(i.Problems):len(i.Problems)], fmt.Sprintf("... and %d more", f.notes))
	}
	return i
}

// Root implements fs.FS.
func (f *FS) Root() fs.Node { return rootNode }

// Stat implements fs.FS.
func (f *FS) Stat(n fs.Node) (*fs.Stat, error) {
	nd, err := f.node(n)
	if err != nil {
		return nil, err
	}
	st := &fs.Stat{Node: n, Mode: f.mode(n), Nlink: nd.nlink, Problems: f.problems[n]}
	m := nd.m
	if m == nil {
		return st, nil
	}
	st.Problems = append(st.Problems[:len(st.Problems):len(st.Problems)], m.Problems()...)
	st.Size, st.UID, st.GID = m.Size, m.UID, m.GID
	st.Mtime, st.Atime, st.Ctime = m.Mtime(), m.Atime(), m.Ctime()
	if m.Type == TypeChar || m.Type == TypeBlock {
		major, minor := m.Dev()
		st.Rdev = mkdev(uint64(major), uint64(minor))
	}
	if m.Type == TypeSymlink {
		st.Size = int64(len(m.Link()))
	}
	if len(m.Xattrs()) > 0 || len(m.ACLs()) > 0 {
		st.Xattrs = make(map[string][]byte, len(m.Xattrs())+len(m.ACLs()))
		for k, v := range m.Xattrs() {
			st.Xattrs[k] = v
		}
		for k, v := range m.ACLs() {
			// an access ACL of three entries only says what the mode
			// says: the kernel keeps it as the mode, not as an xattr
			if b, err := aclXattr(v); err == nil && (k != "access" || len(b) > 4+3*8) {
				st.Xattrs["system.posix_acl_"+k] = b
			}
		}
	}
	return st, nil
}

// mkdev encodes a device number as Linux does.
func mkdev(major, minor uint64) uint64 {
	return (major&0xfffff000)<<32 | (major&0xfff)<<8 | (minor&0xffffff00)<<12 | minor&0xff
}

// ReadDir implements fs.FS.
func (f *FS) ReadDir(n fs.Node) ([]fs.DirEntry, error) {
	if _, err := f.node(n); err != nil {
		return nil, err
	}
	if !f.isDir(n) {
		return nil, fs.ErrNotDir
	}
	cs := f.children(n)
	out := make([]fs.DirEntry, len(cs))
	for i, c := range cs {
		out[i] = fs.DirEntry{Name: c.name, Node: c.n, Type: f.mode(c.n).Type()}
	}
	return out, nil
}

// ReadLink implements fs.FS.
func (f *FS) ReadLink(n fs.Node) (string, error) {
	nd, err := f.node(n)
	if err != nil {
		return "", err
	}
	if nd.m == nil || nd.m.Type != TypeSymlink {
		return "", fs.ErrNotLink
	}
	return nd.m.Link(), nil
}

// Layout implements fs.FS: Data in volume offsets, Meta the member's
// headers (Attr when they are tainted but the next header confirms the
// size: the content is where they say, the rest may be wrong), Lost what
// damage cut off.
func (f *FS) Layout(n fs.Node) (*fs.Layout, error) {
	nd, err := f.node(n)
	if err != nil {
		return nil, err
	}
	lay := &fs.Layout{}
	m := nd.m
	if m == nil {
		return lay, nil
	}
	hdr := []fs.Extent{{Logical: 0, Physical: nd.base + m.HeaderOff, Length: m.HeaderEnd - m.HeaderOff}}
	if m.HeaderTainted() && m.Confirmed() && !m.Sparse {
		lay.Attr = hdr // the content's place is confirmed; names, modes and times are not
	} else {
		lay.Meta = hdr
	}
	for _, e := range m.Data() {
		lay.Data = append(lay.Data, fs.Extent{Logical: e.Logical, Physical: nd.base + e.Physical, Length: e.Length})
	}
	lay.Lost = m.Lost()
	return lay, nil
}

// Orphans implements fs.FS: a tar archive has none.
func (f *FS) Orphans() ([]fs.Node, error) { return nil, nil }

// Open implements fs.FS.
func (f *FS) Open(n fs.Node) (fs.File, error) {
	nd, err := f.node(n)
	if err != nil {
		return nil, err
	}
	if nd.m == nil || !hasData(nd.m.Type) {
		return nil, fs.ErrNotFile
	}
	return &file{r: f.r, m: nd.m, base: nd.base}, nil
}

// file reads a member's content through its extents; holes and lost
// ranges read as zeros.
type file struct {
	r    io.ReaderAt
	m    *Member
	base int64
}

func (fl *file) Size() int64 { return fl.m.Size }

func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off >= fl.m.Size {
		return 0, io.EOF
	}
	n := len(p)
	eof := false
	if int64(n) > fl.m.Size-off {
		n, eof = int(fl.m.Size-off), true
	}
	p = p[:n]
	clear(p)
	var lost error
	for _, e := range fl.m.Lost() {
		if e.Logical < off+int64(n) && e.Logical+e.Length > off {
			lost = fmt.Errorf("%w: bytes %d-%d were lost", fs.ErrDamaged, e.Logical, e.Logical+e.Length)
		}
	}
	for _, e := range fl.m.Data() {
		lo, hi := max(e.Logical, off), min(e.Logical+e.Length, off+int64(n))
		if lo >= hi {
			continue
		}
		k, err := fl.r.ReadAt(p[lo-off:hi-off], fl.base+e.Physical+(lo-e.Logical))
		if err != nil && int64(k) < hi-lo {
			return int(lo - off), err
		}
	}
	if lost != nil {
		return n, lost
	}
	if eof {
		return n, io.EOF
	}
	return n, nil
}

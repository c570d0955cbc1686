package fs

import (
	"errors"
	"io"
	iofs "io/fs"
	"time"
)

// memFS is a small in-memory filesystem for tests: any tree can be built,
// including ones no real filesystem would hold (hostile names, cycles,
// duplicate names, lying sizes).
type memFS struct {
	nodes   map[Node]*memNode
	next    Node
	orphans []Node
	oerr    error
}

type memNode struct {
	st      Stat
	ents    []DirEntry
	dirErr  error // returned by ReadDir with the entries
	statErr error
	data    []byte
	target  string
	layout  *Layout // nil: one extent over the data
	readErr error   // returned by reads, after filling with zeros
}

var epoch = time.Date(2021, 10, 31, 11, 43, 42, 123456789, time.UTC)

func newMem() *memFS {
	m := &memFS{nodes: map[Node]*memNode{}, next: 2}
	m.nodes[2] = &memNode{st: Stat{Node: 2, Mode: iofs.ModeDir | 0o755, Nlink: 2, Mtime: epoch, Atime: epoch}}
	m.next = 11
	return m
}

func (m *memFS) add(parent Node, name string, nd *memNode) Node {
	n := m.next
	m.next++
	nd.st.Node = n
	if nd.st.Nlink == 0 {
		nd.st.Nlink = 1
	}
	if nd.st.Mtime.IsZero() {
		nd.st.Mtime, nd.st.Atime = epoch.Add(time.Duration(n)*time.Hour), epoch.Add(time.Duration(n)*time.Minute)
	}
	m.nodes[n] = nd
	if parent != 0 {
		m.link(parent, name, n)
	}
	return n
}

// link adds an entry name → n to directory parent.
func (m *memFS) link(parent Node, name string, n Node) {
	p := m.nodes[parent]
	p.ents = append(p.ents, DirEntry{Name: name, Node: n, Type: m.nodes[n].st.Mode.Type(), Where: Extent{Physical: int64(parent) * 4096, Length: 32}})
}

func (m *memFS) dir(parent Node, name string) Node {
	return m.add(parent, name, &memNode{st: Stat{Mode: iofs.ModeDir | 0o755, Nlink: 2}})
}

func (m *memFS) file(parent Node, name, data string) Node {
	return m.add(parent, name, &memNode{st: Stat{Mode: 0o644, Size: int64(len(data))}, data: []byte(data)})
}

func (m *memFS) symlink(parent Node, name, target string) Node {
	return m.add(parent, name, &memNode{st: Stat{Mode: iofs.ModeSymlink | 0o777, Size: int64(len(target))}, target: target})
}

func (m *memFS) Info() Info { return Info{Type: "mem", BlockSize: 4096} }
func (m *memFS) Root() Node { return 2 }

func (m *memFS) node(n Node) (*memNode, error) {
	nd, ok := m.nodes[n]
	if !ok {
		return nil, errors.New("no such node")
	}
	return nd, nil
}

func (m *memFS) Stat(n Node) (*Stat, error) {
	nd, err := m.node(n)
	if err != nil {
		return nil, err
	}
	if nd.statErr != nil {
		return nil, nd.statErr
	}
	st := nd.st
	return &st, nil
}

func (m *memFS) ReadDir(n Node) ([]DirEntry, error) {
	nd, err := m.node(n)
	if err != nil {
		return nil, err
	}
	if !nd.st.Mode.IsDir() {
		return nil, ErrNotDir
	}
	return append([]DirEntry(nil), nd.ents...), nd.dirErr
}

func (m *memFS) Open(n Node) (File, error) {
	nd, err := m.node(n)
	if err != nil {
		return nil, err
	}
	if !nd.st.Mode.IsRegular() {
		return nil, ErrNotFile
	}
	return &memFile{nd: nd}, nil
}

func (m *memFS) ReadLink(n Node) (string, error) {
	nd, err := m.node(n)
	if err != nil {
		return "", err
	}
	if nd.st.Mode&iofs.ModeSymlink == 0 {
		return "", ErrNotLink
	}
	return nd.target, nil
}

func (m *memFS) Layout(n Node) (*Layout, error) {
	nd, err := m.node(n)
	if err != nil {
		return nil, err
	}
	if nd.layout != nil {
		return nd.layout, nil
	}
	return &Layout{Data: []Extent{{Logical: 0, Physical: 1 << 20, Length: int64(len(nd.data))}}}, nil
}

func (m *memFS) Orphans() ([]Node, error) { return m.orphans, m.oerr }

// memFile reads a node's data; past the data and up to the size, zeros.
type memFile struct{ nd *memNode }

func (f *memFile) Size() int64 { return f.nd.st.Size }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.nd.st.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.nd.st.Size-off))
	clear(p[:n])
	if off < int64(len(f.nd.data)) {
		copy(p[:n], f.nd.data[off:])
	}
	if f.nd.readErr != nil {
		return n, f.nd.readErr
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

package fat

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"

	"github.com/vzsalvage/vzsalvage/fs"
)

// lookup returns the entry of node n: as ReadDir found it, or (FAT, and
// exFAT sets that lie in one piece) decoded from its position.
func (f *FS) lookup(n fs.Node) (*entry, error) {
	f.mu.Lock()
	e := f.entries[n]
	f.mu.Unlock()
	if e != nil {
		return e, nil
	}
	pos := int64(n) * 32
	if pos < f.g.heap && (f.g.exfat || f.g.bits == 32 || pos < f.g.rootOff || pos >= f.g.rootOff+f.g.rootLen) {
		return nil, errDamaged("node %d is not a directory entry", n)
	}
	size := int64(32)
	if f.g.exfat {
		size = 32 * 19
	}
	b := make([]byte, size)
	if err := f.readAt(b, pos); err != nil && !f.g.exfat {
		return nil, err
	}
	exts := []fs.Extent{{Physical: pos, Length: size}}
	var ents []*entry
	if f.g.exfat {
		if b[0] != 0x85 {
			return nil, errDamaged("node %d is not a File entry", n)
		}
		ents, _, _ = f.parseExfatDir(b, exts)
	} else {
		ents, _, _ = f.parseFATDir(b, exts)
	}
	if len(ents) == 0 || ents[0].node != n {
		return nil, errDamaged("node %d is not a directory entry", n)
	}
	return ents[0], nil
}

// content maps a file's or directory's clusters: the chain, and the
// problems of the entry and the chain.
func (f *FS) content(e *entry) *chain {
	limit := e.size
	if e.isDir() && !f.g.exfat {
		limit = maxFATDirBytes
	}
	c := f.follow(e.first, limit, e.noChain)
	if !e.isDir() && c.bytes < e.size {
		c.problems = append(c.problems, fmt.Sprintf("cluster chain covers %d of %d bytes", c.bytes, e.size))
	}
	if !e.isDir() && e.size > 0 && e.first == 0 {
		c.problems = append(c.problems, "no first cluster")
	}
	return c
}

// Stat returns a node's metadata.
func (f *FS) Stat(n fs.Node) (*fs.Stat, error) {
	if n == 0 {
		st := &fs.Stat{Node: 0, Mode: iofs.ModeDir | 0o755, Nlink: 1}
		if _, c, ps, _ := f.dirContent(0); c != nil {
			st.Problems = ps
		}
		return st, nil
	}
	e, err := f.lookup(n)
	if err != nil {
		return nil, err
	}
	st := &fs.Stat{Node: n, Nlink: 1, Mtime: e.mtime, Atime: e.atime, Ctime: e.mtime, Btime: e.btime}
	switch {
	case e.isDir():
		st.Mode = iofs.ModeDir | 0o755
	case e.attr&attrReadOnly != 0:
		st.Mode = 0o444
		st.Size = e.size
	default:
		st.Mode = 0o644
		st.Size = e.size
	}
	st.Problems = append(append([]string(nil), e.problems...), f.content(e).problems...)
	return st, nil
}

// file is a regular file's content.
type file struct {
	f     *FS
	size  int64
	valid int64
	exts  []fs.Extent
}

// Open returns a regular file's content. Bytes whose clusters are lost
// read as zeros with an error wrapping fs.ErrDamaged.
func (f *FS) Open(n fs.Node) (fs.File, error) {
	if n == 0 {
		return nil, fs.ErrNotFile
	}
	e, err := f.lookup(n)
	if err != nil {
		return nil, err
	}
	if e.isDir() {
		return nil, fs.ErrNotFile
	}
	valid := e.size
	if f.g.exfat {
		valid = e.valid
	}
	return &file{f: f, size: e.size, valid: valid, exts: f.content(e).data}, nil
}

func (fl *file) Size() int64 { return fl.size }

// ReadAt reads len(p) bytes at offset off of the file.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("fat: negative offset")
	}
	if off >= fl.size {
		return 0, io.EOF
	}
	n := len(p)
	eof := false
	if int64(n) > fl.size-off {
		n, eof = int(fl.size-off), true
	}
	q := p[:n]
	var err error
	if v := fl.valid - off; v > 0 {
		err = fl.f.readExtents(fl.exts, q[:min(int64(n), v)], off)
	}
	if v := max(fl.valid-off, 0); v < int64(n) {
		clear(q[v:])
	}
	if err != nil {
		return n, err
	}
	if eof {
		return n, io.EOF
	}
	return n, nil
}

// ReadLink fails: FAT has no symlinks.
func (f *FS) ReadLink(n fs.Node) (string, error) { return "", fs.ErrNotLink }

// Layout returns where a node's data and metadata lie: its directory entry
// and the FAT entries of its chain (metadata), its clusters (data; for a
// directory, metadata too).
func (f *FS) Layout(n fs.Node) (*fs.Layout, error) {
	lay := &fs.Layout{}
	if n == 0 {
		exts, c, _, err := f.dirContent(0)
		if err != nil {
			return nil, err
		}
		lay.Meta = append(append(lay.Meta, c.meta...), exts...)
		lay.Data = exts
		return lay, nil
	}
	e, err := f.lookup(n)
	if err != nil {
		return nil, err
	}
	lay.Meta = append(lay.Meta, where([]fs.Extent{{Physical: e.pos, Length: e.setLen}}, 0, e.setLen))
	if f.g.exfat && e.where.Length > 0 {
		lay.Meta = append(lay.Meta, e.where) // the set, wherever it lies
	}
	c := f.content(e)
	lay.Meta = append(lay.Meta, c.meta...)
	lay.Data = c.data
	if e.isDir() {
		lay.Meta = append(lay.Meta, c.data...)
		return lay, nil
	}
	if c.bytes < e.size {
		lay.Lost = append(lay.Lost, fs.Extent{Logical: c.bytes, Physical: -1, Length: e.size - c.bytes})
	}
	return lay, nil
}

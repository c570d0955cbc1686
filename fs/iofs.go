package fs

import (
	"errors"
	"io"
	iofs "io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// IOFS returns f as an io/fs file system (fs.FS, fs.ReadDirFS, fs.StatFS,
// fs.ReadLinkFS), so that the standard library's tools (fs.WalkDir,
// fs.ReadFile, http.FileServerFS, fstest.TestFS) work on a guest
// filesystem. Paths are io/fs paths ("." is the root). Open and Stat follow
// symbolic links within the guest (Lookup's rules), Lstat and ReadLink do
// not. Names that are not valid path elements appear as their SafeName, and
// a name repeated in a damaged directory is hidden behind its first entry.
// FileInfo.Sys returns the node's *Stat. Device nodes, FIFOs and sockets
// open as empty files.
func IOFS(f FS) iofs.FS { return &ioFS{f: WithOrphans(f)} }

type ioFS struct{ f FS }

var (
	_ iofs.ReadDirFS  = (*ioFS)(nil)
	_ iofs.StatFS     = (*ioFS)(nil)
	_ iofs.ReadLinkFS = (*ioFS)(nil)
)

func (x *ioFS) lookup(op, name string, follow bool) (Node, error) {
	if !iofs.ValidPath(name) {
		return 0, &iofs.PathError{Op: op, Path: name, Err: iofs.ErrInvalid}
	}
	n, err := resolve(x.f, name, follow)
	if err != nil {
		var pe *iofs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return 0, &iofs.PathError{Op: op, Path: name, Err: err}
	}
	return n, nil
}

func (x *ioFS) stat(op, name string, follow bool) (*fileInfo, error) {
	n, err := x.lookup(op, name, follow)
	if err != nil {
		return nil, err
	}
	st, err := x.f.Stat(n)
	if err != nil {
		return nil, &iofs.PathError{Op: op, Path: name, Err: err}
	}
	return &fileInfo{name: path.Base(name), st: st}, nil
}

// Stat returns the metadata of the named file, following symbolic links.
func (x *ioFS) Stat(name string) (iofs.FileInfo, error) { return x.stat("stat", name, true) }

// Lstat returns the metadata of the named file itself.
func (x *ioFS) Lstat(name string) (iofs.FileInfo, error) { return x.stat("lstat", name, false) }

// ReadLink returns a symbolic link's target.
func (x *ioFS) ReadLink(name string) (string, error) {
	n, err := x.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	t, err := x.f.ReadLink(n)
	if err != nil {
		return "", &iofs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return t, nil
}

// ReadDir returns a directory's entries sorted by name. On damage it
// returns the entries it could read with the error.
func (x *ioFS) ReadDir(name string) ([]iofs.DirEntry, error) {
	n, err := x.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	return x.readDir(name, n)
}

func (x *ioFS) readDir(name string, n Node) ([]iofs.DirEntry, error) {
	ents, err := x.f.ReadDir(n)
	if err != nil {
		err = &iofs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]iofs.DirEntry, 0, len(ents))
	seen := make(map[string]bool, len(ents))
	for _, e := range ents {
		sn := SafeName(e.Name)
		if seen[sn] {
			continue
		}
		seen[sn] = true
		d := &dirEntry{name: sn, typ: e.Type}
		if st, serr := x.f.Stat(e.Node); serr == nil {
			d.st, d.typ = st, st.Mode.Type()
		} else {
			d.err = &iofs.PathError{Op: "stat", Path: path.Join(name, sn), Err: serr}
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b iofs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, err
}

// Open opens the named file, following symbolic links.
func (x *ioFS) Open(name string) (iofs.File, error) {
	n, err := x.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	st, err := x.f.Stat(n)
	if err != nil {
		return nil, &iofs.PathError{Op: "open", Path: name, Err: err}
	}
	fi := &fileInfo{name: path.Base(name), st: st}
	switch {
	case st.Mode.IsDir():
		return &dirFile{x: x, name: name, n: n, fi: fi}, nil
	case st.Mode.IsRegular():
		file, err := x.f.Open(n)
		if err != nil {
			return nil, &iofs.PathError{Op: "open", Path: name, Err: err}
		}
		return &regFile{fi: fi, SectionReader: io.NewSectionReader(file, 0, st.Size)}, nil
	}
	return &regFile{fi: fi, SectionReader: io.NewSectionReader(emptyReaderAt{}, 0, 0)}, nil
}

type emptyReaderAt struct{}

func (emptyReaderAt) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }

type fileInfo struct {
	name string
	st   *Stat
}

func (i *fileInfo) Name() string                { return i.name }
func (i *fileInfo) Size() int64                 { return i.st.Size }
func (i *fileInfo) Mode() iofs.FileMode         { return i.st.Mode }
func (i *fileInfo) ModTime() time.Time          { return i.st.Mtime }
func (i *fileInfo) IsDir() bool                 { return i.st.Mode.IsDir() }
func (i *fileInfo) Sys() any                    { return i.st }
func (i *fileInfo) String() string              { return iofs.FormatFileInfo(i) }
func (d *dirEntry) String() string              { return iofs.FormatDirEntry(d) }
func (d *dirEntry) Name() string                { return d.name }
func (d *dirEntry) IsDir() bool                 { return d.typ.IsDir() }
func (d *dirEntry) Type() iofs.FileMode         { return d.typ }
func (f *regFile) Stat() (iofs.FileInfo, error) { return f.fi, nil }
func (f *regFile) Close() error                 { return nil }

type dirEntry struct {
	name string
	typ  iofs.FileMode
	st   *Stat
	err  error
}

func (d *dirEntry) Info() (iofs.FileInfo, error) {
	if d.err != nil {
		return nil, d.err
	}
	return &fileInfo{name: d.name, st: d.st}, nil
}

type regFile struct {
	fi *fileInfo
	*io.SectionReader
}

type dirFile struct {
	x    *ioFS
	name string
	n    Node
	fi   *fileInfo
	ents []iofs.DirEntry
	err  error
	read bool
}

func (d *dirFile) Stat() (iofs.FileInfo, error) { return d.fi, nil }
func (d *dirFile) Close() error                 { return nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &iofs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

// ReadDir implements io/fs.ReadDirFile.
func (d *dirFile) ReadDir(count int) ([]iofs.DirEntry, error) {
	if !d.read {
		d.ents, d.err = d.x.readDir(d.name, d.n)
		d.read = true
	}
	if count <= 0 {
		out := d.ents
		d.ents = nil
		err := d.err
		d.err = nil
		return out, err
	}
	if len(d.ents) == 0 {
		if d.err != nil {
			err := d.err
			d.err = nil
			return nil, err
		}
		return nil, io.EOF
	}
	k := min(count, len(d.ents))
	out := d.ents[:k:k]
	d.ents = d.ents[k:]
	return out, nil
}

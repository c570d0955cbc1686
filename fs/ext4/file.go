package ext4

import (
	"errors"
	"io"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/runmap"
)

// file is a regular file's content: a block map, or inline bytes.
type file struct {
	f      *FS
	num    uint32
	size   int64
	runs   []run
	inline []byte // content of an inline-data file
	isInl  bool
}

// Open returns a regular file's content. Reads of holes and unwritten
// extents return zeros; reads of ranges whose mapping or data is lost
// return zeros and an error wrapping fs.ErrDamaged.
func (f *FS) Open(n fs.Node) (fs.File, error) {
	in, err := f.node(n)
	if err != nil {
		return nil, err
	}
	if in.typ() != sIFREG {
		return nil, fs.ErrNotFile
	}
	return f.openInode(in), nil
}

// openInode returns the content of any inode with data (also directories
// and slow symlinks).
func (f *FS) openInode(in *inode) *file {
	fl := &file{f: f, num: in.num, size: in.size}
	if !f.hasBlockMap(in) {
		fl.isInl = true
		fl.inline, _ = f.inlineData(in)
		return fl
	}
	fl.runs = f.mapInode(in).Runs
	return fl
}

// Size returns the file's size in bytes.
func (fl *file) Size() int64 { return fl.size }

// ReadAt reads len(p) bytes at offset off of the file.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("ext4: negative offset")
	}
	if off >= fl.size {
		return 0, io.EOF
	}
	n := len(p)
	eof := false
	if int64(n) > fl.size-off {
		n = int(fl.size - off)
		eof = true
	}
	var dmg error
	if fl.isInl {
		c := 0
		if off < int64(len(fl.inline)) {
			c = copy(p[:n], fl.inline[off:])
		}
		clear(p[c:n])
		if c < n {
			dmg = errDamaged("inode %d: inline data shorter than the file size", fl.num)
		}
	} else {
		dmg = fl.readMapped(p[:n], off)
	}
	switch {
	case dmg != nil:
		return n, dmg
	case eof:
		return n, io.EOF
	}
	return n, nil
}

// readMapped fills p from file offset off through the block map.
func (fl *file) readMapped(p []byte, off int64) error {
	m := runmap.Map{Runs: fl.runs}
	return m.Read(p, off, fl.f.bs, fl.f.readData, func(lb uint64) error {
		return errDamaged("inode %d: mapping of block %d lost", fl.num, lb)
	})
}

// readData fills p with volume data starting at byte inBlk of block pb,
// contiguous across blocks, through the journal overlay.
func (f *FS) readData(p []byte, pb uint64, inBlk int64) error {
	nb := (inBlk + int64(len(p)) + f.bs - 1) / f.bs
	if f.jov == nil || !f.jov.any(pb, uint64(nb)) {
		return f.readRaw(p, int64(pb)*f.bs+inBlk)
	}
	var first error
	buf := make([]byte, f.bs)
	for len(p) > 0 {
		if err := f.readBlock(buf, pb); err != nil && first == nil {
			first = err
		}
		c := copy(p, buf[inBlk:])
		p = p[c:]
		pb++
		inBlk = 0
	}
	return first
}

// ReadLink returns a symlink's target.
func (f *FS) ReadLink(n fs.Node) (string, error) {
	in, err := f.node(n)
	if err != nil {
		return "", err
	}
	if in.typ() != sIFLNK {
		return "", fs.ErrNotLink
	}
	size := in.size
	if size <= 0 {
		return "", errDamaged("symlink %d has size 0", n)
	}
	if size > maxLinkBytes {
		return "", errDamaged("symlink %d has size %d", n, size)
	}
	if in.flags&flagInlineData == 0 && f.fastSymlink(in) {
		return fs.CString(in.iblock()[:size]), nil
	}
	fl := f.openInode(in)
	buf := make([]byte, size)
	if _, err := fl.ReadAt(buf, 0); err != nil && err != io.EOF {
		return fs.CString(buf), err
	}
	return fs.CString(buf), nil
}

package xfs

import (
	"errors"
	"io"

	"github.com/vzsalvage/vzsalvage/fs"
)

// maxLinkBytes bounds a symlink target (XFS allows 1024 bytes).
const maxLinkBytes = 4096

// file is a regular file's content: a block map.
type file struct {
	f    *FS
	num  uint64
	size int64
	m    *forkMap
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
	fl := &file{f: f, num: in.num, size: in.size, m: &forkMap{}}
	if in.format == fmtExtents || in.format == fmtBtree {
		fl.m = f.mapFork(in, false)
	}
	return fl, nil
}

// Size returns the file's size in bytes.
func (fl *file) Size() int64 { return fl.size }

// ReadAt reads len(p) bytes at offset off of the file.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("xfs: negative offset")
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
	if err := fl.f.readMapped(fl.m, fl.num, p[:n], off); err != nil {
		return n, err
	}
	if eof {
		return n, io.EOF
	}
	return n, nil
}

// readMapped fills p from byte off of a fork through its map.
func (f *FS) readMapped(m *forkMap, num uint64, p []byte, off int64) error {
	read := func(p []byte, fsb uint64, within int64) error { return f.readAt(p, f.fsbPos(fsb)+within) }
	return m.Read(p, off, f.bs, read, func(blk uint64) error {
		return errDamaged("inode %d: mapping of block %d lost", num, blk)
	})
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
	switch {
	case size <= 0:
		return "", errDamaged("symlink %d has size 0", n)
	case size > maxLinkBytes:
		return "", errDamaged("symlink %d has size %d", n, size)
	}
	if in.format == fmtLocal {
		fork := f.dataFork(in)
		if size > int64(len(fork)) {
			return fs.CString(fork), errDamaged("symlink %d: size %d larger than its inode", n, size)
		}
		return string(fork[:size]), nil
	}
	target, problems := f.remoteLink(in)
	if len(problems) > 0 {
		return target, errDamaged("symlink %d: %s", n, problems[0])
	}
	return target, nil
}

// remoteLink reads a symlink kept in blocks: on v5 filesystems each extent
// starts with a header (magic, offset, length, checksum, owner).
func (f *FS) remoteLink(in *inode) (string, []string) {
	m := f.mapFork(in, false)
	var problems problemLog
	problems.Add(m.Problems...)
	out := make([]byte, in.size)
	got := int64(0)
	for _, r := range m.Runs {
		if r.Kind != runData {
			problems.Addf("blocks %d-%d not readable", r.Off, r.Off+r.N-1)
			continue
		}
		n := min(int64(r.N)*f.bs, maxLinkBytes+rmtHdrSize)
		pos := f.fsbPos(r.Phys)
		b, err := f.metaBlock(pos, int(n))
		if err != nil {
			problems.Addf("%v", err)
		}
		if f.suspect(pos, n) {
			problems.Addf("symlink block lies in a damaged range")
		}
		data := b
		at := int64(r.Off) * f.bs
		if at >= in.size {
			problems.Addf("symlink block %d past its size", r.Off)
			continue
		}
		if f.v5 {
			if len(b) < rmtHdrSize || be.Uint32(b) != symlinkMagic {
				// mkfs.xfs -p (before xfsprogs 6.x) writes remote symlinks
				// without their header: the target is read as raw bytes.
				problems.Addf("symlink block %d: no header, read as raw bytes", r.Off)
				got += int64(copy(out[int64(r.Off)*f.bs:], b))
				continue
			}
			if n == int64(r.N)*f.bs && !crcOK(b, 12) {
				problems.Addf("symlink block %d: checksum mismatch", r.Off)
			}
			if be.Uint64(b[32:]) != in.num {
				problems.Addf("symlink block %d: owner %d", r.Off, be.Uint64(b[32:]))
			}
			at = int64(be.Uint32(b[4:]))
			cnt := int64(be.Uint32(b[8:]))
			data = b[rmtHdrSize:]
			if cnt < int64(len(data)) {
				data = data[:cnt]
			}
		}
		if at < 0 || at >= in.size {
			problems.Addf("symlink block %d: offset %d out of range", r.Off, at)
			continue
		}
		got += int64(copy(out[at:], data))
	}
	if got < in.size {
		problems.Addf("only %d of %d bytes found", got, in.size)
	}
	return fs.CString(out), problems.List()
}

package repack

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// dataFinder tells where a sparse image holds data, asking the host
// filesystem (SEEK_DATA, SEEK_HOLE) as the write moves forward: O(1)
// memory, and holes are never read.
type dataFinder struct {
	fd         int
	size       int64
	start, end int64 // the current data run [start, end); start == size: none left
	known      int64 // runs are known up to here
}

func newDataFinder(r io.ReaderAt, size int64) *dataFinder {
	f, ok := r.(*os.File)
	if !ok {
		return &dataFinder{fd: -1, size: size, end: size, known: size}
	}
	return &dataFinder{fd: int(f.Fd()), size: size}
}

// has reports whether [off, off+n) may hold data; off only grows.
func (d *dataFinder) has(off, n int64) bool {
	if d.fd < 0 {
		return true
	}
	for off >= d.end && d.known < d.size {
		d.next(max(off, d.known))
	}
	return d.start < off+n && off < d.end
}

// next finds the data run at or after pos.
func (d *dataFinder) next(pos int64) {
	s, err := unix.Seek(d.fd, pos, unix.SEEK_DATA)
	if err != nil { // ENXIO: no data after pos (or no SEEK_DATA: say data)
		if err == unix.ENXIO {
			d.start, d.end, d.known = d.size, d.size, d.size
		} else {
			d.fd = -1
			d.start, d.end, d.known = 0, d.size, d.size
		}
		return
	}
	e, err := unix.Seek(d.fd, s, unix.SEEK_HOLE)
	if err != nil {
		e = d.size
	}
	d.start, d.end, d.known = s, e, e
}

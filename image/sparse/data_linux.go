// Package sparse finds where a sparse image file holds data, so that
// readers skip its holes (a terabyte disk with little data is read in time
// for its data only).
package sparse

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Finder tells where a sparse image holds data, asking the host filesystem
// (SEEK_DATA, SEEK_HOLE) as the caller moves forward: O(1) memory, and holes
// are never read. Where that cannot be asked (not a file, no SEEK_DATA),
// every range may hold data.
type Finder struct {
	fd         int
	size       int64
	start, end int64 // the current data run [start, end); start == size: none left
	known      int64 // runs are known up to here
}

// NewFinder returns a Finder over r, an image of size bytes.
func NewFinder(r io.ReaderAt, size int64) *Finder {
	f, ok := r.(*os.File)
	if !ok {
		return &Finder{fd: -1, size: size, end: size, known: size}
	}
	return &Finder{fd: int(f.Fd()), size: size}
}

// Has reports whether [off, off+n) may hold data; off must not go back.
func (d *Finder) Has(off, n int64) bool {
	if d.fd < 0 {
		return true
	}
	for off >= d.end && d.known < d.size {
		d.next(max(off, d.known))
	}
	return d.start < off+n && off < d.end
}

// next finds the data run at or after pos.
func (d *Finder) next(pos int64) {
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

package extract

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"slices"

	"github.com/vzsalvage/vzsalvage/damage"
)

// A second pass over a stream writes into the first pass's images in
// place (Options.Overlay) instead of writing every cluster anew.
//
// Its output is the same as a second pass into fresh images:
//
//   - The stream before the first pass's first codec span (Overlay.From)
//     decodes to the same bytes in both passes, so every cluster the VMA
//     reader delivers having read nothing from there on is written as the
//     first pass wrote it: it is not written again (only counted as
//     written).
//   - Every other write goes through a ChangeLog: where the image already
//     holds the bytes it is skipped, elsewhere the old bytes are kept in
//     the log before the new ones are written, so that the pass can be
//     undone (a pass that is not kept) and done again.
//   - Device ranges the first pass wrote and the second did not are
//     zeros in fresh images: they are written as zeros (through the log).

// Overlay makes a read write into existing images (a second pass over
// the stream a first read wrote them from).
type Overlay struct {
	// Images maps device names to the first pass's images (raw, of the
	// device's size). Devices not in it get fresh images.
	Images map[string]string
	// Written are the first pass's writes by device name
	// (Result.Written).
	Written map[string][]damage.Range
	// From is the stream offset of the first pass's first codec span (or
	// 0): the output before it is the same in both passes.
	From int64
	// Log records every change made to the images.
	Log *ChangeLog
	// Skipped counts the bytes not written again (the read sets it).
	Skipped int64
}

// maxWrites bounds the write ranges a read keeps for all its images
// together (Result.Written; a var for tests).
var maxWrites = 1 << 20

// writes records the ranges written to one image.
type writes struct {
	r    []damage.Range
	full bool // over the budget: not tracked
	// budget is the ranges the images of a read may still keep (shared)
	budget *int
}

func (w *writes) add(off, n int64) {
	if w.full || n <= 0 {
		return
	}
	if k := len(w.r); k > 0 && w.r[k-1].End() == off {
		w.r[k-1].Len += n
		return
	}
	if *w.budget <= 0 {
		*w.budget += len(w.r)
		w.full, w.r = true, nil
		return
	}
	*w.budget--
	w.r = append(w.r, damage.Range{Off: off, Len: n})
}

// ranges returns the writes sorted and merged (nil when not tracked).
func (w *writes) ranges() []damage.Range {
	if w.full {
		return nil
	}
	rs := slices.Clone(w.r)
	slices.SortFunc(rs, func(a, b damage.Range) int { return cmp.Compare(a.Off, b.Off) })
	out := rs[:0]
	for _, r := range rs {
		if k := len(out); k > 0 && out[k-1].End() >= r.Off {
			out[k-1].Len = max(out[k-1].End(), r.End()) - out[k-1].Off
			continue
		}
		out = append(out, r)
	}
	if out == nil {
		out = []damage.Range{}
	}
	return out
}

// subtract returns the parts of a not covered by b (both sorted, merged).
func subtract(a, b []damage.Range) []damage.Range {
	var out []damage.Range
	j := 0
	for _, r := range a {
		p, end := r.Off, r.End()
		for j < len(b) && b[j].End() <= p {
			j++
		}
		for k := j; k < len(b) && b[k].Off < end && p < end; k++ {
			if b[k].Off > p {
				out = append(out, damage.Range{Off: p, Len: b[k].Off - p})
			}
			p = max(p, b[k].End())
		}
		if p < end {
			out = append(out, damage.Range{Off: p, Len: end - p})
		}
	}
	return out
}

// ChangeLog records the changes a pass made to images: for each, the
// bytes before and after, in a file, so that the pass can be undone and
// done again.
type ChangeLog struct {
	f     *os.File
	end   int64
	recs  []change
	buf   []byte
	files map[string]*os.File // the images, open for writing
}

type change struct {
	f   *os.File // the image changed
	off int64    // where in it
	n   int64
	at  int64 // the old bytes' place in the log file (the new ones follow)
}

// NewChangeLog creates an empty log in the file at path (removed by Close).
func NewChangeLog(path string) (*ChangeLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &ChangeLog{f: f, files: map[string]*os.File{}}, nil
}

// open returns the image at path open for reading and writing (it stays
// open until Close).
func (l *ChangeLog) open(path string) (*os.File, error) {
	if f := l.files[path]; f != nil {
		return f, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	l.files[path] = f
	return f, nil
}

// Changes returns how many writes changed an image, and their bytes.
func (l *ChangeLog) Changes() (n int, bytes int64) {
	for _, c := range l.recs {
		bytes += c.n
	}
	return len(l.recs), bytes
}

// write puts p at off of f, logging the change; bytes already there are
// not written.
func (l *ChangeLog) write(f *os.File, p []byte, off int64) error {
	if cap(l.buf) < len(p) {
		l.buf = make([]byte, len(p))
	}
	old := l.buf[:len(p)]
	n, err := f.ReadAt(old, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	clear(old[n:])
	if bytes.Equal(old, p) {
		return nil
	}
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(len(p)))
	rec := change{f: f, off: off, n: int64(len(p)), at: l.end + 8}
	for _, b := range [][]byte{hdr[:], old, p} {
		if _, err := l.f.WriteAt(b, l.end); err != nil {
			return err
		}
		l.end += int64(len(b))
	}
	l.recs = append(l.recs, rec)
	_, err = f.WriteAt(p, off)
	return err
}

// Undo puts back the bytes the logged changes replaced, latest first.
func (l *ChangeLog) Undo() error {
	for i := len(l.recs) - 1; i >= 0; i-- {
		if err := l.apply(l.recs[i], 0); err != nil {
			return err
		}
	}
	return nil
}

// Redo makes the logged changes again, in their order.
func (l *ChangeLog) Redo() error {
	for _, c := range l.recs {
		if err := l.apply(c, c.n); err != nil {
			return err
		}
	}
	return nil
}

// apply copies the old (skip 0) or new (skip n) bytes of c into its image.
func (l *ChangeLog) apply(c change, skip int64) error {
	if int64(cap(l.buf)) < c.n {
		l.buf = make([]byte, c.n)
	}
	b := l.buf[:c.n]
	if _, err := l.f.ReadAt(b, c.at+skip); err != nil {
		return err
	}
	_, err := c.f.WriteAt(b, c.off)
	return err
}

// Close removes the log and closes the images it opened.
func (l *ChangeLog) Close() error {
	for _, f := range l.files {
		f.Close()
	}
	l.files, l.recs = nil, nil
	err := l.f.Close()
	if e := os.Remove(l.f.Name()); err == nil {
		err = e
	}
	return err
}

//go:build !linux

package fs

import "errors"

// TreeWriter is not available on this system yet: it needs the *at system
// calls that keep writes inside the destination.
type TreeWriter struct{}

// DirID names a directory a TreeWriter made.
type DirID int32

// OutFile is a regular file being written by a TreeWriter.
type OutFile struct{}

// NewTreeWriter fails with errors.ErrUnsupported on this system.
func NewTreeWriter(dest string, root *Stat, opt CopyOptions) (*TreeWriter, error) {
	return nil, errors.ErrUnsupported
}

func (w *TreeWriter) Root() DirID                                        { return 0 }
func (w *TreeWriter) Err() error                                         { return errors.ErrUnsupported }
func (w *TreeWriter) Stats() *CopyStats                                  { return &CopyStats{} }
func (w *TreeWriter) Fail(gp string, err error)                          {}
func (w *TreeWriter) Mkdir(DirID, string, *Stat, string) (DirID, bool)   { return 0, false }
func (w *TreeWriter) SetDir(DirID, *Stat)                                {}
func (w *TreeWriter) Remove(DirID, string, string) bool                  { return false }
func (w *TreeWriter) RemoveDir(DirID, string) bool                       { return false }
func (w *TreeWriter) Create(DirID, string, *Stat, string, bool) *OutFile { return nil }
func (w *TreeWriter) Symlink(DirID, string, string, *Stat, string, bool) {}
func (w *TreeWriter) Special(DirID, string, *Stat, string, bool)         {}
func (w *TreeWriter) Link(DirID, string, DirID, string, string, bool)    {}
func (w *TreeWriter) Finish() (*CopyStats, error)                        { return &CopyStats{}, errors.ErrUnsupported }
func (f *OutFile) WriteAt(p []byte, off int64) error                     { return errors.ErrUnsupported }
func (f *OutFile) Close(readErr error)                                   {}
func (f *OutFile) Discard()                                              {}

package fs

import (
	"context"
	"errors"
)

// CopyOptions control Copy. The zero value copies one file or symlink with
// its mode (without setuid/setgid) and times.
type CopyOptions struct {
	// Recursive copies a directory and everything under it.
	Recursive bool
	// Owners sets owner and group (only when running as root).
	Owners bool
	// Xattrs copies extended attributes: user.* only, all when running as
	// root.
	Xattrs bool
	// Specials recreates device nodes, FIFOs and sockets; without it they
	// are listed in CopyStats.Skipped.
	Specials bool
	// SetID keeps setuid and setgid bits.
	SetID bool
	// Budget caps the file data Copy reads and writes, in bytes (holes, which
	// Copy skips, do not count; zero blocks inside data do, though they are
	// not written). Copy stops with ErrBudget when it is reached. 0: no cap.
	Budget int64
	// Progress, if set, is called as data is written, with the totals so far.
	Progress func(bytes, files int64)
	// Context, if set, stops the copy when it is done (an interrupt): Copy
	// returns its error.
	Context context.Context
}

// CopyStats says what Copy did.
type CopyStats struct {
	Files, Dirs, Symlinks, HardLinks, Specials int64 // created
	Bytes                                      int64 // file data written
	// Skipped lists nodes not copied by choice (device nodes, FIFOs and
	// sockets without CopyOptions.Specials).
	Skipped []CopyIssue
	// Renamed lists names that were not valid path elements and were
	// written as their SafeName.
	Renamed []CopyIssue
	// Errors lists per-node failures; the copy went on. A file whose data
	// could not all be read is still written, and listed here.
	Errors []CopyIssue
	// Dropped counts issues not listed because a list was full (maxIssues).
	Dropped int64
}

// CopyIssue is one node's entry in CopyStats: its path in the guest.
type CopyIssue struct {
	Path string
	Err  error
}

func (i CopyIssue) Error() string { return i.Path + ": " + i.Err.Error() }

// Errors of Copy.
var (
	// ErrBudget: CopyOptions.Budget was reached.
	ErrBudget = errors.New("copy budget reached")
	// ErrExist: the destination (or a name inside the copy) exists already:
	// Copy never overwrites.
	ErrExist = errors.New("destination exists")
	// ErrSkipped marks CopyStats.Skipped entries.
	ErrSkipped = errors.New("not recreated (special file)")
)

// maxIssues bounds each list in CopyStats; past it only the count grows.
const maxIssues = 100000

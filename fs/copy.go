package fs

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// CopyOptions control Copy. The zero value copies one file or symlink with
// its mode (without setuid/setgid), times and safe extended attributes.
type CopyOptions struct {
	// Recursive copies a directory and everything under it.
	Recursive bool
	// Owners sets owner and group (only when running as root).
	Owners bool
	// Xattrs says which extended attributes are restored (the zero value:
	// XattrsSafe).
	Xattrs XattrMode
	// Specials recreates device nodes, FIFOs and sockets; without it they
	// are listed in CopyStats.Skipped.
	Specials bool
	// SetID keeps setuid and setgid bits.
	SetID bool
	// Budget, if set, caps the file data Copy reads and writes; Copy stops
	// with an error wrapping ErrBudget when a cap would be passed. Several
	// copies may share one Budget.
	Budget *Budget
	// Progress, if set, is called as data is written, with the totals so far.
	Progress func(bytes, files int64)
	// Context, if set, stops the copy when it is done (an interrupt): Copy
	// returns its error.
	Context context.Context
	// Replace lets the copy replace what exists at the destination: files,
	// symlinks and special files are replaced (renamed over, never written
	// through), existing directories are entered (never through a symlink)
	// and keep their own owner and mode. Without it an existing name is an
	// ErrExist and left alone.
	Replace bool
}

// XattrMode says which extended attributes Copy restores. The guest may be
// hostile: an attribute outside user.* and the POSIX ACLs can grant
// privilege on the host (a file capability such as cap_setuid+ep makes any
// user who runs the file root) or steer the host's kernel (SELinux labels,
// IMA/EVM, overlayfs' trusted.overlay.*).
type XattrMode uint8

const (
	// XattrsSafe restores user.* attributes and POSIX ACLs
	// (system.posix_acl_access, system.posix_acl_default): nothing that
	// grants privilege. Others are counted in CopyStats.XattrsSkipped.
	XattrsSafe XattrMode = iota
	// XattrsNone restores no extended attribute.
	XattrsNone
	// XattrsAll restores every attribute the host lets Copy set (other
	// namespaces than user.* only as root): security.* (SELinux labels,
	// IMA), trusted.* and file capabilities (security.capability), these
	// only on files whose owner is kept as in the guest (Owners, as root).
	XattrsAll
)

// xattrCapability is the attribute holding a file's capabilities.
const xattrCapability = "security.capability"

// SafeXattr reports whether an extended attribute is restored by
// XattrsSafe: user.* and the POSIX ACLs.
func SafeXattr(name string) bool {
	return strings.HasPrefix(name, "user.") || name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

// xattrModes are the names of the XattrModes.
var xattrModes = [...]string{XattrsSafe: "safe", XattrsNone: "none", XattrsAll: "all"}

func (m XattrMode) String() string {
	if int(m) < len(xattrModes) {
		return xattrModes[m]
	}
	return "?"
}

// ParseXattrMode parses "safe", "none" or "all".
func ParseXattrMode(s string) (XattrMode, error) {
	for i, n := range xattrModes {
		if n == s {
			return XattrMode(i), nil
		}
	}
	return XattrsSafe, fmt.Errorf("extended attributes %q: safe, all or none", s)
}

// Budget caps what copies may read and write: a filesystem that is damaged
// or crafted can name one inode many times, or many inodes over the same
// blocks, and turn a small backup into any amount of output. One Budget may
// be shared by several copies (a whole rescue): they stop together.
type Budget struct {
	// MaxRead caps the file data read, in bytes: holes, which Copy skips,
	// do not count; zero blocks inside data do. 0: no cap.
	MaxRead int64
	// MaxWrite caps the file data written (pages that are not all zero,
	// which is what takes space). 0: no cap.
	MaxWrite int64
	// Read and Written count what the copies did so far.
	Read, Written int64
	// Stopped says which cap stopped a copy: "read", "write" or "" (none).
	Stopped string
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
	// Aliased lists names of a regular file already copied under another
	// name although its link count says it has no other (a damaged or
	// crafted filesystem): they are written as hard links to the first copy,
	// not copied again.
	Aliased []CopyIssue
	// XattrsSkipped counts extended attributes not restored by the
	// XattrMode (security.*, trusted.*, file capabilities).
	XattrsSkipped int64
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
	// ErrBudget: a cap of CopyOptions.Budget was reached.
	ErrBudget = errors.New("copy budget reached")
	// ErrExist: the destination (or a name inside the copy) exists already:
	// Copy never overwrites.
	ErrExist = errors.New("destination exists")
	// ErrSkipped marks CopyStats.Skipped entries.
	ErrSkipped = errors.New("not recreated (special file)")
	// ErrAliased marks CopyStats.Aliased entries.
	ErrAliased = errors.New("same inode as an earlier name, but its link count is 1: written as a hard link")
)

// maxIssues bounds each list in CopyStats; past it only the count grows.
const maxIssues = 100000

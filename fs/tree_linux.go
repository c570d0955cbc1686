package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TreeWriter writes a tree whose entries arrive one at a time, in the order
// a stream gives them (a tar archive), instead of walking an FS as Copy
// does. It keeps Copy's rules, for the same reasons: every name is one
// element under a directory the TreeWriter made itself and reaches only
// through directory handles it holds (openat, O_NOFOLLOW, never through a
// symlink); files are written under a temporary name and renamed into
// place; directories stay the writer's own (mode 0700) until Finish, which
// gives them their owners, modes, xattrs and times deepest first; the
// xattr, setuid and special-file policies and the Budget of CopyOptions
// apply.
//
// Entries are placed by the caller, who decides what replaces what (a
// later tar member of the same name replaces an earlier one): a replacing
// entry is renamed over the earlier one, never written through it.
type TreeWriter struct {
	c     *copier
	umask int       // the process's umask, or -1 if unknown
	dirs  []treeDir // by DirID; 0 is the root
	open  []DirID   // directories whose handle is held, at most maxOpenDirs
	tick  uint64
	err   error // the first fatal error
}

// DirID names a directory a TreeWriter made.
type DirID int32

type treeDir struct {
	parent DirID
	name   string // on the host, in its parent
	gp     string // guest path, for issues
	depth  int32
	fd     int // -1: not held
	used   uint64
	st     *Stat // given at Finish; nil for the root when it was not made here
}

// maxOpenDirs bounds the directory handles a TreeWriter holds at once (a
// tar stream mostly stays in one directory for a while).
const maxOpenDirs = 64

// NewTreeWriter prepares to write a tree into dest, which it creates (it
// must not exist); root is the metadata dest gets at Finish.
func NewTreeWriter(dest string, root *Stat, opt CopyOptions) (*TreeWriter, error) {
	c := &copier{opt: opt, stats: &CopyStats{}, root: os.Geteuid() == 0, topFD: -1, budget: opt.Budget}
	if c.budget == nil {
		c.budget = &Budget{}
	}
	if c.budget.Stopped != "" {
		return nil, fmt.Errorf("%w: the %s cap was reached by an earlier copy", ErrBudget, c.budget.Stopped)
	}
	parent, name := filepath.Dir(dest), filepath.Base(dest)
	if !ValidName(name) {
		return nil, fmt.Errorf("write to %s: not a valid destination name", dest)
	}
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("write to %s: %w", parent, err)
	}
	if err := unix.Mkdirat(pfd, name, 0o700); err != nil {
		unix.Close(pfd)
		if errors.Is(err, unix.EEXIST) {
			err = ErrExist
		}
		return nil, fmt.Errorf("write to %s: %w", dest, err)
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(pfd)
		return nil, fmt.Errorf("write to %s: %w", dest, err)
	}
	c.topFD = fd
	c.stats.Dirs++
	w := &TreeWriter{c: c, umask: umask()}
	// the root's parent handle is held for Finish only: the root's own
	// metadata is set through it, like every directory's
	w.dirs = append(w.dirs, treeDir{parent: -1, name: name, gp: "/", fd: fd, st: root})
	w.dirs = append(w.dirs, treeDir{fd: pfd}) // placeholder entry for the parent handle
	w.dirs[0].parent = 1
	w.dirs[1].parent = -1
	return w, nil
}

// Root returns the directory dest itself.
func (w *TreeWriter) Root() DirID { return 0 }

// Err returns the first error that ended the writing (no space, the
// budget, the context), or nil.
func (w *TreeWriter) Err() error { return w.c.fatal }

// Stats returns what was written so far.
func (w *TreeWriter) Stats() *CopyStats { return w.c.stats }

// Fail records a per-entry problem found by the caller (the entry was not
// written, or not entirely).
func (w *TreeWriter) Fail(gp string, err error) { w.c.fail(gp, err) }

// fd returns a held handle of directory d, opening it (and its parents) one
// element at a time from the root, never through a symlink.
func (w *TreeWriter) fd(d DirID) (int, error) {
	td := &w.dirs[d]
	w.tick++
	td.used = w.tick
	if td.fd >= 0 {
		return td.fd, nil
	}
	pfd, err := w.fd(td.parent)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Openat(pfd, td.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if len(w.open) >= maxOpenDirs {
		k := 0
		for i, o := range w.open {
			if w.dirs[o].used < w.dirs[w.open[k]].used {
				k = i
			}
		}
		unix.Close(w.dirs[w.open[k]].fd)
		w.dirs[w.open[k]].fd = -1
		w.open = slices.Delete(w.open, k, k+1)
	}
	td = &w.dirs[d]
	td.fd = fd
	w.open = append(w.open, d)
	return fd, nil
}

// hostName returns the name an entry gets on the host, noting a guest
// name that is not a valid path element.
func (w *TreeWriter) hostName(name, gp string) string {
	safe := SafeName(name)
	if safe != name {
		w.c.issue(&w.c.stats.Renamed, gp, fmt.Errorf("%w: %q", ErrBadName, name))
	}
	return safe
}

// ok says whether writing goes on; a fatal error or an interrupt stops it.
func (w *TreeWriter) ok() bool {
	if w.c.opt.Context != nil && w.c.fatal == nil {
		w.c.fatal = w.c.opt.Context.Err()
	}
	return w.c.fatal == nil
}

// Mkdir makes the directory name in parent, whose metadata st gets at
// Finish (gp is its guest path, for issues). It returns false when it
// could not be made.
func (w *TreeWriter) Mkdir(parent DirID, name string, st *Stat, gp string) (DirID, bool) {
	if !w.ok() {
		return 0, false
	}
	pfd, err := w.fd(parent)
	if err != nil {
		w.c.failHost(gp, err)
		return 0, false
	}
	host := w.hostName(name, gp)
	if err := unix.Mkdirat(pfd, host, 0o700); err != nil {
		w.c.failHost(gp, err)
		return 0, false
	}
	w.c.stats.Dirs++
	w.dirs = append(w.dirs, treeDir{parent: parent, name: host, gp: gp, depth: w.dirs[parent].depth + 1, fd: -1, st: st})
	return DirID(len(w.dirs) - 1), true
}

// SetDir replaces the metadata directory d gets at Finish (a directory
// named again).
func (w *TreeWriter) SetDir(d DirID, st *Stat) { w.dirs[d].st = st }

// Remove removes the entry name of parent (not a directory) that an entry
// placed later replaces.
func (w *TreeWriter) Remove(parent DirID, name string, gp string) bool {
	pfd, err := w.fd(parent)
	if err == nil {
		err = unix.Unlinkat(pfd, SafeName(name), 0)
	}
	if err != nil {
		w.c.failHost(gp, err)
		return false
	}
	return true
}

// RemoveDir removes the empty directory d, which an entry placed later
// replaces.
func (w *TreeWriter) RemoveDir(d DirID, gp string) bool {
	td := &w.dirs[d]
	if td.fd >= 0 {
		unix.Close(td.fd)
		td.fd = -1
		w.open = slices.DeleteFunc(w.open, func(o DirID) bool { return o == d })
	}
	pfd, err := w.fd(td.parent)
	if err == nil {
		err = unix.Unlinkat(pfd, td.name, unix.AT_REMOVEDIR)
	}
	if err != nil {
		w.c.failHost(gp, err)
		return false
	}
	w.dirs[d].st = nil // nothing to finish
	return true
}

// OutFile is a regular file being written by a TreeWriter.
type OutFile struct {
	w       *TreeWriter
	parent  DirID
	name    string
	tmp     string
	fd      int
	st      *Stat
	gp      string
	replace bool
	modeSet bool  // created with its final mode
	written int64 // end of the last write
}

// Create starts the regular file name in parent (under a temporary name
// until Close), with metadata st; replace lets it replace an earlier entry
// of the same name. It returns nil when it could not be created.
func (w *TreeWriter) Create(parent DirID, name string, st *Stat, gp string, replace bool) *OutFile {
	if !w.ok() {
		return nil
	}
	pfd, err := w.fd(parent)
	if err != nil {
		w.c.failHost(gp, err)
		return nil
	}
	tmp := tempName()
	// made with its final permissions when the umask leaves them whole
	// (no chmod at Close); setuid, setgid and sticky bits always by chmod,
	// after the owner
	perm, modeSet := uint32(0o600), false
	if m := w.c.mode(st); m&^0o777 == 0 && w.umask >= 0 && m&uint32(w.umask) == 0 {
		perm, modeSet = m, true
	}
	fd, err := unix.Openat(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		w.c.failHost(gp, err)
		return nil
	}
	return &OutFile{w: w, parent: parent, name: w.hostName(name, gp), tmp: tmp, fd: fd, st: st, gp: gp, replace: replace, modeSet: modeSet}
}

// umask returns the process's umask (from /proc/self/status, which reads
// it without changing it), or -1.
func umask() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil && m <= 0o777 {
				return int(m)
			}
		}
	}
	return -1
}

// WriteAt writes file bytes at off (pages of zeros are left as holes),
// within the Budget. An error ends the whole writing.
func (f *OutFile) WriteAt(p []byte, off int64) error {
	c := f.w.c
	if !f.w.ok() {
		return c.fatal
	}
	if b := c.budget; b.MaxRead > 0 && b.Read+int64(len(p)) > b.MaxRead {
		b.Stopped = "read"
		c.fatal = fmt.Errorf("%w: %d bytes of file data read, the cap is %d", ErrBudget, b.Read, b.MaxRead)
		return c.fatal
	}
	c.budget.Read += int64(len(p))
	if err := c.writeNonZero(f.fd, p, off); err != nil {
		c.fatal = err
		if !errors.Is(err, ErrBudget) {
			c.fatal = fmt.Errorf("writing %s: %w", f.gp, err)
		}
		return c.fatal
	}
	f.written = max(f.written, off+int64(len(p)))
	c.progress()
	return nil
}

// Close finishes the file: its size, metadata and name. readErr, if not
// nil, says what of its content could not be read (the file is still
// written, and listed in CopyStats.Errors).
func (f *OutFile) Close(readErr error) {
	w, c := f.w, f.w.c
	pfd, err := w.fd(f.parent)
	done := false
	defer func() {
		unix.Close(f.fd)
		if !done && err == nil {
			unix.Unlinkat(pfd, f.tmp, 0)
		}
	}()
	if err != nil || !w.ok() {
		return
	}
	if f.written != f.st.Size {
		if err := unix.Ftruncate(f.fd, f.st.Size); err != nil {
			c.failHost(f.gp, err)
			return
		}
	}
	c.setMetaMode(f.fd, f.st, f.gp, !f.modeSet)
	c.opt.Replace = f.replace
	if err := c.put(pfd, f.tmp, f.name); err != nil {
		c.failHost(f.gp, err)
		return
	}
	done = true
	c.stats.Files++
	c.setTimes(pfd, f.name, f.st, f.gp)
	if readErr != nil {
		c.fail(f.gp, readErr)
	}
	c.progress()
}

// Discard abandons the file: nothing of it stays.
func (f *OutFile) Discard() {
	unix.Close(f.fd)
	if pfd, err := f.w.fd(f.parent); err == nil {
		unix.Unlinkat(pfd, f.tmp, 0)
	}
}

// Symlink makes the symlink name in parent, pointing to target.
func (w *TreeWriter) Symlink(parent DirID, name, target string, st *Stat, gp string, replace bool) {
	if pfd, ok := w.dirFor(parent, gp); ok {
		w.c.opt.Replace = replace
		w.c.symlinkTo(pfd, w.hostName(name, gp), target, st, gp)
	}
}

// Special makes a device node, FIFO or socket (only with
// CopyOptions.Specials; otherwise it is listed in CopyStats.Skipped).
func (w *TreeWriter) Special(parent DirID, name string, st *Stat, gp string, replace bool) {
	if pfd, ok := w.dirFor(parent, gp); ok {
		w.c.opt.Replace = replace
		w.c.copySpecial(pfd, w.hostName(name, gp), st, gp)
	}
}

// Link makes name in parent a hard link to the entry toName of directory
// to, which the writer wrote.
func (w *TreeWriter) Link(parent DirID, name string, to DirID, toName, gp string, replace bool) {
	pfd, ok := w.dirFor(parent, gp)
	if !ok {
		return
	}
	tfd, err := w.fd(to)
	if err == nil {
		pfd, err = w.fd(parent) // the handle may have been let go
	}
	if err != nil {
		w.c.failHost(gp, err)
		return
	}
	w.c.opt.Replace = replace
	host := w.hostName(name, gp)
	if err := w.c.create(pfd, host, func(at string) error { return unix.Linkat(tfd, SafeName(toName), pfd, at, 0) }); err != nil {
		w.c.failHost(gp, err)
		return
	}
	w.c.stats.HardLinks++
}

func (w *TreeWriter) dirFor(parent DirID, gp string) (int, bool) {
	if !w.ok() {
		return -1, false
	}
	pfd, err := w.fd(parent)
	if err != nil {
		w.c.failHost(gp, err)
		return -1, false
	}
	return pfd, true
}

// Finish gives every directory made its owner, mode, xattrs and times,
// deepest first (each still reached through directories that are the
// writer's own), and lets go of the handles. It returns what was written
// and the error that ended the writing, if any.
func (w *TreeWriter) Finish() (*CopyStats, error) {
	order := make([]DirID, 0, len(w.dirs))
	for d := range w.dirs {
		if d != 1 && w.dirs[d].st != nil {
			order = append(order, DirID(d))
		}
	}
	slices.SortStableFunc(order, func(a, b DirID) int { return int(w.dirs[b].depth - w.dirs[a].depth) })
	for _, d := range order {
		td := w.dirs[d]
		pfd, err := w.fd(td.parent)
		if err != nil {
			w.c.fail(td.gp, err)
			continue
		}
		fd, err := unix.Openat(pfd, td.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			w.c.fail(td.gp, err)
			continue
		}
		w.c.setMeta(fd, td.st, td.gp)
		unix.Close(fd)
		w.c.setTimes(pfd, td.name, td.st, td.gp)
	}
	for i := range w.dirs {
		if w.dirs[i].fd >= 0 {
			unix.Close(w.dirs[i].fd)
			w.dirs[i].fd = -1
		}
	}
	w.open = nil
	return w.c.stats, w.c.fatal
}

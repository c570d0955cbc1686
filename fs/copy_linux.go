package fs

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Copy copies the node src, found at srcPath in the guest, out to the host
// path dest: a file, symlink or special file, or with opt.Recursive a whole
// tree (orphans of the root included, see WithOrphans). If dest is an
// existing directory the copy is made inside it under srcPath's base name
// (the root's content goes straight into it); otherwise dest is created,
// and never overwritten.
//
// Copy is written for hostile input on a host where it may run as root.
// Every name from the guest is one path element under a directory that
// Copy created itself and holds open: names that are not valid elements
// are written as their SafeName; files are created with O_EXCL|O_NOFOLLOW
// under a temporary name and renamed without replacing; directories are
// made by Copy and entered with O_NOFOLLOW, so nothing is ever written
// through a symlink, the guest's or anyone's. Symlinks are recreated, never
// followed. Holes stay holes, and only the file's data extents are read
// (Layout), within opt.Budget. A regular file reached under several names
// is copied once and hard-linked under the others, whatever its link count
// says.
//
// Directories stay owned by the user running Copy, mode 0700, until the
// whole copy is written: only then, deepest first, do they get their
// owners (which may be guest uids that are host users too), modes, xattrs
// and times. So no other host user can enter or change a directory while
// Copy still writes into it or makes hard links through it.
//
// A problem with one node is recorded in CopyStats and the copy goes on;
// the error returned is a failure of the whole copy (dest unusable, no
// space, the budget reached).
func Copy(f FS, src Node, srcPath string, dest string, opt CopyOptions) (*CopyStats, error) {
	c := &copier{f: WithOrphans(f), opt: opt, stats: &CopyStats{}, root: os.Geteuid() == 0,
		links: map[Node]*linked{}, seen: map[Node]bool{}, topFD: -1, budget: opt.Budget}
	if c.budget == nil {
		c.budget = &Budget{}
	}
	if c.budget.Stopped != "" {
		return c.stats, fmt.Errorf("%w: the %s cap was reached by an earlier copy", ErrBudget, c.budget.Stopped)
	}
	st, err := c.f.Stat(src)
	if err != nil {
		return c.stats, fmt.Errorf("copy %s: %w", srcPath, err)
	}
	if st.Mode.IsDir() && !opt.Recursive {
		return c.stats, fmt.Errorf("copy %s: is a directory (copy it recursively)", srcPath)
	}
	srcPath = path.Clean("/" + srcPath)
	parent, name, into := filepath.Dir(dest), filepath.Base(dest), false
	switch di, err := os.Stat(dest); {
	case err == nil && di.IsDir():
		parent, name = dest, SafeName(path.Base(srcPath))
		into = srcPath == "/"
	case err == nil && !opt.Replace:
		return c.stats, fmt.Errorf("copy to %s: %w", dest, ErrExist)
	case err == nil && !ValidName(name):
		return c.stats, fmt.Errorf("copy to %s: not a valid destination name", dest)
	case err == nil:
		// Replace: the copy is put in its place
	case !errors.Is(err, iofs.ErrNotExist):
		return c.stats, fmt.Errorf("copy to %s: %w", dest, err)
	case !ValidName(name):
		return c.stats, fmt.Errorf("copy to %s: not a valid destination name", dest)
	}
	fd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return c.stats, fmt.Errorf("copy to %s: %w", parent, err)
	}
	defer unix.Close(fd)
	c.topFD = fd
	if into {
		c.seen[src] = true
		c.copyChildren(fd, src, "", "", 0)
	} else {
		c.copyNode(fd, name, src, st, srcPath, name, 0)
	}
	c.finishDirs()
	return c.stats, c.fatal
}

type copier struct {
	f     FS
	opt   CopyOptions
	stats *CopyStats
	root  bool // running as root: owners, all xattrs
	// links maps a regular file with data, or any node with several links,
	// to its first copy.
	links map[Node]*linked
	seen  map[Node]bool // directories copied
	// dirs holds the directories made, deepest first (in the order their
	// content was complete), for finishDirs.
	dirs   []madeDir
	topFD  int
	budget *Budget
	buf    []byte
	fatal  error
}

// linked is the first copy of a node: its path relative to topFD, and the
// number of names it was reached by.
type linked struct {
	rel   string
	names uint32
}

// madeDir is a directory Copy made: its path relative to topFD and its
// guest metadata, set by finishDirs.
type madeDir struct {
	rel, gp string
	st      *Stat
}

func (c *copier) issue(list *[]CopyIssue, p string, err error) {
	if len(*list) >= maxIssues {
		c.stats.Dropped++
		return
	}
	*list = append(*list, CopyIssue{Path: p, Err: err})
}

func (c *copier) fail(p string, err error) { c.issue(&c.stats.Errors, p, err) }

// hostFatal reports whether a host error ends the whole copy.
func hostFatal(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EIO)
}

// failHost records a host-side error, ending the copy if it is fatal.
func (c *copier) failHost(p string, err error) {
	if hostFatal(err) {
		c.fatal = fmt.Errorf("copy %s: %w", p, err)
		return
	}
	if errors.Is(err, unix.EEXIST) {
		err = ErrExist
	}
	c.fail(p, err)
}

func (c *copier) progress() {
	if c.opt.Progress != nil {
		c.opt.Progress(c.stats.Bytes, c.stats.Files)
	}
	if c.opt.Context != nil && c.fatal == nil {
		c.fatal = c.opt.Context.Err()
	}
}

// copyNode copies node n as name in the directory dirFD. rel is its path
// relative to topFD, gp its path in the guest.
func (c *copier) copyNode(dirFD int, name string, n Node, st *Stat, gp, rel string, depth int) {
	if st == nil {
		var err error
		if st, err = c.f.Stat(n); err != nil {
			c.fail(gp, err)
			return
		}
	}
	shared := !st.Mode.IsDir() && (st.Nlink > 1 || st.Mode.IsRegular() && st.Size > 0)
	if shared {
		if first, ok := c.links[n]; ok {
			first.names++
			if err := c.create(dirFD, name, func(at string) error { return unix.Linkat(c.topFD, first.rel, dirFD, at, 0) }); err == nil {
				c.stats.HardLinks++
				if first.names > st.Nlink {
					c.issue(&c.stats.Aliased, gp, ErrAliased)
				}
				return
			} else if hostFatal(err) || errors.Is(err, unix.EEXIST) {
				c.failHost(gp, err)
				return
			}
			// No hard links here (another filesystem, a limit): copy again,
			// within the budget.
		}
	}
	ok := false
	switch t := st.Mode.Type(); {
	case t == iofs.ModeDir:
		c.copyDir(dirFD, name, n, st, gp, rel, depth)
		return
	case t == 0:
		ok = c.copyFile(dirFD, name, n, st, gp)
	case t == iofs.ModeSymlink:
		ok = c.copySymlink(dirFD, name, n, st, gp)
	default:
		ok = c.copySpecial(dirFD, name, st, gp)
	}
	if ok && shared {
		if _, dup := c.links[n]; !dup {
			c.links[n] = &linked{rel: rel, names: 1}
		}
	}
}

func (c *copier) copyDir(dirFD int, name string, n Node, st *Stat, gp, rel string, depth int) {
	switch {
	case c.seen[n]:
		c.fail(gp, ErrCycle)
		return
	case depth >= MaxDepth:
		c.fail(gp, ErrTooDeep)
		return
	}
	c.seen[n] = true
	existed := false
	if err := unix.Mkdirat(dirFD, name, 0o700); err != nil {
		if !c.opt.Replace || !errors.Is(err, unix.EEXIST) {
			c.failHost(gp, err)
			return
		}
		existed = true // entered below, never through a symlink
	}
	fd, err := unix.Openat(dirFD, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		c.failHost(gp, err)
		return
	}
	c.stats.Dirs++
	c.copyChildren(fd, n, gp, rel, depth)
	unix.Close(fd)
	if !existed {
		c.dirs = append(c.dirs, madeDir{rel: rel, gp: gp, st: st})
	}
}

// finishDirs gives the directories made their owners, modes, xattrs and
// times, deepest first, once everything is written. Each is reached from
// topFD through directories that are still Copy's own (mode 0700), one
// element at a time and never through a symlink.
func (c *copier) finishDirs() {
	for _, d := range c.dirs {
		parent, base := path.Split(d.rel)
		pfd, err := openBeneath(c.topFD, strings.TrimSuffix(parent, "/"))
		if err != nil {
			c.fail(d.gp, err)
			continue
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			c.fail(d.gp, err)
		} else {
			c.setMeta(fd, d.st, d.gp)
			unix.Close(fd)
			c.setTimes(pfd, base, d.st, d.gp)
		}
		if pfd != c.topFD {
			unix.Close(pfd)
		}
	}
	c.dirs = nil
}

// openBeneath opens the directory rel (slash-separated, "" for dirFD
// itself) under dirFD one element at a time, never following a symlink.
// It returns dirFD itself for "".
func openBeneath(dirFD int, rel string) (int, error) {
	fd := dirFD
	for _, el := range strings.Split(rel, "/") {
		if el == "" || el == "." {
			continue
		}
		if el == ".." {
			if fd != dirFD {
				unix.Close(fd)
			}
			return -1, ErrBadName
		}
		next, err := unix.Openat(fd, el, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if fd != dirFD {
			unix.Close(fd)
		}
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func (c *copier) copyChildren(fd int, n Node, gp, rel string, depth int) {
	ents, err := c.f.ReadDir(n)
	if err != nil {
		c.fail(gp+"/", err)
	}
	for _, e := range ents {
		if c.opt.Context != nil && c.fatal == nil {
			c.fatal = c.opt.Context.Err()
		}
		if c.fatal != nil {
			return
		}
		name := SafeName(e.Name)
		cgp := strings.TrimSuffix(gp, "/") + "/" + name
		if name != e.Name {
			c.issue(&c.stats.Renamed, cgp, fmt.Errorf("%w: %q", ErrBadName, e.Name))
		}
		crel := name
		if rel != "" {
			crel = rel + "/" + name
		}
		c.copyNode(fd, name, e.Node, nil, cgp, crel, depth+1)
	}
}

// tempName returns a fresh name for a file being written.
func tempName() string {
	var b [8]byte
	rand.Read(b[:])
	return ".vzsalvage-" + hex.EncodeToString(b[:]) + ".tmp"
}

func (c *copier) copyFile(dirFD int, name string, n Node, st *Stat, gp string) bool {
	file, err := c.f.Open(n)
	if err != nil {
		c.fail(gp, err)
		return false
	}
	tmp := tempName()
	fd, err := unix.Openat(dirFD, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		c.failHost(gp, err)
		return false
	}
	done := false
	defer func() {
		unix.Close(fd)
		if !done {
			unix.Unlinkat(dirFD, tmp, 0)
		}
	}()
	readErr := c.copyData(fd, file, c.dataRanges(n, st))
	if c.fatal != nil {
		return false
	}
	if err := unix.Ftruncate(fd, st.Size); err != nil {
		c.failHost(gp, err)
		return false
	}
	c.setMeta(fd, st, gp)
	if err := c.put(dirFD, tmp, name); err != nil {
		c.failHost(gp, err)
		return false
	}
	done = true
	c.stats.Files++
	c.setTimes(dirFD, name, st, gp)
	if readErr != nil {
		c.fail(gp, readErr)
	}
	c.progress()
	return true
}

// put renames tmp to name in dirFD: over what is there with
// CopyOptions.Replace (a directory there stays, and the rename fails),
// never replacing anything without it.
func (c *copier) put(dirFD int, tmp, name string) error {
	if c.opt.Replace {
		return unix.Renameat(dirFD, tmp, dirFD, name)
	}
	return renameNoReplace(dirFD, tmp, name)
}

// create makes a node named name in dirFD with mk (a symlink, a device
// node, a hard link), which must fail if the name exists: with
// CopyOptions.Replace it makes it under a temporary name and puts it in
// place of what is there.
func (c *copier) create(dirFD int, name string, mk func(at string) error) error {
	if !c.opt.Replace {
		return mk(name)
	}
	tmp := tempName()
	if err := mk(tmp); err != nil {
		return err
	}
	if err := c.put(dirFD, tmp, name); err != nil {
		unix.Unlinkat(dirFD, tmp, 0)
		return err
	}
	return nil
}

// renameNoReplace renames tmp to name in dirFD unless name exists.
func renameNoReplace(dirFD int, tmp, name string) error {
	err := unix.Renameat2(dirFD, tmp, dirFD, name, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A filesystem without RENAME_NOREPLACE: link, then unlink.
		if err = unix.Linkat(dirFD, tmp, dirFD, name, 0); err == nil {
			unix.Unlinkat(dirFD, tmp, 0)
		}
	}
	return err
}

// dataRanges returns the file's data ranges, sorted, merged and clipped
// to its size; all of it when the layout is unknown or inline. What lies
// outside them is a hole.
func (c *copier) dataRanges(n Node, st *Stat) [][2]int64 {
	lay, err := c.f.Layout(n)
	if err != nil || lay == nil || lay.Inline {
		if st.Size <= 0 {
			return nil
		}
		return [][2]int64{{0, st.Size}}
	}
	var rs [][2]int64
	for _, e := range lay.Data {
		if e.Physical < 0 || e.Length <= 0 || e.Logical < 0 || e.Logical >= st.Size {
			continue
		}
		rs = append(rs, [2]int64{e.Logical, e.Logical + min(e.Length, st.Size-e.Logical)})
	}
	slices.SortFunc(rs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	out := rs[:0]
	for _, r := range rs {
		if k := len(out); k > 0 && r[0] <= out[k-1][1] {
			out[k-1][1] = max(out[k-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

const copyChunk = 1 << 20

// copyData copies the ranges of file to fd, writing only pages that are
// not all zero. It returns the first read error (the copy goes on past it).
func (c *copier) copyData(fd int, file File, ranges [][2]int64) error {
	if c.buf == nil {
		c.buf = make([]byte, copyChunk)
	}
	var readErr error
	for _, r := range ranges {
		for pos := r[0]; pos < r[1]; {
			k := int(min(int64(len(c.buf)), r[1]-pos))
			if b := c.budget; b.MaxRead > 0 && b.Read+int64(k) > b.MaxRead {
				b.Stopped = "read"
				c.fatal = fmt.Errorf("%w: %d bytes of file data read, the cap is %d", ErrBudget, b.Read, b.MaxRead)
				return readErr
			}
			c.budget.Read += int64(k)
			b := c.buf[:k]
			m, err := file.ReadAt(b, pos)
			if err != nil && err != io.EOF && readErr == nil {
				readErr = fmt.Errorf("reading at %d: %w", pos, err)
			}
			if m < k {
				clear(b[m:])
				if err == io.EOF || err == nil {
					if readErr == nil {
						readErr = fmt.Errorf("file data ends at %d, before its size", pos+int64(m))
					}
					b = b[:m]
					k = len(b)
					if k == 0 {
						break
					}
				}
			}
			if err := c.writeNonZero(fd, b, pos); err != nil {
				c.fatal = err
				if !errors.Is(err, ErrBudget) {
					c.fatal = fmt.Errorf("writing: %w", err)
				}
				return readErr
			}
			pos += int64(k)
			c.progress()
		}
	}
	return readErr
}

const page = 4096

var zeroPage [page]byte

// writeNonZero writes the pages of b that are not all zero at off.
func (c *copier) writeNonZero(fd int, b []byte, off int64) error {
	for i := 0; i < len(b); {
		if isZero(b[i:min(i+page, len(b))]) {
			i += page
			continue
		}
		j := i + page
		for j < len(b) && !isZero(b[j:min(j+page, len(b))]) {
			j += page
		}
		j = min(j, len(b))
		if bu := c.budget; bu.MaxWrite > 0 && bu.Written+int64(j-i) > bu.MaxWrite {
			bu.Stopped = "write"
			return fmt.Errorf("%w: %d bytes of file data written, the cap is %d", ErrBudget, bu.Written, bu.MaxWrite)
		}
		for i < j {
			n, err := unix.Pwrite(fd, b[i:j], off+int64(i))
			if err != nil {
				return err
			}
			if n == 0 {
				return io.ErrShortWrite
			}
			i += n
			c.stats.Bytes += int64(n)
			c.budget.Written += int64(n)
		}
	}
	return nil
}

func isZero(b []byte) bool {
	return string(b) == string(zeroPage[:len(b)])
}

func (c *copier) copySymlink(dirFD int, name string, n Node, st *Stat, gp string) bool {
	target, err := c.f.ReadLink(n)
	if err != nil {
		c.fail(gp, err)
		return false
	}
	return c.symlinkTo(dirFD, name, target, st, gp)
}

// symlinkTo makes the symlink name in dirFD, pointing to target.
func (c *copier) symlinkTo(dirFD int, name, target string, st *Stat, gp string) bool {
	if target == "" || len(target) >= maxTarget || strings.IndexByte(target, 0) >= 0 {
		c.fail(gp, fmt.Errorf("%w: bad symlink target %q", ErrDamaged, target))
		return false
	}
	if err := c.create(dirFD, name, func(at string) error { return unix.Symlinkat(target, dirFD, at) }); err != nil {
		c.failHost(gp, err)
		return false
	}
	c.stats.Symlinks++
	if c.opt.Owners && c.root {
		if err := unix.Fchownat(dirFD, name, int(st.UID), int(st.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			c.fail(gp, err)
		}
	}
	c.setTimes(dirFD, name, st, gp)
	return true
}

func (c *copier) copySpecial(dirFD int, name string, st *Stat, gp string) bool {
	var kind uint32
	switch t := st.Mode.Type(); {
	case t&iofs.ModeNamedPipe != 0:
		kind = unix.S_IFIFO
	case t&iofs.ModeSocket != 0:
		kind = unix.S_IFSOCK
	case t&iofs.ModeCharDevice != 0:
		kind = unix.S_IFCHR
	case t&iofs.ModeDevice != 0:
		kind = unix.S_IFBLK
	default:
		c.fail(gp, fmt.Errorf("%w: unknown file type %v", ErrDamaged, t))
		return false
	}
	if !c.opt.Specials {
		c.issue(&c.stats.Skipped, gp, ErrSkipped)
		return false
	}
	if err := c.create(dirFD, name, func(at string) error { return unix.Mknodat(dirFD, at, kind|0o600, int(st.Rdev)) }); err != nil {
		c.failHost(gp, err)
		return false
	}
	c.stats.Specials++
	if c.opt.Owners && c.root {
		if err := unix.Fchownat(dirFD, name, int(st.UID), int(st.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			c.fail(gp, err)
		}
	}
	if err := unix.Fchmodat(dirFD, name, c.mode(st), 0); err != nil {
		c.fail(gp, err)
	}
	c.setTimes(dirFD, name, st, gp)
	return true
}

// mode returns the permission bits to set.
func (c *copier) mode(st *Stat) uint32 {
	m := uint32(st.Mode.Perm())
	if st.Mode&iofs.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	if c.opt.SetID {
		if st.Mode&iofs.ModeSetuid != 0 {
			m |= unix.S_ISUID
		}
		if st.Mode&iofs.ModeSetgid != 0 {
			m |= unix.S_ISGID
		}
	}
	return m
}

// setMeta sets owner, mode and xattrs on an open file or directory.
func (c *copier) setMeta(fd int, st *Stat, gp string) { c.setMetaMode(fd, st, gp, true) }

// setMetaMode is setMeta; chmod false leaves the mode as the file was
// created with (the caller made it with c.mode(st) exactly).
func (c *copier) setMetaMode(fd int, st *Stat, gp string, chmod bool) {
	if c.opt.Owners && c.root {
		if err := unix.Fchown(fd, int(st.UID), int(st.GID)); err != nil {
			c.fail(gp, err)
		}
	}
	if chmod {
		if err := unix.Fchmod(fd, c.mode(st)); err != nil {
			c.fail(gp, err)
		}
	}
	names := make([]string, 0, len(st.Xattrs))
	for k := range st.Xattrs {
		if c.xattrAllowed(k) {
			names = append(names, k)
		} else {
			c.stats.XattrsSkipped++
		}
	}
	slices.Sort(names)
	for _, k := range names {
		if err := unix.Fsetxattr(fd, k, st.Xattrs[k], 0); err != nil {
			c.fail(gp, fmt.Errorf("xattr %s: %w", k, err))
		}
	}
}

// xattrAllowed reports whether the extended attribute k is to be restored:
// by the XattrMode, and never a file capability on a file whose owner is
// not the guest's (it would grant the capability to whoever the host says
// owns the file, or to anyone who may run it).
func (c *copier) xattrAllowed(k string) bool {
	switch {
	case c.opt.Xattrs == XattrsNone:
		return false
	case SafeXattr(k):
		return true
	case c.opt.Xattrs != XattrsAll || !c.root:
		return false
	case k == xattrCapability:
		return c.opt.Owners
	}
	return true
}

// setTimes sets atime and mtime of name in dirFD, never through a symlink.
func (c *copier) setTimes(dirFD int, name string, st *Stat, gp string) {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	for i, t := range []time.Time{st.Atime, st.Mtime} {
		if !t.IsZero() {
			ts[i] = unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
		}
	}
	if err := unix.UtimesNanoAt(dirFD, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		c.fail(gp, err)
	}
}

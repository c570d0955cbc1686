package ctar

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"strings"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Restorer writes a container's tree out while Scan reads its stream, so
// that the stream is decoded once: each member as it passes, placed as
// NewFS places it (a later member replaces an earlier one of the same
// name, ".." never climbs, nothing is placed under a non-directory, a hard
// link names a file written before it), through an fs.TreeWriter (Copy's
// confinement rules: held directory handles, O_NOFOLLOW, temporary names,
// directories handed over at the end, the xattr and special-file policies,
// the Budget). The damage is judged afterwards, from the index.
type Restorer struct {
	f    *FS
	w    *fs.TreeWriter
	dirs map[fs.Node]fs.DirID
	out  *fs.OutFile // the regular file being written
	outM *Member
	// frag is the fragment being written (Index.Fragments), which starts
	// at stream offset fragOff, with fragSt its metadata.
	frag    *fs.OutFile
	fragOff int64
	fragSt  *fs.Stat
	written []Fragment // the fragments written
	noLF    bool       // lost+found could not be had: no fragment is written
	lf      fs.DirID   // lost+found, once it has a fragment
}

// Fragments returns the fragments written (lost+found/@OFFSET), in stream
// order.
func (r *Restorer) Fragments() []Fragment { return r.written }

// NewRestorer prepares to write a container's tree into dest (created; it
// must not exist).
func NewRestorer(dest string, opt fs.CopyOptions) (*Restorer, error) {
	f := newFS(nil, 1024)
	st, _ := f.Stat(rootNode)
	w, err := fs.NewTreeWriter(dest, st, opt)
	if err != nil {
		return nil, err
	}
	return &Restorer{f: f, w: w, dirs: map[fs.Node]fs.DirID{rootNode: w.Root()}}, nil
}

// Hook sets the Begin, Data and End hooks of opt to the Restorer's. They
// end the scan when writing must stop for good (no space, an interrupt);
// when the Budget stops the writing, the scan goes on (the index and the
// damage account are still wanted) and Finish returns the error.
func (r *Restorer) Hook(opt *Options) {
	stop := func(err error) error {
		if errors.Is(err, fs.ErrBudget) {
			return nil
		}
		return err
	}
	opt.Begin = func(i int, m *Member) error { return stop(r.begin(i, m)) }
	opt.Data = func(i int, m *Member, p []byte, off int64) error { return stop(r.data(i, m, p, off)) }
	opt.End = func(i int, m *Member) error { return stop(r.end(i, m)) }
	opt.Fragment = func(start int64, p []byte, off int64) error { return stop(r.fragment(start, p, off)) }
	opt.FragmentEnd = func(fr Fragment, keep bool) error { return stop(r.fragmentEnd(fr, keep)) }
}

// Finish completes the writing (directories get their metadata) once Scan
// has returned x, and returns the tree as NewFS(x, nil) would build it
// (to judge every file against the damage), and what was written.
func (r *Restorer) Finish(x *Index) (*FS, *fs.CopyStats, error) {
	if r.out != nil {
		r.out.Close(fmt.Errorf("%w: the scan stopped inside it", fs.ErrDamaged))
		r.out = nil
	}
	if r.frag != nil {
		r.frag.Discard()
		r.frag = nil
	}
	r.dropFragments(x)
	stats, err := r.w.Finish()
	r.f.info.Size = x.Size
	if !x.Damage.Empty() || x.ProblemCount > 0 {
		for n := rootNode + 1; int(n) < len(r.f.nodes); n++ {
			if r.f.nodes[n].m == nil && r.f.isDir(n) {
				r.f.problems[n] = []string{noDirHeader}
			}
		}
	}
	return r.f, stats, err
}

// guestPath returns the path Walk gives the cleaned member path p.
func guestPath(p string) string {
	el := strings.Split(p, "/")
	for i, e := range el {
		el[i] = fs.SafeName(e)
	}
	return "/" + strings.Join(el, "/")
}

func (r *Restorer) begin(_ int, m *Member) error {
	if m.Config {
		return nil
	}
	f, w := r.f, r.w
	pl := f.place(m, 0, false)
	if !pl.ok {
		return w.Err()
	}
	p, _ := cleanName(m.Name)
	gp := guestPath(p)
	if len(pl.made) > 0 {
		// the directories made are the last ones of the member's path
		el := strings.Split(gp, "/")
		first := len(el) - 1 - len(pl.made)
		for i, md := range pl.made {
			parent, ok := r.dirs[md.parent]
			if !ok {
				break
			}
			st, _ := f.Stat(md.n)
			if id, ok := w.Mkdir(parent, md.name, st, strings.Join(el[:first+i+1], "/")); ok {
				r.dirs[md.n] = id
			}
		}
	}
	st, err := f.Stat(pl.n)
	if err != nil {
		return nil
	}
	if pl.again {
		if d, ok := r.dirs[pl.n]; ok {
			w.SetDir(d, st)
		}
		return w.Err()
	}
	parent, ok := r.dirs[pl.dir]
	if !ok {
		w.Fail(gp, fmt.Errorf("%w: its directory could not be made", fs.ErrDamaged))
		return w.Err()
	}
	replace := false
	if pl.old != 0 {
		switch {
		case f.isDir(pl.old):
			// an empty directory (a full one is not replaced)
			if d, ok := r.dirs[pl.old]; ok && !w.RemoveDir(d, gp) {
				return w.Err()
			}
			delete(r.dirs, pl.old)
		case st.Mode.IsDir():
			if !w.Remove(parent, pl.name, gp) {
				return w.Err()
			}
		default:
			replace = true
		}
	}
	switch {
	case st.Mode.IsDir():
		if id, ok := w.Mkdir(parent, pl.name, st, gp); ok {
			r.dirs[pl.n] = id
		}
	case m.Type == TypeLink:
		r.link(parent, pl, m, gp, replace)
	case st.Mode.Type() == 0:
		if !hasData(m.Type) {
			w.Fail(gp, fs.ErrNotFile)
			break
		}
		r.out, r.outM = w.Create(parent, pl.name, st, gp, replace), m
	case st.Mode.Type() == iofs.ModeSymlink:
		w.Symlink(parent, pl.name, m.Link(), st, gp, replace)
	default:
		w.Special(parent, pl.name, st, gp, replace)
	}
	return w.Err()
}

// link makes the hard link member m: a second name of the node its target
// names, which the writer wrote at the target's path.
func (r *Restorer) link(parent fs.DirID, pl placement, m *Member, gp string, replace bool) {
	if r.f.nodes[pl.n].m == m {
		// its target is not a file of the archive: as Copy, which cannot
		// open it
		r.w.Fail(gp, fs.ErrNotFile)
		return
	}
	t, _ := cleanName(m.Link())
	dir, base := rootNode, t
	if i := strings.LastIndexByte(t, '/'); i >= 0 {
		dir, _ = r.f.lookup(t[:i])
		base = t[i+1:]
	}
	to, ok := r.dirs[dir]
	if !ok {
		r.w.Fail(gp, fmt.Errorf("%w: the directory of its target could not be made", fs.ErrDamaged))
		return
	}
	r.w.Link(parent, pl.name, to, base, gp, replace)
}

func (r *Restorer) data(_ int, m *Member, p []byte, off int64) error {
	if r.out == nil || r.outM != m {
		return nil
	}
	return r.out.WriteAt(p, off)
}

func (r *Restorer) end(_ int, m *Member) error {
	if r.out == nil || r.outM != m {
		return r.w.Err()
	}
	var readErr error
	for _, e := range m.Lost() {
		readErr = fmt.Errorf("%w: bytes %d-%d were lost", fs.ErrDamaged, e.Logical, e.Logical+e.Length)
		break
	}
	r.out.Close(readErr)
	r.out, r.outM = nil, nil
	return r.w.Err()
}

// fragment writes the bytes p at offset off of the fragment that starts
// at stream offset start, as lost+found/@START: a regular file of mode
// 0600, owned by the one who runs the rescue (root's when run as root),
// its times the time of writing: nothing of it comes from the archive but
// its bytes.
func (r *Restorer) fragment(start int64, p []byte, off int64) error {
	if r.frag == nil || r.fragOff != start {
		if r.frag != nil {
			r.frag.Discard()
			r.frag = nil
		}
		if r.noLF {
			return nil
		}
		gp := Fragment{Off: start}.Path()
		d, err := r.lostFound()
		if err != nil {
			r.noLF = true
			r.w.Fail("/"+lostFound, err)
			return r.w.Err()
		}
		r.fragSt = &fs.Stat{Mode: 0o600, UID: uint32(os.Geteuid()), GID: uint32(os.Getegid()), Nlink: 1}
		if r.frag = r.w.Create(d, Fragment{Off: start}.Name(), r.fragSt, gp, false); r.frag == nil {
			return r.w.Err()
		}
		r.lf = d
		r.fragOff = start
	}
	return r.frag.WriteAt(p, off)
}

// fragmentEnd completes (or, when it is not kept, discards) the fragment
// being written.
func (r *Restorer) fragmentEnd(fr Fragment, keep bool) error {
	if r.frag == nil || r.fragOff != fr.Off {
		return r.w.Err()
	}
	if keep {
		r.fragSt.Size = fr.Size
		n := len(r.w.Stats().Errors)
		r.frag.Close(nil)
		if len(r.w.Stats().Errors) == n && r.w.Err() == nil {
			r.written = append(r.written, fr)
		}
	} else {
		r.frag.Discard()
	}
	r.frag = nil
	return r.w.Err()
}

// dropFragments removes the fragments written that x (the scan's final
// account) no longer lists.
func (r *Restorer) dropFragments(x *Index) {
	keep := make(map[int64]bool, len(x.Fragments))
	for _, fr := range x.Fragments {
		keep[fr.Off] = true
	}
	k := 0
	for _, fr := range r.written {
		if keep[fr.Off] {
			r.written[k] = fr
			k++
		} else {
			r.w.Remove(r.lf, fr.Name(), fr.Path())
		}
	}
	r.written = r.written[:k]
}

// lostFound returns the root's lost+found directory, made when the archive
// has none (yet: a member of that name later gives it its metadata, as a
// directory named again). When the archive has something else of that
// name, fragments are not written.
func (r *Restorer) lostFound() (fs.DirID, error) {
	n, ok := r.f.lookup(lostFound)
	if !ok {
		r.begin(-1, &Member{Name: lostFound, Type: TypeDir, Mode: 0o700})
		n, ok = r.f.lookup(lostFound)
	}
	if ok && r.f.isDir(n) {
		if d, ok := r.dirs[n]; ok {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%w: the archive's /%s is not a directory that could be made: the content found without its headers is not written", fs.ErrDamaged, lostFound)
}

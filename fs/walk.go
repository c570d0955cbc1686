package fs

import (
	"errors"
	iofs "io/fs"
)

// MaxDepth bounds how deep Walk and Copy descend.
const MaxDepth = 4096

// Errors Walk passes to its function.
var (
	// ErrCycle: a directory reached a second time (a loop in damaged
	// metadata, or a directory with two names). It is not entered again.
	ErrCycle = errors.New("directory already visited (cycle)")
	// ErrBadName: the entry's name is not a valid path element; the path
	// uses its SafeName.
	ErrBadName = errors.New("name is not a valid path element")
	// ErrTooDeep: the directory lies deeper than MaxDepth.
	ErrTooDeep = errors.New("directory nesting too deep")
)

// WalkFunc is called by Walk for every node. path is slash-separated and
// starts with "/" (the walk's root); e is the entry the node was reached by
// (nil for the root); st is its metadata, or nil when Stat failed. err is
// a problem with this node: Stat's error, ErrCycle, ErrBadName, ErrTooDeep,
// or, in a second call for the same directory, its ReadDir error (the
// entries that could be read are still walked). Returning io/fs.SkipDir
// skips a directory's content, io/fs.SkipAll ends the walk, any other error
// ends it and is returned by Walk.
type WalkFunc func(path string, e *DirEntry, st *Stat, err error) error

// Walk walks the tree under root depth first, in directory order. A node's
// problem is passed to fn and never stops its siblings. When root is the
// filesystem's root, orphans are visited under /lost+found (WithOrphans).
func Walk(f FS, root Node, fn WalkFunc) error {
	w := walker{f: WithOrphans(f), fn: fn, seen: map[Node]bool{}}
	err := w.visit("/", root, nil, 0)
	if err == iofs.SkipDir || err == iofs.SkipAll {
		return nil
	}
	return err
}

type walker struct {
	f    FS
	fn   WalkFunc
	seen map[Node]bool // directories entered
}

func (w *walker) visit(path string, n Node, e *DirEntry, depth int) error {
	st, err := w.f.Stat(n)
	var nameErr error
	if e != nil && !ValidName(e.Name) {
		nameErr = ErrBadName
	}
	if err != nil || !st.Mode.IsDir() {
		if err == nil {
			err = nameErr
		} else if nameErr != nil {
			err = errors.Join(err, nameErr)
		}
		return w.fn(path, e, st, err)
	}
	switch {
	case w.seen[n]:
		return skipped(w.fn(path, e, st, ErrCycle))
	case depth >= MaxDepth:
		return skipped(w.fn(path, e, st, ErrTooDeep))
	}
	w.seen[n] = true
	if err := w.fn(path, e, st, nameErr); err != nil {
		return skipped(err)
	}
	ents, rerr := w.f.ReadDir(n)
	if rerr != nil {
		if err := w.fn(path, e, st, rerr); err != nil {
			return skipped(err)
		}
	}
	prefix := path
	if prefix != "/" {
		prefix += "/"
	}
	for i := range ents {
		c := &ents[i]
		err := w.visit(prefix+SafeName(c.Name), c.Node, c, depth+1)
		if err == iofs.SkipDir {
			return nil // a file asked to skip the rest of its directory
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// skipped turns the SkipDir of a directory's own call into "done with it".
func skipped(err error) error {
	if err == iofs.SkipDir {
		return nil
	}
	return err
}

package fs

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"strings"
)

// MaxSymlinks is how many symbolic links one lookup follows before it
// fails with ErrLoop (Linux allows 40).
const MaxSymlinks = 40

// maxTarget bounds a symlink target that a lookup follows (PATH_MAX).
const maxTarget = 4096

// ErrLoop is returned by lookups that meet more than MaxSymlinks links.
var ErrLoop = errors.New("too many levels of symbolic links")

// Lookup resolves a path in the guest filesystem, from its root, like
// lstat(2): symbolic links in the path's directories are followed (an
// absolute target from the guest's root, never the host's), a final one is
// not. ".." goes to the parent directory, and stays at the root. Orphans
// resolve as "/lost+found/#<node>" (see WithOrphans); names that are not
// valid path elements resolve by their SafeName. Errors are *io/fs.PathError
// wrapping io/fs.ErrNotExist, ErrNotDir, ErrLoop or the reader's error.
func Lookup(f FS, path string) (Node, error) {
	return resolve(WithOrphans(f), path, false)
}

// LookupFollow is Lookup that also follows a final symbolic link, like
// stat(2).
func LookupFollow(f FS, path string) (Node, error) {
	return resolve(WithOrphans(f), path, true)
}

func resolve(f FS, path string, follow bool) (Node, error) {
	fail := func(err error) (Node, error) {
		return 0, &iofs.PathError{Op: "lookup", Path: path, Err: err}
	}
	if strings.IndexByte(path, 0) >= 0 {
		return fail(iofs.ErrInvalid)
	}
	stack := []Node{f.Root()} // the directories walked through, for ".."
	todo := split(path)
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if c == ".." {
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		n, err := child(f, stack[len(stack)-1], c)
		if err != nil {
			return fail(err)
		}
		if len(todo) == 0 && !follow {
			return n, nil
		}
		st, err := f.Stat(n)
		if err != nil {
			return fail(err)
		}
		switch {
		case st.Mode&iofs.ModeSymlink != 0:
			if hops++; hops > MaxSymlinks {
				return fail(ErrLoop)
			}
			target, err := f.ReadLink(n)
			if err != nil {
				return fail(err)
			}
			if target == "" || len(target) > maxTarget || strings.IndexByte(target, 0) >= 0 {
				return fail(fmt.Errorf("%w: bad symlink target %q", ErrDamaged, target))
			}
			if target[0] == '/' {
				stack = stack[:1]
			}
			todo = append(split(target), todo...)
		case len(todo) > 0 && !st.Mode.IsDir():
			return fail(ErrNotDir)
		default:
			stack = append(stack, n)
		}
	}
	return stack[len(stack)-1], nil
}

// split returns the elements of a slash-separated path, without empty and
// "." elements.
func split(path string) []string {
	var out []string
	for _, c := range strings.Split(path, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// child finds name in directory dir: the first entry of that name, or else
// the first whose SafeName it is.
func child(f FS, dir Node, name string) (Node, error) {
	ents, err := f.ReadDir(dir)
	for _, e := range ents {
		if e.Name == name {
			return e.Node, nil
		}
	}
	for _, e := range ents {
		if !ValidName(e.Name) && SafeName(e.Name) == name {
			return e.Node, nil
		}
	}
	if err != nil {
		return 0, err // the name may be in what could not be read
	}
	return 0, iofs.ErrNotExist
}

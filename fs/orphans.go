package fs

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"strconv"
	"sync"
)

// LostFound is the node of the virtual /lost+found directory that
// WithOrphans adds when the filesystem has no lost+found of its own. Only
// the view returned by WithOrphans knows it.
const LostFound Node = ^Node(0)

const lostFoundName = "lost+found"

// WithOrphans returns a view of f that presents its orphans (Orphans) as
// "/lost+found/#<node>", the way e2fsck would reconnect them: inside the
// root's lost+found directory, or inside a virtual one when the root has
// none. A real entry of the same name wins over an orphan. Lookup, Walk,
// IOFS and Copy read filesystems through this view; calling WithOrphans on
// a view returns it unchanged.
//
// An orphan that a Namer (f itself, when it implements one) names is put
// back where it was instead: as an entry of that directory, with Named
// saying where the name was found, when the name is free there and the
// directory is not inside the orphan itself.
func WithOrphans(f FS) FS { return WithNames(f) }

// WithNames is WithOrphans with more namers, asked after f's own (an older
// backup's filesystem, say). Calling it on a view returns the view.
func WithNames(f FS, namers ...Namer) FS {
	if v, ok := f.(*orphanView); ok {
		return v
	}
	if n, ok := f.(Namer); ok {
		namers = append([]Namer{n}, namers...)
	}
	return &orphanView{FS: f, namers: namers}
}

// Namer says what an orphan was called: the directory and name an older
// copy of its directory gives it.
type Namer interface {
	OrphanName(n Node) (OrphanName, bool)
}

// OrphanName is where an orphan was, and what said so.
type OrphanName struct {
	Parent Node
	Name   string
	Source string
}

type orphanView struct {
	FS
	namers  []Namer
	once    sync.Once
	entries []DirEntry               // the orphans as entries of lost+found
	placed  map[Node][]DirEntry      // orphans put back under their names, by directory
	names   map[Node]map[string]bool // names taken in the directories placed into (while loading)
	err     error                    // from Orphans
	lf      Node                     // the directory they appear in (LostFound if virtual)
	lfName  string                   // its name in the root when virtual
}

// maxNamedWalk bounds the nodes looked at to make sure a directory put
// back under a name is not inside itself.
const maxNamedWalk = 1 << 20

func (v *orphanView) load() {
	v.once.Do(func() {
		orphans, err := v.FS.Orphans()
		v.err = err
		for _, n := range orphans {
			t := iofs.ModeIrregular // unknown until Stat says
			if st, err := v.FS.Stat(n); err == nil {
				t = st.Mode.Type()
			}
			if v.place(n, t) {
				continue
			}
			v.entries = append(v.entries, DirEntry{Name: "#" + strconv.FormatUint(uint64(n), 10), Node: n, Type: t, Orphan: true})
		}
		if len(v.entries) == 0 && v.err == nil {
			return
		}
		v.lf, v.lfName = LostFound, lostFoundName
		root := v.FS.Root()
		ents, _ := v.FS.ReadDir(root)
		for _, e := range ents {
			if e.Name != lostFoundName {
				continue
			}
			if st, err := v.FS.Stat(e.Node); err == nil && st.Mode.IsDir() && e.Node != root {
				v.lf, v.lfName = e.Node, ""
			} else {
				v.lfName = lostFoundName + ".orphans" // the name is taken by something else
			}
			break
		}
	})
}

func (v *orphanView) ReadDir(n Node) ([]DirEntry, error) {
	v.load()
	if n == LostFound && v.lfName != "" {
		return append([]DirEntry(nil), v.entries...), v.err
	}
	ents, err := v.FS.ReadDir(n)
	ents = append(ents, v.placed[n]...)
	switch {
	case n == v.FS.Root() && v.lfName != "":
		ents = append(ents, DirEntry{Name: v.lfName, Node: LostFound, Type: iofs.ModeDir})
	case n == v.lf && v.lfName == "" && (len(v.entries) > 0 || v.err != nil):
		taken := make(map[string]bool, len(ents))
		for _, e := range ents {
			taken[e.Name] = true
		}
		for _, e := range v.entries {
			if !taken[e.Name] {
				ents = append(ents, e)
			}
		}
		if v.err != nil {
			err = errors.Join(err, fmt.Errorf("orphans: %w", v.err))
		}
	}
	return ents, err
}

func (v *orphanView) virtual(n Node) bool {
	if n != LostFound {
		return false
	}
	v.load()
	return v.lfName != ""
}

func (v *orphanView) Stat(n Node) (*Stat, error) {
	if v.virtual(n) {
		return &Stat{Node: n, Mode: iofs.ModeDir | 0o700, Nlink: 2}, nil
	}
	return v.FS.Stat(n)
}

func (v *orphanView) Open(n Node) (File, error) {
	if v.virtual(n) {
		return nil, ErrNotFile
	}
	return v.FS.Open(n)
}

func (v *orphanView) ReadLink(n Node) (string, error) {
	if v.virtual(n) {
		return "", ErrNotLink
	}
	return v.FS.ReadLink(n)
}

func (v *orphanView) Layout(n Node) (*Layout, error) {
	if v.virtual(n) {
		return &Layout{}, nil
	}
	return v.FS.Layout(n)
}

// place puts orphan n (of type t) back under the name a namer gives it,
// and reports whether it did.
func (v *orphanView) place(n Node, t iofs.FileMode) bool {
	for _, nm := range v.namers {
		on, ok := nm.OrphanName(n)
		if !ok || !ValidName(on.Name) || on.Parent == n {
			continue
		}
		if st, err := v.FS.Stat(on.Parent); err != nil || !st.Mode.IsDir() {
			continue
		}
		if t.IsDir() && v.inside(on.Parent, n) || v.taken(on.Parent, on.Name) {
			continue
		}
		if v.placed == nil {
			v.placed = map[Node][]DirEntry{}
		}
		v.placed[on.Parent] = append(v.placed[on.Parent], DirEntry{Name: on.Name, Node: n, Type: t, Named: on.Source})
		return true
	}
	return false
}

// taken reports whether dir already has an entry called name (its own or
// one put back); when it has not, the name is taken for the caller.
func (v *orphanView) taken(dir Node, name string) bool {
	if v.names == nil {
		v.names = map[Node]map[string]bool{}
	}
	names := v.names[dir]
	if names == nil {
		names = map[string]bool{}
		ents, _ := v.FS.ReadDir(dir)
		for _, e := range ents {
			names[e.Name] = true
		}
		v.names[dir] = names
	}
	if names[name] {
		return true
	}
	names[name] = true // the caller takes it
	return false
}

// inside reports whether node lies in the tree under dir (or the walk
// that would tell is too long).
func (v *orphanView) inside(node, dir Node) bool {
	seen := map[Node]bool{dir: true}
	queue := []Node{dir}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		ents, _ := v.FS.ReadDir(d)
		for _, e := range ents {
			if e.Node == node {
				return true
			}
			if !e.Type.IsDir() || seen[e.Node] {
				continue
			}
			if len(seen) >= maxNamedWalk {
				return true
			}
			seen[e.Node] = true
			queue = append(queue, e.Node)
		}
	}
	return false
}

// Reach marks in reached every node that can be reached from dir, walking
// each directory once. entries lists a directory's entries to visit (and
// nothing for a node that is no directory); mayBeDir says whether an entry
// is worth reading as a directory (its type says so or is unknown).
func Reach[N comparable](dir N, reached map[N]bool, entries func(dir N, visit func(n N, mayBeDir bool))) {
	queue := []N{dir}
	reached[dir] = true
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		entries(d, func(n N, mayBeDir bool) {
			if !reached[n] {
				reached[n] = true
				if mayBeDir {
					queue = append(queue, n)
				}
			}
		})
	}
}

// Candidate is an unreached inode a reader considers an orphan: its node,
// whether it is a directory, and (for a directory) the parent its ".."
// names.
type Candidate[N ~uint32 | ~uint64] struct {
	Node   N
	Dir    bool
	Parent func() N
}

// OrphanTops orders the orphans among candidates (unreached valid inodes)
// topmost first: directories whose parent is not itself a candidate, then
// whatever those do not reach. walk marks in reached what a directory
// reaches (a Reach over the reader's directories).
func OrphanTops[N ~uint32 | ~uint64](cands []Candidate[N], reached map[N]bool, walk func(N)) []Node {
	isCand := make(map[N]bool, len(cands))
	for _, c := range cands {
		isCand[c.Node] = true
	}
	var out []Node
	for _, c := range cands {
		if c.Dir && !reached[c.Node] {
			if p := c.Parent(); p == c.Node || !isCand[p] {
				out = append(out, Node(c.Node))
				walk(c.Node)
			}
		}
	}
	for _, c := range cands {
		if !reached[c.Node] {
			out = append(out, Node(c.Node))
			if c.Dir {
				walk(c.Node)
			} else {
				reached[c.Node] = true
			}
		}
	}
	return out
}

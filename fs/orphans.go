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
func WithOrphans(f FS) FS {
	if v, ok := f.(*orphanView); ok {
		return v
	}
	return &orphanView{FS: f}
}

type orphanView struct {
	FS
	once    sync.Once
	entries []DirEntry // the orphans as entries of lost+found
	err     error      // from Orphans
	lf      Node       // the directory they appear in (LostFound if virtual)
	lfName  string     // its name in the root when virtual
}

func (v *orphanView) load() {
	v.once.Do(func() {
		orphans, err := v.FS.Orphans()
		v.err = err
		for _, n := range orphans {
			t := iofs.ModeIrregular // unknown until Stat says
			if st, err := v.FS.Stat(n); err == nil {
				t = st.Mode.Type()
			}
			v.entries = append(v.entries, DirEntry{Name: "#" + strconv.FormatUint(uint64(n), 10), Node: n, Type: t})
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

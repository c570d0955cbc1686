package rescue

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/source"
	"github.com/vzsalvage/vzsalvage/volume"
)

// Names from older nights.
//
// A damaged directory block in the newest night leaves the files it named
// without a name (orphans, lost+found/#INODE). An older night's
// filesystem, where that block was whole, names them: the same inode
// number with the same generation (and type and creation time) is the same
// file, and the path it had there puts it back, when the directory it was
// in is, in the newest night, a damaged one and the name is free there.
// The file is then listed with state "metadata" and says where its name
// came from: it may have been renamed since that night.

// oldVolume is a volume of an older night's images.
type oldVolume struct {
	archive string
	v       volume.Volume
}

// olderVolumes discovers the volumes of the older nights' images; the
// files it opens are closed by close.
func olderVolumes(olds []*extract.Result) (vols []oldVolume, close func(), err error) {
	var files []*os.File
	close = func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, o := range olds {
		var disks []volume.Disk
		for _, d := range o.Report.Devices {
			f, err := os.Open(o.Images[d.Name])
			if err != nil {
				close()
				return nil, nil, err
			}
			files = append(files, f)
			disks = append(disks, volume.Disk{Name: d.Name, R: f, Size: d.Size, Damage: d.Damage})
		}
		for _, v := range volume.Discover(disks) {
			vols = append(vols, oldVolume{archive: o.Report.Archives[0].Path, v: v})
		}
	}
	return vols, close, nil
}

// namersFor opens, for volume v of the newest night (its filesystem cur),
// the same volume of the older nights (the same id, filesystem type and
// UUID) as namers, newest night first.
func namersFor(v volume.Volume, cur fs.FS, olds []oldVolume, opt Options) []fs.Namer {
	var out []fs.Namer
	for _, o := range olds {
		if o.v.ID != v.ID || o.v.FS != v.FS || o.v.UUID != v.UUID || v.FS == "" {
			continue
		}
		g, err := source.OpenFS(o.v, source.FSOptions{NoJournal: opt.NoJournal})
		if err != nil {
			continue
		}
		out = append(out, &nightNamer{cur: cur, old: g, archive: o.archive})
	}
	return out
}

// nightNamer names the newest night's orphans from an older night's
// filesystem.
type nightNamer struct {
	cur, old fs.FS
	archive  string
	once     sync.Once
	paths    map[fs.Node]string // orphan → its path in the older night
}

// maxNamerNodes bounds the older filesystem's nodes looked at.
const maxNamerNodes = 4 << 20

// OrphanName implements fs.Namer.
func (n *nightNamer) OrphanName(node fs.Node) (fs.OrphanName, bool) {
	n.once.Do(n.load)
	p, ok := n.paths[node]
	if !ok {
		return fs.OrphanName{}, false
	}
	dir, name := path.Split(p)
	parent, ok := lookupDir(n.cur, dir)
	if !ok {
		return fs.OrphanName{}, false
	}
	// what made the orphan: its directory is damaged in the newest night
	if _, err := n.cur.ReadDir(parent); err == nil {
		return fs.OrphanName{}, false
	}
	return fs.OrphanName{Parent: parent, Name: name,
		Source: fmt.Sprintf("the older backup %s (the same inode and generation, at %s)", filepath.Base(n.archive), p)}, true
}

// load finds, in the older filesystem, the path of every orphan of the
// newest that is the same file there.
func (n *nightNamer) load() {
	orphans, _ := n.cur.Orphans()
	if len(orphans) == 0 {
		return
	}
	want := make(map[fs.Node]*fs.Stat, len(orphans))
	for _, o := range orphans {
		if st, err := n.cur.Stat(o); err == nil {
			want[o] = st
		}
	}
	n.paths = map[fs.Node]string{}
	seen := 0
	errStop := errors.New("enough")
	fs.Walk(n.old, n.old.Root(), func(p string, e *fs.DirEntry, st *fs.Stat, err error) error {
		if seen++; seen > maxNamerNodes {
			return errStop
		}
		if e != nil && e.Orphan {
			return iofs.SkipDir // the older night's own orphans have no name either
		}
		if st == nil || e == nil {
			return nil
		}
		w := want[st.Node]
		if w == nil || n.paths[st.Node] != "" || !sameInode(w, st) {
			return nil
		}
		n.paths[st.Node] = p
		return nil
	})
}

// sameInode reports whether two nights' inodes of one number are the same
// file: the same generation, type and (where recorded) creation time.
func sameInode(a, b *fs.Stat) bool {
	return a.Generation == b.Generation && a.Mode.Type() == b.Mode.Type() &&
		(a.Btime.IsZero() || b.Btime.IsZero() || a.Btime.Equal(b.Btime))
}

// lookupDir resolves a directory path in f, name by name, without
// following links or going through lost+found.
func lookupDir(f fs.FS, p string) (fs.Node, bool) {
	cur := f.Root()
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if c == "" {
			continue
		}
		ents, _ := f.ReadDir(cur)
		found := false
		for _, e := range ents {
			if e.Name == c && e.Type.IsDir() {
				cur, found = e.Node, true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	return cur, true
}

package fstest

import (
	iofs "io/fs"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Visit reads everything a reader reaches (from the root, then from its
// orphans), at most limit nodes, as fuzz targets do: every directory
// listed, the start, middle and end of every regular file, every link,
// and every Layout; it fails on what callers rely on being impossible: an
// extent that is empty or starts before the file, a name that is empty or
// holds a slash or NUL, a read longer than its buffer. Errors are
// expected and ignored.
func Visit(t testing.TB, f fs.FS, limit int) {
	_ = f.Info()
	v := visitor{t: t, f: f, seen: map[fs.Node]bool{}, limit: limit, buf: make([]byte, 64<<10)}
	v.node(f.Root())
	orphans, _ := f.Orphans()
	for _, n := range orphans {
		v.node(n)
	}
}

type visitor struct {
	t     testing.TB
	f     fs.FS
	seen  map[fs.Node]bool
	limit int
	buf   []byte
}

func (v *visitor) node(n fs.Node) {
	if v.seen[n] || len(v.seen) >= v.limit {
		return
	}
	v.seen[n] = true
	st, err := v.f.Stat(n)
	if err != nil {
		return
	}
	if lay, err := v.f.Layout(n); err == nil {
		for _, e := range append(append(append([]fs.Extent(nil), lay.Data...), lay.Meta...), lay.Lost...) {
			if e.Length <= 0 || e.Logical < 0 {
				v.t.Fatalf("node %d: bad extent %+v", n, e)
			}
		}
	}
	switch {
	case st.Mode.IsDir():
		ents, _ := v.f.ReadDir(n)
		for _, e := range ents {
			if e.Name == "" || strings.ContainsAny(e.Name, "/\x00") {
				v.t.Fatalf("node %d: bad name %q", n, e.Name)
			}
			v.node(e.Node)
		}
	case st.Mode.IsRegular():
		fl, err := v.f.Open(n)
		if err != nil {
			return
		}
		for _, off := range []int64{0, fl.Size() / 2, fl.Size() - int64(len(v.buf))} {
			if off >= 0 {
				if k, _ := fl.ReadAt(v.buf, off); k > len(v.buf) {
					v.t.Fatalf("node %d: read %d bytes into %d", n, k, len(v.buf))
				}
			}
		}
	case st.Mode&iofs.ModeSymlink != 0:
		v.f.ReadLink(n)
	}
}

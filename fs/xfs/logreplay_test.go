package xfs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/vzsalvage/vzsalvage/fs"
)

// The dirty-log images are made by testdata/mklog.sh with the real kernel
// (mount, changes, xfs_io shutdown -f) and pinned with the kernel's own
// view of them: after log recovery (.replayed) and with norecovery
// (.ondisk).

// manifestEntry is one line of a manifest: type, size, hash or target.
type manifestEntry struct {
	typ  string
	size int64
	sum  string
}

func loadManifest(t testing.TB, name string) map[string]manifestEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]manifestEntry{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) != 4 {
			t.Fatalf("%s: bad line %q", name, sc.Text())
		}
		var size int64
		fmt.Sscan(f[1], &size)
		m[f[3]] = manifestEntry{f[0], size, f[2]}
	}
	return m
}

// loadDirtyImage returns the bytes of a pinned dirty-log image.
func loadDirtyImage(t testing.TB, v string) []byte {
	t.Helper()
	zb, err := os.ReadFile(filepath.Join("testdata", "dirty-log-"+v+".img.zst"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := zstd.NewReader(bytes.NewReader(zb))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	img, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// readTree lists what the reader sees, as a manifest; bad lists the
// paths read with a problem (on the node, its directory or its data).
func readTree(t testing.TB, f *FS) (tree map[string]manifestEntry, bad map[string]string) {
	t.Helper()
	tree, bad = map[string]manifestEntry{}, map[string]string{}
	var walk func(dir fs.Node, prefix string, depth int)
	walk = func(dir fs.Node, prefix string, depth int) {
		ents, err := f.ReadDir(dir)
		if err != nil {
			bad[prefix+"/"] = err.Error()
		}
		for _, e := range ents {
			p := prefix + e.Name
			st, err := f.Stat(e.Node)
			if err != nil {
				bad[p] = err.Error()
				continue
			}
			if len(st.Problems) > 0 {
				bad[p] = strings.Join(st.Problems, "; ")
			}
			switch st.Mode.Type() {
			case iofs.ModeDir:
				tree[p] = manifestEntry{"d", 0, "-"}
				if depth < 64 {
					walk(e.Node, p+"/", depth+1)
				}
			case iofs.ModeSymlink:
				target, err := f.ReadLink(e.Node)
				if err != nil {
					bad[p] = err.Error()
				}
				tree[p] = manifestEntry{"l", 0, target}
			default:
				data, err := readFile(f, e.Node, st.Size)
				if err != nil {
					bad[p] = err.Error()
				}
				h := sha256.Sum256(data)
				tree[p] = manifestEntry{"f", int64(len(data)), hex.EncodeToString(h[:])}
			}
		}
	}
	walk(f.Root(), "", 0)
	return tree, bad
}

// readFile reads a file whole; the error is the first one met.
func readFile(f *FS, n fs.Node, size int64) ([]byte, error) {
	if size < 0 || size > 64<<20 {
		return nil, errors.New("size out of range")
	}
	fh, err := f.Open(n)
	if err != nil {
		return nil, err
	}
	b := make([]byte, fh.Size())
	k, err := fh.ReadAt(b, 0)
	if err == io.EOF && k == len(b) {
		err = nil
	}
	return b[:k], err
}

func TestLogReplayMatchesKernel(t *testing.T) {
	img := loadDirtyImage(t, "v5")
	want := loadManifest(t, "dirty-log-v5.replayed")
	f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	info := f.Info()
	t.Logf("view %q, problems %q", info.View, info.Problems)
	if info.View != ViewReplayed || !strings.HasPrefix(info.Problems[0], "log replayed: ") {
		t.Fatalf("view %q, problems %q", info.View, info.Problems)
	}
	got, bad := readTree(t, f)
	for p, msg := range bad {
		t.Errorf("%s: %s", p, msg)
	}
	compareTrees(t, got, want)
}

func compareTrees(t testing.TB, got, want map[string]manifestEntry) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: missing", p)
		case g != w:
			t.Errorf("%s: got %v, the kernel %v", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: not in the kernel's tree", p)
		}
	}
}

package volume

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// cacheDir holds images that several tests start from (sgdisk alone takes
// over a second per call); each test works on its own sparse copy.
var (
	cacheDir  string
	cacheMu   sync.Mutex
	cacheMade = map[string]string{}
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "vzsalvage-volume-")
	if err != nil {
		panic(err)
	}
	cacheDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// cached returns a private copy of the image name, made once by mk.
func cached(t *testing.T, name string, mk func(img string)) string {
	t.Helper()
	return cachedSet(t, []string{name}, func(p []string) { mk(p[0]) })[0]
}

// cachedSet returns private copies of a set of images made together, once,
// by mk (which gets empty files to fill).
func cachedSet(t *testing.T, names []string, mk func(paths []string)) []string {
	t.Helper()
	key := strings.Join(names, "+")
	srcs := func() []string {
		cacheMu.Lock()
		defer cacheMu.Unlock()
		if _, ok := cacheMade[key]; ok {
			var out []string
			for _, n := range names {
				out = append(out, filepath.Join(cacheDir, key, n))
			}
			return out
		}
		dir := filepath.Join(cacheDir, key)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range names {
			p := filepath.Join(dir, n)
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			out = append(out, p)
		}
		mk(out)
		cacheMade[key] = dir
		return out
	}()
	var dsts []string
	for i, src := range srcs {
		st, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := sparseFile(t, names[i], st.Size())
		copySparse(t, src, dst, 0, st.Size())
		dsts = append(dsts, dst)
	}
	return dsts
}

// copySparse copies n bytes of src to dst at off, skipping zero blocks
// (dst is zero there).
func copySparse(t testing.TB, src, dst string, off, n int64) {
	t.Helper()
	s, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := make([]byte, 64<<10)
	for p := int64(0); p < n; p += int64(len(b)) {
		k, _ := s.ReadAt(b[:min(int64(len(b)), n-p)], p)
		if !allZero(b[:k]) {
			if _, err := d.WriteAt(b[:k], off+p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// sparseFile creates a sparse file of size bytes in the test's directory.
func sparseFile(t testing.TB, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// openDisk opens an image read-only as a Disk.
func openDisk(t testing.TB, name, path string) Disk {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Disk{Name: name, R: f, Size: st.Size()}
}

// blkid returns what `blkid -p` says about a file (TYPE, UUID, LABEL...).
func blkid(t testing.TB, path string) map[string]string {
	t.Helper()
	out := testutil.Run(t, "blkid", "-p", "-o", "export", path)
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m
}

// patch overwrites len(b) bytes of a file at off (damage for tests).
func patch(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// flipBit flips one bit of a file.
func flipBit(t testing.TB, path string, off int64, bit uint) {
	t.Helper()
	b := readAt(t, path, off, 1)
	b[0] ^= 1 << bit
	patch(t, path, off, b)
}

// readAt reads n bytes of a file at off.
func readAt(t testing.TB, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// sumReader hashes n bytes of r from 0.
func sumReader(t testing.TB, r io.ReaderAt, n int64) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, n)); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// sumFile hashes n bytes of a file from off.
func sumFile(t testing.TB, path string, off, n int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return sumReader(t, io.NewSectionReader(f, off, n), n)
}

// hasNote reports whether a note contains sub.
func hasNote(notes []string, sub string) bool {
	for _, n := range notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// find returns the volume with the given id.
func find(t testing.TB, vols []Volume, id string) Volume {
	t.Helper()
	for _, v := range vols {
		if v.ID == id {
			return v
		}
	}
	var ids []string
	for _, v := range vols {
		ids = append(ids, v.ID)
	}
	t.Fatalf("no volume %q among %v", id, ids)
	return Volume{}
}

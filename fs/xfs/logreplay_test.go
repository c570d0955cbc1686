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
	"os/exec"
	"path/filepath"
	"slices"
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

// TestLogReplayMatchesKernel: the replayed view is the tree the kernel
// sees after its own log recovery, every file byte-identical. v5wrap's
// log has wrapped (its tail lies after its head) and holds inode chunks
// created and freed again (icreate items, cancelled buffers). v5grow's
// log holds a growfs: the new size and AG are only in the log.
func TestLogReplayMatchesKernel(t *testing.T) {
	for _, v := range []string{"v5", "v5wrap", "v5grow"} {
		t.Run(v, func(t *testing.T) {
			img := loadDirtyImage(t, v)
			want := loadManifest(t, "dirty-log-"+v+".replayed")
			f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			info := f.Info()
			t.Logf("view %q, problems %q", info.View, info.Problems)
			if info.View != ViewReplayed || len(info.Problems) != 1 || !strings.HasPrefix(info.Problems[0], "log replayed: ") {
				t.Fatalf("view %q, problems %q", info.View, info.Problems)
			}
			got, bad := readTree(t, f)
			for p, msg := range bad {
				t.Errorf("%s: %s", p, msg)
			}
			compareTrees(t, got, want)
		})
	}
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

func TestLogOnDiskView(t *testing.T) {
	img := loadDirtyImage(t, "v5")
	f, err := Open(bytes.NewReader(img), int64(len(img)), Options{Log: LogOnDisk})
	if err != nil {
		t.Fatal(err)
	}
	info := f.Info()
	if info.View != ViewOnDisk || len(info.Problems) != 1 || !strings.HasPrefix(info.Problems[0], "log is dirty, not replayed") {
		t.Fatalf("view %q, problems %q", info.View, info.Problems)
	}
	got, bad := readTree(t, f)
	for p, msg := range bad {
		t.Errorf("%s: %s", p, msg)
	}
	compareTrees(t, got, loadManifest(t, "dirty-log-v5.ondisk"))
}

// logSpan returns the volume offset of the log and the blocks of its
// tail and head records in a dirty image, and the block halfway between.
func logSpan(t testing.TB, img []byte) (start, tail, head, mid int64) {
	t.Helper()
	f, err := Open(bytes.NewReader(img), int64(len(img)), Options{Log: LogOnDisk})
	if err != nil {
		t.Fatal(err)
	}
	l := &logGeom{f: f, start: f.fsbPos(f.sb.logStart), bbs: int64(f.sb.logBlocks) * f.bs / logBB}
	h, err := l.findHead()
	if err != nil {
		t.Fatal(err)
	}
	tail = int64(uint32(h.tail))
	return l.start, tail, h.blk, (tail + (h.blk-tail+l.bbs)%l.bbs/2) % l.bbs
}

// TestLogDamaged damages the log of the pinned images: a log damaged
// before its head is not replayed (the on-disk view), a torn head record
// is passed over as the kernel does; nothing panics, and every file read
// without a problem is the kernel's replayed or on-disk copy, or the
// kernel's own recovery of the damaged image where it mounts it.
func TestLogDamaged(t *testing.T) {
	for _, v := range []string{"v5", "v5wrap"} {
		t.Run(v, func(t *testing.T) { testLogDamaged(t, v) })
	}
}

func testLogDamaged(t *testing.T, v string) {
	clean := loadDirtyImage(t, v)
	replayed := loadManifest(t, "dirty-log-"+v+".replayed")
	ondisk := loadManifest(t, "dirty-log-"+v+".ondisk")
	start, tail, head, mid := logSpan(t, clean)
	t.Logf("log at %d, tail block %d, head block %d", start, tail, head)
	garbage := func(img []byte, blk, n int64) {
		for i := range n * logBB {
			img[start+blk*logBB+i] = byte(i*7 + i>>9)
		}
	}
	cases := []struct {
		name   string
		damage func([]byte) []byte
		msg    string
		pin    string // the kernel's recovery of this image, pinned
	}{
		{"garbage mid-log", func(b []byte) []byte { garbage(b, mid, 8); return b }, "log is dirty and damaged", ""},
		{"garbage at the tail", func(b []byte) []byte { garbage(b, tail, 1); return b }, "log is dirty and damaged", ""},
		{"torn head", func(b []byte) []byte { garbage(b, head+1, 1); return b }, "log replayed", "dirty-log-" + v + ".tornhead"},
		{"bit flip mid-log", func(b []byte) []byte { b[start+mid*logBB+100] ^= 1; return b }, "log is dirty and damaged", ""},
		{"truncated mid-log", func(b []byte) []byte { return b[:start+mid*logBB] }, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := c.damage(bytes.Clone(clean))
			f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
			if err != nil {
				t.Logf("open: %v", err)
				return
			}
			info := f.Info()
			if c.msg != "" && !strings.Contains(strings.Join(info.Problems, "\n"), c.msg) {
				t.Errorf("problems %q do not say %q", info.Problems, c.msg)
			}
			got, bad := readTree(t, f)
			// Where the kernel recovers the damaged image too, its
			// view is a third tree (a replay of the log's prefix may
			// show states neither pinned tree has).
			kernel := kernelTree(t, img)
			if c.pin != "" {
				if kernel != nil && os.Getenv("VZSALVAGE_PIN_XFSLOG") != "" {
					writeManifest(t, c.pin, kernel)
				}
				if kernel == nil {
					kernel = loadManifest(t, c.pin)
				}
				compareTrees(t, got, kernel)
			}
			var asReplayed, asOnDisk, asKernel, neither, damaged int
			for p, g := range got {
				if _, ok := bad[p]; ok {
					damaged++
					continue
				}
				switch k, ok := kernel[p]; {
				case g == replayed[p]:
					asReplayed++
				case g == ondisk[p]:
					asOnDisk++
				case ok && g == k:
					asKernel++
				default:
					neither++
					t.Errorf("%s: read without a problem, but neither the kernel's replayed nor on-disk copy: %v", p, g)
				}
			}
			t.Logf("problems %q; kernel mounts it: %v; intact: %d as replayed, %d as on disk, %d as the kernel recovers this image, %d neither; %d with problems",
				info.Problems, kernel != nil, asReplayed, asOnDisk, asKernel, neither, damaged)
		})
	}
}

// kernelTree returns the tree the kernel sees after mounting (and
// recovering) a copy of img, or nil where that is impossible (not root,
// no loop devices, or the kernel refuses the image).
func kernelTree(t *testing.T, img []byte) map[string]manifestEntry {
	t.Helper()
	if !mountOK() {
		return nil
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "img")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Size() < 48<<20 {
		return nil // a truncated image: the kernel refuses it
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-o", "loop", p, mnt).CombinedOutput(); err != nil {
		t.Logf("the kernel does not mount it: %s", bytes.TrimSpace(out))
		return nil
	}
	defer exec.Command("umount", mnt).Run()
	tree := map[string]manifestEntry{}
	filepath.WalkDir(mnt, func(path string, d iofs.DirEntry, err error) error {
		if err != nil || path == mnt {
			return nil
		}
		rel, _ := filepath.Rel(mnt, path)
		switch {
		case d.Type()&iofs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			tree[rel] = manifestEntry{"l", 0, target}
		case d.IsDir():
			tree[rel] = manifestEntry{"d", 0, "-"}
		default:
			b, _ := os.ReadFile(path)
			h := sha256.Sum256(b)
			tree[rel] = manifestEntry{"f", int64(len(b)), hex.EncodeToString(h[:])}
		}
		return nil
	})
	return tree
}

// writeManifest pins a tree in testdata (VZSALVAGE_PIN_XFSLOG=1, as root).
func writeManifest(t *testing.T, name string, tree map[string]manifestEntry) {
	var lines []string
	for p, e := range tree {
		lines = append(lines, fmt.Sprintf("%s %d %s %s", e.typ, e.size, e.sum, p))
	}
	slices.Sort(lines)
	if err := os.WriteFile(filepath.Join("testdata", name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// patchedReader reads base with patch over it at off.
type patchedReader struct {
	base  []byte
	patch []byte
	off   int64
}

func (r *patchedReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.base)) {
		return 0, io.EOF
	}
	n := copy(p, r.base[off:])
	if lo, hi := max(off, r.off), min(off+int64(n), r.off+int64(len(r.patch))); lo < hi {
		copy(p[lo-off:hi-off], r.patch[lo-r.off:hi-r.off])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// FuzzLogReplay patches p over the pinned dirty image's log at off (in
// its first records, up to the head) and reads the top of the tree. With
// fix, every record header gets the checksum of what follows it, so that
// what lies behind the checksums is fuzzed too.
func FuzzLogReplay(f *testing.F) {
	img := loadDirtyImage(f, "v5")
	start, tail, head, _ := logSpan(f, img)
	active := img[start : start+(head+2)*logBB]
	f.Add(false, uint32(0), []byte{})
	f.Add(true, uint32(tail*logBB+logBB+12+9), []byte{0xff})
	f.Add(true, uint32(tail*logBB+12), []byte{0, 0, 0, 0})
	f.Add(true, uint32(head*logBB+40), []byte{0, 0, 0, 99})
	f.Fuzz(func(t *testing.T, fix bool, off uint32, p []byte) {
		log := bytes.Clone(active)
		at := int(off % uint32(len(log)))
		copy(log[at:], p)
		if fix {
			fixRecordCRCs(log)
		}
		fsys, err := Open(&patchedReader{base: img, patch: log, off: start}, int64(len(img)), Options{})
		if err != nil {
			return
		}
		ents, _ := fsys.ReadDir(fsys.Root())
		for _, e := range ents {
			fsys.Stat(e.Node)
			fsys.ReadDir(e.Node)
		}
	})
}

// fixRecordCRCs gives every record header in log (unwrapped, v2 single
// header records) the checksum of what follows it.
func fixRecordCRCs(log []byte) []byte {
	for blk := 0; (blk+1)*logBB <= len(log); blk++ {
		h := log[blk*logBB:]
		if !headerOK(h, int64(blk)) || be.Uint32(h[320:]) > logCycleSize {
			continue
		}
		n := int(be.Uint32(h[12:]))
		if (blk+1)*logBB+n > len(log) {
			continue
		}
		le.PutUint32(h[32:], recordCRC(h[:logBB], log[(blk+1)*logBB:(blk+1)*logBB+n], logRecHdrSize))
	}
	return log
}

// TestLogReplayPartial: LogReplay replays a damaged log up to the damage
// and says so.
func TestLogReplayPartial(t *testing.T) {
	img := loadDirtyImage(t, "v5wrap")
	start, _, _, mid := logSpan(t, img)
	img[start+mid*logBB+100] ^= 1
	f, err := Open(bytes.NewReader(img), int64(len(img)), Options{Log: LogReplay})
	if err != nil {
		t.Fatal(err)
	}
	p := f.Info().Problems
	if f.Info().View != ViewReplayed || len(p) != 2 || !strings.HasPrefix(p[0], "log replayed: ") || !strings.Contains(p[1], "replayed up to the last whole record") {
		t.Errorf("view %q, problems %q", f.Info().View, p)
	}
}

//go:build linux

package ntfs

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
)

// The fuzz targets patch a small real image made by mkntfs -C and written
// by ntfs-3g (8 MiB: testdata/base.img.gz; rebuild, as root, with go test
// -run TestMakeFuzzBase -make-fuzz-base) and read everything in it. It
// holds a directory of index blocks, LZNT1-compressed and sparse files,
// streams (one over 64 KiB), symlinks, and a file with so many hard links that its names
// overflow into an extension record (an attribute list). Patches of MFT
// records and index blocks may put a valid update sequence back, so that
// the parsers behind it see the garbage.

var makeFuzzBase = flag.Bool("make-fuzz-base", false, "rebuild testdata/base.img.gz with mkntfs and ntfs-3g")

func TestMakeFuzzBase(t *testing.T) {
	if !*makeFuzzBase {
		t.Skip("run with -make-fuzz-base to rebuild the fuzz base image")
	}
	src := t.TempDir()
	put := func(p string, b []byte) {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		if err := os.WriteFile(filepath.Join(src, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := make([]byte, 70000)
	for i := range b {
		b[i] = byte(i * 7 / 3)
	}
	put("a", b[:3000])
	put("big", b)
	put("log", bytes.Repeat([]byte("hello\n"), 30000))
	put("tiny", []byte("x\n"))
	put("bigads.bin", []byte("y\n"))
	put(bigStream, b[:66000]) // build writes it as a stream
	for i := range 80 {
		put("many/f"+strings.Repeat("x", i), []byte{byte(i)})
	}
	put("links/target", []byte("linked\n"))
	for i := range 12 {
		os.Link(filepath.Join(src, "links/target"), filepath.Join(src, "links", "name-of-a-hard-link-"+strings.Repeat("l", 40)+string(rune('a'+i))))
	}
	fh, _ := os.Create(filepath.Join(src, "sparse"))
	fh.WriteAt([]byte("end"), 300000)
	fh.Close()
	os.Symlink("a", filepath.Join(src, "sl"))
	syscall.Setxattr(filepath.Join(src, "a"), "user.stream", []byte("v"), 0)
	img := filepath.Join(t.TempDir(), "img")
	buildSize(t, src, img, 8<<20, "-C")
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	testimg.WriteGzip(t, filepath.Join("testdata", "base.img.gz"), raw)
}

// fuzzBase is the base image and the multi-sector blocks (MFT records and
// index blocks) the reader reads, by volume offset.
type fuzzBase struct {
	img    []byte
	blocks []int64
}

var (
	baseOnce sync.Once
	base     *fuzzBase
)

func loadBase(t testing.TB) *fuzzBase {
	baseOnce.Do(func() {
		img := testimg.Gunzip(t, filepath.Join("testdata", "base.img.gz"), 64<<20)
		f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		b := &fuzzBase{img: img}
		var walk func(n fs.Node)
		seen := map[fs.Node]bool{}
		walk = func(n fs.Node) {
			if seen[n] {
				return
			}
			seen[n] = true
			if lay, err := f.Layout(n); err == nil {
				for _, e := range lay.Meta {
					if m := string(img[e.Physical : e.Physical+4]); m == "FILE" || m == "INDX" {
						b.blocks = append(b.blocks, e.Physical)
					}
				}
			}
			ents, _ := f.ReadDir(n)
			for _, e := range ents {
				walk(e.Node)
			}
		}
		walk(f.Root())
		slices.Sort(b.blocks)
		b.blocks = slices.Compact(b.blocks)
		if len(b.blocks) < 20 {
			t.Fatalf("only %d MFT records and index blocks found", len(b.blocks))
		}
		base = b
	})
	return base
}

// readAll opens img and reads everything in it.
func readAll(t testing.TB, img []byte, opt Options) {
	f, err := Open(bytes.NewReader(img), int64(len(img)), opt)
	if err != nil {
		return
	}
	fstest.Visit(t, f, 5000)
}

// patchBlock writes p at off in the multi-sector block at blk and, when
// fix, makes its update sequence check pass again (every sector ends in
// the update sequence number).
func (b *fuzzBase) patchBlock(blk int64, off uint16, p []byte, fix bool) []byte {
	img := bytes.Clone(b.img)
	at := blk + int64(off)
	if at < int64(len(img)) {
		copy(img[at:], p)
	}
	if fix && blk+8 <= int64(len(img)) {
		usa, count := int64(le.Uint16(img[blk+4:])), int64(le.Uint16(img[blk+6:]))
		if usa+2 <= sectorStride && count <= 128 && blk+(count-1)*sectorStride <= int64(len(img)) {
			usn := img[blk+usa : blk+usa+2]
			for i := int64(1); i < count; i++ {
				copy(img[blk+i*sectorStride-2:], usn)
			}
		}
	}
	return img
}

// FuzzBoot patches the boot sector.
func FuzzBoot(f *testing.F) {
	b := loadBase(f)
	f.Add(uint16(0x0b), []byte{0, 1}, false)
	f.Add(uint16(0x0d), []byte{0x80}, false)
	f.Add(uint16(0x30), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0}, false)
	f.Add(uint16(0x40), []byte{0xe0}, true)
	f.Fuzz(func(t *testing.T, off uint16, p []byte, streams bool) {
		img := bytes.Clone(b.img)
		copy(img[int(off)%512:512], p)
		readAll(t, img, Options{Streams: streams})
	})
}

// FuzzBlock patches one MFT record or index block the reader reads, with
// a valid update sequence or not.
func FuzzBlock(f *testing.F) {
	b := loadBase(f)
	f.Add(uint8(0), uint16(0x14), []byte{0xff, 0x03}, true)
	f.Add(uint8(5), uint16(0x38), []byte{0x80, 0, 0, 0, 0x48}, true)
	f.Add(uint8(9), uint16(0x58), []byte{0x41, 0xff, 0x7f}, true)
	f.Add(uint8(30), uint16(0x18), []byte{0, 0x10, 0, 0}, true)
	f.Add(uint8(40), uint16(0x60), []byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, which uint8, off uint16, p []byte, fix bool) {
		readAll(t, b.patchBlock(b.blocks[int(which)%len(b.blocks)], off%4096, p, fix), Options{})
	})
}

// FuzzLZNT1 decodes arbitrary compression units.
func FuzzLZNT1(f *testing.F) {
	f.Add([]byte{0x05, 0xb0, 0x00, 'a', 'b', 'c', 0x01, 0x30})
	f.Add([]byte{0xff, 0x3f})
	f.Fuzz(func(t *testing.T, src []byte) {
		out := make([]byte, 4096)
		if n, _ := lznt1(out, src); n < 0 || n > len(out) {
			t.Fatalf("decoded %d bytes into %d", n, len(out))
		}
	})
}

// FuzzRuns parses arbitrary runlists.
func FuzzRuns(f *testing.F) {
	f.Add([]byte{0x21, 0x10, 0x00, 0x01, 0x00}, int64(1000))
	f.Add([]byte{0x11, 0x30, 0x60, 0x01, 0x10, 0x21, 0x10, 0x00, 0x01, 0x00}, int64(200))
	f.Fuzz(func(t *testing.T, b []byte, clusters int64) {
		runs, _ := parseRuns(b, 0, clusters)
		for _, r := range runs {
			if r.n <= 0 || r.lcn < -1 || r.lcn >= 0 && clusters > 0 && r.lcn+r.n > clusters {
				t.Fatalf("run %+v in a volume of %d clusters", r, clusters)
			}
		}
	})
}

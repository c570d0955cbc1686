//go:build linux

package btrfs

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

	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// The fuzz targets patch a small real image made by mkfs.btrfs (mixed
// block groups, 16 MiB: testdata/base-mixed.img.gz; rebuild with go test
// -run TestMakeFuzzBases -make-fuzz-bases) and read everything in it.
// Patches may fix the checksum up, so that the parsers behind the
// checksums see the garbage.

var makeFuzzBases = flag.Bool("make-fuzz-bases", false, "rebuild testdata/base-mixed.img.gz with mkfs.btrfs")

func TestMakeFuzzBases(t *testing.T) {
	if !*makeFuzzBases {
		t.Skip("run with -make-fuzz-bases to rebuild the fuzz base image")
	}
	src := t.TempDir()
	put := func(p string, b []byte) {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		os.WriteFile(filepath.Join(src, p), b, 0o644)
	}
	b := make([]byte, 70000)
	for i := range b {
		b[i] = byte(i * 7 / 3)
	}
	put("a", b[:3000])
	put("big", b)
	put("log", bytes.Repeat([]byte("hello\n"), 30000))
	put("d/tiny", []byte("x\n"))
	for i := range 60 {
		put("d/many/f"+strings.Repeat("x", i), []byte{byte(i)})
	}
	os.Symlink("a", filepath.Join(src, "sl"))
	os.Link(filepath.Join(src, "a"), filepath.Join(src, "d/hl"))
	syscall.Setxattr(filepath.Join(src, "a"), "user.k", []byte("v"), 0)
	img := filepath.Join(t.TempDir(), "img")
	fh, _ := os.Create(img)
	fh.Truncate(16 << 20)
	fh.Close()
	testutil.Run(t, "mkfs.btrfs", "-q", "-f", "-M", "-U", "3c1b6a4e-2d5f-4e8a-9b7c-1d2e3f4a5b6c", "--rootdir", src, img)
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	testimg.WriteGzip(t, filepath.Join("testdata", "base-mixed.img.gz"), raw)
}

// fuzzBase is the base image and its tree blocks (device offsets).
type fuzzBase struct {
	img    []byte
	blocks []int64
	ns     int64
	cs     csum
}

var (
	baseOnce sync.Once
	base     *fuzzBase
)

func loadBase(t testing.TB) *fuzzBase {
	baseOnce.Do(func() {
		img := testimg.Gunzip(t, filepath.Join("testdata", "base-mixed.img.gz"), 64<<20)
		f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		b := &fuzzBase{img: img, ns: f.ns, cs: f.cs}
		fstest.Visit(t, f, 10000) // fills the block cache
		f.dataCsums(0, 1)
		for _, blk := range f.cache.Values() {
			b.blocks = append(b.blocks, blk.phys)
		}
		slices.Sort(b.blocks)
		base = b
	})
	return base
}

// readAll opens img and reads everything in it.
func readAll(t testing.TB, img []byte) {
	f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
	if err != nil {
		return
	}
	fstest.Visit(t, f, 10000)
}

// patchBlock writes p at off in the block at blk and, when fix, puts a
// matching checksum in.
func (b *fuzzBase) patchBlock(blk int64, off uint16, p []byte, fix bool) []byte {
	img := bytes.Clone(b.img)
	blkb := img[blk : blk+b.ns]
	copy(blkb[int64(off)%b.ns:], p)
	if fix {
		copy(blkb, b.cs.sum(nil, blkb[32:]))
	}
	return img
}

// FuzzSuperblock patches the primary superblock (fixing its checksum or not).
func FuzzSuperblock(f *testing.F) {
	b := loadBase(f)
	f.Add(uint16(0xa0), []byte{0xff, 0x0f}, true)
	f.Add(uint16(0x32b+17+44), []byte{9, 0}, true)
	f.Add(uint16(0x94), []byte{0, 0x10}, false)
	f.Fuzz(func(t *testing.T, off uint16, p []byte, fix bool) {
		img := bytes.Clone(b.img)
		sb := img[64<<10 : 64<<10+superSize]
		copy(sb[int(off)%superSize:], p)
		if fix {
			copy(sb, b.cs.sum(nil, sb[32:]))
		}
		readAll(t, img)
	})
}

// FuzzTreeBlock patches one tree block the reader reads, with a checksum
// that matches or not.
func FuzzTreeBlock(f *testing.F) {
	b := loadBase(f)
	f.Add(uint8(0), uint16(0x60), []byte{0xff, 0xff}, true)
	f.Add(uint8(1), uint16(0x65+17), []byte{0x10, 0x3f}, true)
	f.Add(uint8(2), uint16(0x65+25*3+8), []byte{84}, true)
	f.Add(uint8(3), uint16(300), []byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, which uint8, off uint16, p []byte, fix bool) {
		if len(b.blocks) == 0 {
			t.Skip()
		}
		readAll(t, b.patchBlock(b.blocks[int(which)%len(b.blocks)], off, p, fix))
	})
}

// FuzzDecompress decodes arbitrary extents with each compression.
func FuzzDecompress(f *testing.F) {
	f.Add(uint8(compLZO), []byte{12, 0, 0, 0, 4, 0, 0, 0, 17, 0, 0, 0}, uint16(4096))
	f.Add(uint8(compZlib), []byte{0x78, 0x9c, 3, 0, 0, 0, 0, 1}, uint16(100))
	f.Add(uint8(compZstd), []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0x58, 1, 0, 0}, uint16(100))
	f.Fuzz(func(t *testing.T, comp uint8, src []byte, ram uint16) {
		out, _ := decompress(comp%4, src, int64(ram), 1<<16, 4096)
		if len(out) > int(ram) {
			t.Fatalf("decoded %d bytes, more than %d", len(out), ram)
		}
	})
}

package zstd

import (
	"archive/tar"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// diskLike returns ~size bytes that look like a disk image: a tar of real
// files from /usr, interleaved with zero runs and random data. It is built
// once per test binary.
var diskLike = sync.OnceValue(func() []byte { return buildDiskLike(24 << 20) })

func buildDiskLike(size int) []byte {
	var files []string
	for _, root := range []string{"/usr/share", "/usr/lib", "/usr/bin"} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	rng := rand.New(rand.NewPCG(1, 2))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	next := 2 << 20
	for i := 0; out.Len() < size && len(files) > 0; i++ {
		p := files[(i*7919)%len(files)]
		b, err := os.ReadFile(p)
		if err != nil || len(b) > 1<<20 {
			continue
		}
		tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
		if out.Len() > next {
			tw.Flush()
			// A stretch of zeros and one of random bytes, as in disk images.
			z := make([]byte, 256<<10+rng.IntN(64<<10))
			r := make([]byte, 48<<10+rng.IntN(32<<10))
			for j := range r {
				r[j] = byte(rng.Uint32())
			}
			tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: int64(len(z) + len(r)), Typeflag: tar.TypeReg})
			tw.Write(z)
			tw.Write(r)
			next += 2 << 20
		}
	}
	tw.Close()
	return out.Bytes()
}

// compressed caches the data compressed by the real zstd CLI with args.
var compressedCache sync.Map

func zstdCLI(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	key := fmt.Sprint(len(data), crc32.ChecksumIEEE(data), args)
	if v, ok := compressedCache.Load(key); ok {
		return v.([]byte)
	}
	bin := testutil.RequireTool(t, "zstd")
	cmd := exec.Command(bin, append([]string{"-q", "-c"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstd %v: %v", args, err)
	}
	compressedCache.Store(key, out)
	return out
}

// decodeAll reads a whole stream through our Reader.
type decoded struct {
	out       []byte
	err       error
	spans     []codec.Span
	problems  int
	problemAt []int64 // input offsets of the problems
	sum       codec.Checksum
	blocks    []blockRecord
}

func decode(src []byte, opt codec.Options, cfg config) decoded {
	var d decoded
	cfg.trace = func(r blockRecord) { d.blocks = append(d.blocks, r) }
	z := newReader(bytes.NewReader(src), opt, cfg)
	d.out, d.err = io.ReadAll(z)
	d.spans = z.Spans()
	d.problems = len(z.Problems())
	for _, p := range z.Problems() {
		d.problemAt = append(d.problemAt, p.Offset)
	}
	d.sum = z.Checksum()
	z.Close()
	return d
}

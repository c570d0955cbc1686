package qcow2

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// benchRaw writes a fully used 32 MiB disk: 64 KiB blocks of random
// bytes and of Go source text (from GOROOT), alternately.
func benchRaw(b *testing.B) string {
	p := filepath.Join(b.TempDir(), "bench.raw")
	rng := rand.New(rand.NewPCG(3, 4))
	var text []byte
	goroot, _ := exec.Command("go", "env", "GOROOT").Output()
	files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(goroot)), "src", "net", "http", "*.go"))
	for _, f := range files {
		s, _ := os.ReadFile(f)
		text = append(text, s...)
	}
	if len(text) < 1<<20 {
		b.Skip("GOROOT sources not found")
	}
	buf := make([]byte, 32<<20)
	for off := 0; off < len(buf); off += 64 << 10 {
		blk := buf[off : off+64<<10]
		if off/(64<<10)%2 == 0 {
			for i := range blk {
				blk[i] = byte(rng.Uint32())
			}
		} else {
			copy(blk, text[(off/2)%(len(text)-len(blk)):])
		}
	}
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// benchImage converts the benchmark disk with qemu-img and opens it.
func benchImage(b *testing.B, args ...string) *Image {
	raw := benchRaw(b)
	q := filepath.Join(b.TempDir(), "b.qcow2")
	testutil.Run(b, "qemu-img", append(append([]string{"convert", "-O", "qcow2"}, args...), raw, q)...)
	f, err := os.Open(q)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	im, err := Open(f, st.Size())
	if err != nil {
		b.Fatal(err)
	}
	return im
}

// benchRead reads the whole virtual disk in 1 MiB reads.
func benchRead(b *testing.B, im *Image) {
	buf := make([]byte, 1<<20)
	b.SetBytes(im.Size())
	b.ReportAllocs()
	for b.Loop() {
		for off := int64(0); off < im.Size(); off += int64(len(buf)) {
			if _, err := im.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkReadPlain(b *testing.B)   { benchRead(b, benchImage(b)) }
func BenchmarkReadDeflate(b *testing.B) { benchRead(b, benchImage(b, "-c")) }
func BenchmarkReadZstd(b *testing.B) {
	benchRead(b, benchImage(b, "-c", "-o", "compression_type=zstd"))
}
func BenchmarkReadExtendedL2(b *testing.B) { benchRead(b, benchImage(b, "-o", "extended_l2=on")) }

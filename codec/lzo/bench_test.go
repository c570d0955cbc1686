package lzo

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

func benchStream(b *testing.B) (data, lz []byte) {
	data = diskData(32 << 20)
	return data, lzopStdin(b, data)
}

// BenchmarkRead measures the lzop reader on a clean file (MB/s of output).
func BenchmarkRead(b *testing.B) {
	data, lz := benchStream(b)
	benchRead(b, lz, int64(len(data)))
}

// BenchmarkSalvage measures the reader on a file with a 64 KiB garbage run
// every 4 MiB of input (MB/s of output).
func BenchmarkSalvage(b *testing.B) {
	data, lz := benchStream(b)
	bad := append([]byte(nil), lz...)
	for at := 1 << 20; at+64<<10 < len(bad); at += 4 << 20 {
		codectest.Garbage(bad, at, 64<<10, uint64(at))
	}
	benchRead(b, bad, int64(len(data)))
}

func benchRead(b *testing.B, lz []byte, n int64) {
	buf := make([]byte, 128<<10)
	b.SetBytes(n)
	b.ResetTimer()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(lz), codec.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecompress1X measures the block decoder alone.
func BenchmarkDecompress1X(b *testing.B) {
	data, lz := benchStream(b)
	_, hs, datas := blocks(b, lz)
	room := make([]byte, 0, blockSize)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		for i, h := range hs {
			if h.srcLen == h.dstLen {
				continue
			}
			if _, err := Decompress1X(room, datas[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkLzopCLI measures `lzop -dc` on the same file, for comparison.
func BenchmarkLzopCLI(b *testing.B) {
	data, lz := benchStream(b)
	f := filepath.Join(b.TempDir(), "s.lzo")
	if err := os.WriteFile(f, lz, 0o600); err != nil {
		b.Fatal(err)
	}
	lzop := testutil.RequireTool(b, "lzop")
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := exec.Command(lzop, "-dc", f).Run(); err != nil {
			b.Fatal(err)
		}
	}
}

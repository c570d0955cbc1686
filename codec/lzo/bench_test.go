package lzo

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

func benchStream(b *testing.B) (data, lz []byte) {
	data = diskData(32 << 20)
	return data, lzopStdin(b, data)
}

// BenchmarkRead measures the lzop reader on a clean file (MB/s of output).
func BenchmarkRead(b *testing.B) {
	data, lz := benchStream(b)
	buf := make([]byte, 128<<10)
	b.SetBytes(int64(len(data)))
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

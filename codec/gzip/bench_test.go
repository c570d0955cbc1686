package gzip

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// benchStream is 32 MiB of the test corpus compressed by gzip --rsyncable.
func benchStream(b *testing.B) (data, gz []byte) {
	data = testimg.Corpus(b, 24<<20)
	return data, testimg.Compress(b, data, "gzip", "--rsyncable", "-n")
}

// BenchmarkRead measures the decoder on a clean stream (MB/s of output).
func BenchmarkRead(b *testing.B) {
	data, gz := benchStream(b)
	buf := make([]byte, 128<<10)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(gz), codec.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGzipCLI measures `gzip -dc` on the same stream, for comparison.
func BenchmarkGzipCLI(b *testing.B) {
	data, gz := benchStream(b)
	f := filepath.Join(b.TempDir(), "s.gz")
	if err := os.WriteFile(f, gz, 0o600); err != nil {
		b.Fatal(err)
	}
	gzipPath := testutil.RequireTool(b, "gzip")
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := exec.Command(gzipPath, "-dc", f).Run(); err != nil {
			b.Fatal(err)
		}
	}
}

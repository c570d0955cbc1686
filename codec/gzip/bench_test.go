package gzip

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

// benchStream is 64 MiB of disk-like data compressed by gzip --rsyncable.
func benchStream(b *testing.B) (data, gz []byte) {
	data = diskData(64 << 20)
	return data, rsyncable(b, data, false)
}

// BenchmarkRead measures the decoder on a clean stream (MB/s of output).
func BenchmarkRead(b *testing.B) {
	data, gz := benchStream(b)
	benchRead(b, gz, int64(len(data)))
}

// BenchmarkSalvage measures the decoder on a stream with a 64 KiB garbage
// run every 4 MiB of input: resynchronisation, and the tainting of what is
// copied from the unknown window after each (MB/s of output).
func BenchmarkSalvage(b *testing.B) {
	data, gz := benchStream(b)
	bad := append([]byte(nil), gz...)
	for at := 1 << 20; at+64<<10 < len(bad); at += 4 << 20 {
		codectest.Garbage(bad, at, 64<<10, uint64(at))
	}
	benchRead(b, bad, int64(len(data)))
}

func benchRead(b *testing.B, gz []byte, n int64) {
	buf := make([]byte, 128<<10)
	b.SetBytes(n)
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

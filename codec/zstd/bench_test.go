package zstd

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/codec"
)

func benchDecode(b *testing.B, cfg config) {
	orig, c := vmaData(b), archive(b)
	b.SetBytes(int64(len(orig)))
	b.ReportAllocs()
	for b.Loop() {
		z := newReader(bytes.NewReader(c), codec.Options{}, cfg)
		if n, err := io.Copy(io.Discard, z); err != nil || n != int64(len(orig)) {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}

// BenchmarkClean: the klauspost clean path (MB/s of output).
func BenchmarkClean(b *testing.B) { benchDecode(b, config{}) }

// BenchmarkSalvage: our own decoder from the start (MB/s of output).
func BenchmarkSalvage(b *testing.B) { benchDecode(b, config{salvageOnly: true}) }

// TestBenchFile decodes $ZSTD_BENCH_FILE once in the mode $ZSTD_BENCH_MODE
// (clean or salvage) and prints the time; scripts/bench-zstd.sh uses it.
func TestBenchFile(t *testing.T) {
	path := os.Getenv("ZSTD_BENCH_FILE")
	if path == "" {
		t.Skip("ZSTD_BENCH_FILE not set")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := config{salvageOnly: os.Getenv("ZSTD_BENCH_MODE") == "salvage"}
	start := time.Now()
	z := newReader(f, codec.Options{}, cfg)
	n, err := io.Copy(io.Discard, z)
	if err != nil || len(z.Problems()) > 0 || z.Checksum() != codec.ChecksumOK {
		t.Fatalf("%d bytes, %v, %v, checksum %s", n, err, z.Problems(), z.Checksum())
	}
	el := time.Since(start).Seconds()
	fmt.Printf("BENCH %d bytes %.3f s\n", n, el)
}

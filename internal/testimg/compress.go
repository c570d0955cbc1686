package testimg

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// Compress runs a real compressor (name plus args, reading a file, writing
// stdout) on data and returns its output. The file's name and time are
// fixed, so that a compressor that stores them (gzip, lzop) makes the same
// bytes every time.
func Compress(t testing.TB, data []byte, name string, args ...string) []byte {
	t.Helper()
	f := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f, FixedTime, FixedTime); err != nil {
		t.Fatal(err)
	}
	return testutil.Run(t, name, append(args, "-c", f)...)
}

// Gunzip returns the content of the gzip file at path (a pinned image in
// testdata), at most limit bytes; it fails the test when it cannot.
func Gunzip(t testing.TB, path string, limit int64) []byte {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, limit))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// WriteGzip writes data gzipped (best compression) to path: how a test
// that rebuilds a pinned image stores it in testdata.
func WriteGzip(t testing.TB, path string, data []byte) {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

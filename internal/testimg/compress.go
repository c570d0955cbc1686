package testimg

import (
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

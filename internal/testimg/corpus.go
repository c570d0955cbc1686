package testimg

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// Corpus returns test data like a backup's: the start of a tar of /usr/share
// (text, binaries, already compressed files), zeros and random bytes.
func Corpus(t testing.TB, tarBytes int) []byte {
	t.Helper()
	corpusOnce.Do(func() {
		cmd := exec.Command(testutil.RequireTool(t, "tar"), "cf", "-", "--sort=name", "-C", "/usr/share", ".")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		corpusTar, _ = io.ReadAll(io.LimitReader(out, 48<<20))
		cmd.Process.Kill()
		cmd.Wait()
	})
	if len(corpusTar) < tarBytes {
		t.Fatalf("tar of /usr/share gave only %d bytes", len(corpusTar))
	}
	var b bytes.Buffer
	b.Write(corpusTar[:tarBytes])
	b.Write(make([]byte, tarBytes/3))
	rng := rand.New(rand.NewPCG(1, 2))
	r := make([]byte, tarBytes/16)
	for i := range r {
		r[i] = byte(rng.Uint32())
	}
	b.Write(r)
	b.Write(corpusTar[:tarBytes/4])
	return b.Bytes()
}

var (
	corpusOnce sync.Once
	corpusTar  []byte
)

// Compress runs a real compressor (name plus args, reading a file, writing
// stdout) on data and returns its output.
func Compress(t testing.TB, data []byte, name string, args ...string) []byte {
	t.Helper()
	f := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return testutil.Run(t, name, append(args, "-c", f)...)
}

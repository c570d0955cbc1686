package qcow2

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// FuzzOpen feeds qcow2 files to Open and reads what it accepts: no panic,
// allocations bounded by the file's size and QEMU's limits.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("QFI\xfb\x00\x00\x00\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for off := int64(0); off < min(im.Size(), 1<<20); off += int64(len(buf)) {
			im.ReadAt(buf, off)
		}
		im.ReadAt(buf, im.Size()-100)
		im.ReadAt(buf[:1], im.Size()/3)
		im.Damage()
	})
}

// TestWriteFuzzSeeds writes FuzzOpen's seeds: small images made by
// qemu-img and qemu-io. It runs only with VZSALVAGE_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("VZSALVAGE_WRITE_SEEDS") != "1" {
		t.Skip("set VZSALVAGE_WRITE_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	os.MkdirAll(dir, 0o755)
	for _, c := range []struct{ name, opts string }{
		{"v3-512", "cluster_size=512"},
		{"v2-512", "compat=0.10,cluster_size=512"},
		{"v3-4k", "cluster_size=4k"},
		{"zstd-4k", "cluster_size=4k,compression_type=zstd"},
		{"extl2-16k", "cluster_size=16k,extended_l2=on"},
	} {
		q := filepath.Join(t.TempDir(), "s.qcow2")
		testutil.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", c.opts, q, "1M")
		script := []string{"-c", "write -P 0x61 0 3k", "-c", "write -z 64k 8k", "-c", "write -P 0x62 200k 1k"}
		if c.name == "extl2-16k" {
			// Keep this seed small: one partly written cluster, one zeroed.
			script = []string{"-c", "write -P 0x61 2k 3k", "-c", "write -z 16k 16k"}
		}
		testutil.Run(t, "qemu-io", append(script, q)...)
		if c.name == "zstd-4k" || c.name == "v2-512" {
			// Compressed clusters too: rewrite through qemu-img convert -c.
			raw := q + ".raw"
			testutil.Run(t, "qemu-img", "convert", "-O", "raw", q, raw)
			testutil.Run(t, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", c.opts, raw, q+".c")
			q += ".c"
		}
		b, err := os.ReadFile(q)
		if err != nil {
			t.Fatal(err)
		}
		s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, c.name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

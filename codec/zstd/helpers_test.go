package zstd

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/vma"
)

// The test data.
//
// The tests damage streams the zstd CLI made, and what they find (which
// block a garbage run hits, whether a block is raw) depends on the exact
// bytes; another zstd version lays its output out differently. So the data
// is deterministic and the CLI's output is pinned under testdata (see
// testimg.Pin: only what is not a copy of the input is stored):
//
//   - testDisk: 11 MiB of testimg.DiskData, a VM disk's kind of content;
//   - vmaData: the VMA stream of a backup of it, the uncompressed data of
//     every test here (9.6 MiB: 8 MiB and more, two zstd jobs);
//   - archive: vmaData compressed as vzdump does (zstd --threads=1; the
//     CLI's default and -T2 give the same bytes);
//   - archiveST: its first 3 MiB compressed with zstd --single-thread;
//   - smallStream: its first 64 KiB in 4 KiB blocks, for fuzz seeds.
//
// VZSALVAGE_UPDATE_PINNED=1 makes the pinned files anew (zstd 1.5.4, as
// in Debian 12; TestPinnedAreZstdOutput checks them against the CLI).

// stPrefix is how much of vmaData archiveST holds.
const stPrefix = 3 << 20

var testDisk = sync.OnceValue(func() []byte { return testimg.DiskData(11<<20, 1) })

var pinnedCache sync.Map

// pinned returns the tool output pinned in testdata/name, made (with
// VZSALVAGE_UPDATE_PINNED=1) by build from ref.
func pinned(t testing.TB, name string, ref []byte, version func() string, build func() []byte) []byte {
	t.Helper()
	if v, ok := pinnedCache.Load(name); ok {
		return v.([]byte)
	}
	out := testimg.LoadPinned(t, filepath.Join("testdata", name), ref, version, build)
	pinnedCache.Store(name, out)
	return out
}

// vmaData returns the VMA stream of a backup of testDisk (one device,
// clusters in QEMU's order), pinned against the disk so that a change to
// the VMA writer does not change the data.
func vmaData(t testing.TB) []byte {
	t.Helper()
	return pinned(t, "disk.vma.pin", testDisk(), func() string { return "vzsalvage testimg.WriteVMA" }, func() []byte {
		disk := filepath.Join(t.TempDir(), "disk.raw")
		if err := os.WriteFile(disk, testDisk(), 0o600); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		cfg := []vma.Config{{Name: "qemu-server.conf", Data: []byte(testimg.Config)}}
		if _, err := testimg.WriteVMA(&b, []testimg.Disk{{Name: "drive-scsi0", Path: disk}}, cfg, 1); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	})
}

// archive returns vmaData as `zstd --threads=1` compressed it.
func archive(t testing.TB) []byte {
	t.Helper()
	orig := vmaData(t)
	return pinned(t, "disk.vma.zst.pin", orig, zstdVersion(t), func() []byte { return zstdCLI(t, orig, "--threads=1") })
}

// archiveST returns vmaData[:stPrefix] as `zstd --single-thread`
// compressed it.
func archiveST(t testing.TB) []byte {
	t.Helper()
	orig := vmaData(t)[:stPrefix]
	return pinned(t, "disk-3m.vma.zst-st.pin", orig, zstdVersion(t), func() []byte { return zstdCLI(t, orig, "--single-thread") })
}

// smallStream returns the first 64 KiB of vmaData as `zstd --single-thread
// --zstd=wlog=12` compressed it: 4 KiB blocks, a small stream for fuzz
// seeds.
func smallStream(t testing.TB) []byte {
	t.Helper()
	orig := vmaData(t)[:64<<10]
	return pinned(t, "small.zst.pin", orig, zstdVersion(t), func() []byte { return zstdCLI(t, orig, "--single-thread", "--zstd=wlog=12") })
}

// zstdVersion returns a function giving the zstd CLI's version line.
func zstdVersion(t testing.TB) func() string {
	return func() string {
		return strings.TrimSpace(strings.Split(string(zstdCLI(t, nil, "--version")), "\n")[0])
	}
}

// zstdCLI runs the zstd CLI on data with args (only to make pinned files
// and to check them).
func zstdCLI(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	bin := testutil.RequireTool(t, "zstd")
	cmd := exec.Command(bin, append([]string{"-q", "-c"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstd %v: %v", args, err)
	}
	return out
}

// TestPinnedAreZstdOutput checks that the pinned streams are what the zstd
// CLI makes, when the CLI here is the version that made them.
func TestPinnedAreZstdOutput(t *testing.T) {
	for _, p := range []struct {
		file string
		got  func(testing.TB) []byte
		orig []byte
		args string
	}{
		{"disk.vma.zst.pin", archive, vmaData(t), "--threads=1"},
		{"disk-3m.vma.zst-st.pin", archiveST, vmaData(t)[:stPrefix], "--single-thread"},
		{"small.zst.pin", smallStream, vmaData(t)[:64<<10], "--single-thread --zstd=wlog=12"},
	} {
		got := p.got(t)
		want := testimg.PinnedVersion(t, filepath.Join("testdata", p.file))
		if have := zstdVersion(t)(); have != want {
			t.Skipf("zstd here is %q, the pinned streams were made by %q: not compared", have, want)
		}
		if !bytes.Equal(zstdCLI(t, p.orig, strings.Fields(p.args)...), got) {
			t.Errorf("%s: zstd %s makes other bytes than the pinned ones", p.file, p.args)
		}
	}
}

// decode reads a whole stream through our Reader; spans that are not
// ordered, disjoint and inside the output are an error.
type decoded struct {
	out       []byte
	err       error
	spans     []codec.Span
	problems  int
	problemAt []int64 // input offsets of the problems
	sum       codec.Checksum
	blocks    []blockRecord
}

func decode(src []byte, opt codec.Options, cfg config) decoded {
	var d decoded
	cfg.trace = func(r blockRecord) { d.blocks = append(d.blocks, r) }
	z := newReader(bytes.NewReader(src), opt, cfg)
	d.out, d.err = io.ReadAll(z)
	d.spans = z.Spans()
	d.problems = len(z.Problems())
	for _, p := range z.Problems() {
		d.problemAt = append(d.problemAt, p.Offset)
	}
	d.sum = z.Checksum()
	z.Close()
	if err := spansValid(d.spans, int64(len(d.out))); err != nil && d.err == nil {
		d.err = err
	}
	return d
}

// spansValid checks that spans are ordered, disjoint and inside the output
// (n bytes), that a Resync span's MaxLen bounds its length and that only
// tainted spans are Cond.
func spansValid(spans []codec.Span, n int64) error {
	var end int64
	for _, s := range spans {
		if s.Off < end || s.Len < 0 || s.End() > n || (s.Resync && s.MaxLen >= 0 && s.MaxLen < s.Len) ||
			(s.Cond && s.State != damage.Tainted) {
			return fmt.Errorf("bad span %+v after %d (output %d)", s, end, n)
		}
		end = s.End()
	}
	return nil
}

// asyncSource is a codec.AsyncFiller over r, as archive's read-ahead: its
// asynchronous reads copy on a goroutine, in reads of varying size.
type asyncSource struct {
	r io.Reader
	n int
}

func (a *asyncSource) Read(b []byte) (int, error) { return a.r.Read(b) }

func (a *asyncSource) FillAsync(b []byte) <-chan codec.FillResult {
	a.n++
	k := max(1, min(len(b), 1+(a.n*7919)%(300<<10)))
	ch := make(chan codec.FillResult, 1)
	go func() {
		n, err := a.r.Read(b[:k])
		ch <- codec.FillResult{N: n, Err: err}
	}()
	return ch
}

// envArchive returns the file named by the environment variable env, or
// skips the test when it is not set.
func envArchive(t testing.TB, env string) []byte {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		t.Skip(env + " not set")
	}
	c, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

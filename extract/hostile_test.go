package extract

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/vma"
)

// forgeMap writes the audit's forged map: a 1 TiB device of which the
// extents list every other cluster, as an all-zero one (74 MB of extent
// headers, nothing else). It is an attack input: made by our Writer, whose
// Close says the stream is incomplete, as it is meant to be.
func forgeMap(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	h := &vma.Header{Ctime: time.Unix(1765767603, 0), Devices: []vma.Device{{ID: 1, Name: "drive-scsi0", Size: 1 << 40}}}
	h.UUID[0] = 1
	w, err := vma.NewWriter(bw, h)
	if err != nil {
		t.Fatal(err)
	}
	for c := int64(0); c < h.Devices[0].Clusters(); c += 2 {
		if err := w.WriteCluster(1, uint32(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("close: %v", err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}

// peakHeap samples the heap in use while fn runs and returns its peak.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	return peak.Load()
}

// TestForgedMapMemory is the audit's finding 3: a 1 TiB device listing
// every other cluster as zero took 1.48 GB to verify, 4.07 GB to extract
// (with a 906 MB damage.json). The memory must follow what the archive
// holds: the damage map is coarsened (every lost byte still in it), the
// cluster states compact, damage.json small.
func TestForgedMapMemory(t *testing.T) {
	dir := t.TempDir()
	arc := filepath.Join(dir, "vzdump-qemu-100-2025_12_15-03_00_03.vma")
	forgeMap(t, arc)
	check := func(what string, res *Result) {
		t.Helper()
		d := res.Report.Devices[0]
		c := d.Clusters
		if c.Zero != 1<<23 || c.Lost != 1<<23 {
			t.Errorf("%s: clusters %+v", what, c)
		}
		if d.Damage.Len() > 1<<15 || d.DamageMerged == 0 {
			t.Errorf("%s: %d damage ranges, %d merged", what, d.Damage.Len(), d.DamageMerged)
		}
		// never hide a damaged byte: every odd cluster is in the damage
		for cl := int64(1); cl < 1<<24; cl += 1<<24/1000 + 1 {
			if cl%2 == 1 && d.Damage.Count(cl*65536, 65536, damage.Lost) != 65536 {
				t.Fatalf("%s: lost cluster %d not in the damage", what, cl)
			}
		}
	}
	var res *Result
	var err error
	peak := peakHeap(func() { res, err = Verify(arc, Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	check("verify", res)
	t.Logf("verify: peak heap %d MiB", peak>>20)
	if peak > 128<<20 {
		t.Errorf("verify: peak heap %d MiB", peak>>20)
	}

	out := filepath.Join(dir, "out")
	peak = peakHeap(func() { res, err = Extract(arc, out, Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	check("extract", res)
	st, err := os.Stat(filepath.Join(out, "damage.json"))
	t.Logf("extract: peak heap %d MiB, damage.json %d bytes", peak>>20, st.Size())
	if peak > 128<<20 || err != nil || st.Size() > 4<<20 {
		t.Errorf("extract: peak heap %d MiB, damage.json %d bytes %v", peak>>20, st.Size(), err)
	}
}

// TestBombReported is the audit's finding 8: a valid header for a 16 MiB
// disk, then frames of one repeated byte, each made by the zstd CLI
// (128 MiB of zeros in 4.5 KB): 8 GiB of stream from 300 KB. Reading stops
// near twice what the disk can hold, and the archive says why.
func TestBombReported(t *testing.T) {
	zstd := testutil.RequireTool(t, "zstd")
	dir := t.TempDir()
	h := &vma.Header{Ctime: time.Unix(1765767603, 0), Devices: []vma.Device{{ID: 1, Name: "drive-scsi0", Size: 16 << 20}}}
	h.UUID[0] = 7
	hdr, err := vma.MarshalHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	compress := func(in []byte) []byte {
		cmd := exec.Command(zstd, "-q", "-1", "-c")
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var b bytes.Buffer
	b.Write(compress(hdr))
	zeros := compress(make([]byte, 128<<20))
	for i := 0; i < 64; i++ {
		b.Write(zeros)
	}
	arc := filepath.Join(dir, "vzdump-qemu-101-2025_12_15-03_00_03.vma.zst")
	if err := os.WriteFile(arc, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := Verify(arc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := res.Report.Archives[0]
	var bomb *damage.Problem
	for i, p := range a.Problems {
		if strings.Contains(p.Message, "decompression bomb") {
			bomb = &a.Problems[i]
		}
	}
	t.Logf("%d bytes of archive, verify took %v: %v", b.Len(), time.Since(start), bomb)
	if bomb == nil || a.Status != "damaged" || a.Bomb == nil || bomb.Kind != damage.Bomb {
		t.Fatalf("bomb not reported: %s %v", a.Status, a.Problems)
	}
	if bomb.Offset > vma.StreamLimit(h)+4<<20 {
		t.Errorf("read %d bytes of stream, the limit is %d", bomb.Offset, vma.StreamLimit(h))
	}
}

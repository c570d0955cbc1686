package protect

import (
	"bufio"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/vma"
)

// TestSparseTerabyteDevice protects the archive of a 1 TiB disk that is
// almost all zeros (a thin-provisioned disk, mostly unused): 16 million
// clusters, whose hashes must cost next to nothing.
func TestSparseTerabyteDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	zstd := testutil.RequireTool(t, "zstd")
	dir := t.TempDir()
	arc := filepath.Join(dir, "vzdump-qemu-100-2025_12_15-03_00_03.vma.zst")
	out, err := os.Create(arc)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(zstd, "-q", "--threads=1", "-c")
	cmd.Stdout = out
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const size = 1 << 40
	h := &vma.Header{Ctime: time.Unix(1765767603, 0), Devices: []vma.Device{{ID: 1, Name: "drive-scsi0", Size: size}}}
	h.UUID[0] = 7
	bw := bufio.NewWriterSize(stdin, 1<<20)
	vw, err := vma.NewWriter(bw, h)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	data := make(map[uint32][]byte)
	for i := 0; i < 1000; i++ {
		b := make([]byte, vma.ClusterSize)
		for j := range b[:4096] {
			b[j] = byte(rng.Uint32())
		}
		data[uint32(rng.Int64N(size/vma.ClusterSize))] = b
	}
	for c := uint32(0); c < size/vma.ClusterSize; c++ {
		if err := vw.WriteCluster(1, c, data[c]); err != nil {
			t.Fatal(err)
		}
	}
	if err := vw.Close(); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	res := protectOK(t, arc, Options{})
	sc, err := OpenSidecar(res.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	pages := int64(size / vma.ClusterSize / pageClusters)
	hashBytes := int64(0)
	for p := int64(0); p < pages; p++ {
		hashBytes += sc.index[recKey{recCluster, clusterKey(1, p)}].size
	}
	t.Logf("1 TiB device, %d data clusters: archive %d bytes, sidecar %d bytes, of which cluster hashes %d bytes (%d pages)",
		len(data), res.ArchiveSize, res.SidecarSize, hashBytes, pages)
	// a page record is 33 bytes when all zero; 1000 data clusters add a bitmap and a hash each
	if max := pages*33 + int64(len(data))*(512+8); hashBytes > max {
		t.Errorf("cluster hashes take %d bytes, want at most %d", hashBytes, max)
	}
	// a read with the sidecar confirms every cluster
	r, err := extract.Verify(arc, extract.Options{Checker: NewChecker(sc)})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Report.Archives[0].Sidecar; !r.Intact() || s == nil || s.Wrong != 0 {
		t.Fatalf("read with the sidecar: intact %v, %+v", r.Intact(), s)
	}
}

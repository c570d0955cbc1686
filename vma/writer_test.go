package vma

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// testDisk makes a device image with a mix of data, text and zero blocks.
func testDisk(rng *rand.Rand, size int) []byte {
	b := make([]byte, size)
	for off := 0; off < size; off += BlockSize {
		end := min(off+BlockSize, size)
		switch rng.Intn(4) {
		case 0: // zero
		case 1:
			rng.Read(b[off:end])
		default:
			for i := off; i < end; i++ {
				b[i] = "the quick brown fox jumps over the lazy dog\n"[(i*7+off/BlockSize)%44]
			}
		}
	}
	return b
}

// testArchive writes an archive of the given disks, clusters shuffled in
// runs like QEMU's backup job, and returns its bytes.
func testArchive(t testing.TB, rng *rand.Rand, disks [][]byte) ([]byte, *Header) {
	t.Helper()
	h := &Header{Ctime: time.Unix(1700000000, 0), Configs: []Config{{Name: "qemu-server.conf", Data: []byte("memory: 2048\n")}}}
	rng.Read(h.UUID[:])
	type job struct {
		dev uint8
		c   uint32
	}
	var jobs []job
	for i, d := range disks {
		dv := Device{ID: uint8(i + 1), Name: "drive-scsi" + string(rune('0'+i)), Size: int64(len(d))}
		h.Devices = append(h.Devices, dv)
		for c := int64(0); c < dv.Clusters(); c++ {
			jobs = append(jobs, job{dv.ID, uint32(c)})
		}
	}
	// shuffle in runs of up to 8 clusters
	for i := 0; i < len(jobs); i += 8 {
		j := rng.Intn(len(jobs)/8+1) * 8
		for k := 0; k < 8 && i+k < len(jobs) && j+k < len(jobs); k++ {
			jobs[i+k], jobs[j+k] = jobs[j+k], jobs[i+k]
		}
	}
	var out bytes.Buffer
	w, err := NewWriter(&out, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		d := disks[j.dev-1]
		lo := int(j.c) * ClusterSize
		if err := w.WriteCluster(j.dev, j.c, d[lo:min(lo+ClusterSize, len(d))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), w.Header()
}

func TestWriterRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	disks := [][]byte{testDisk(rng, 3<<20), testDisk(rng, 540672), testDisk(rng, 5*ClusterSize+3*BlockSize)}
	arc, _ := testArchive(t, rng, disks)
	r, err := NewReader(bytes.NewReader(arc), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range disks {
		if !bytes.Equal(got[uint8(i+1)][:len(d)], d) {
			t.Fatalf("disk %d differs", i)
		}
	}
	if !r.Result().Intact() {
		t.Fatalf("not intact: %+v", r.Result())
	}
}

// TestWriterPassesVmacheck checks our writer's output with the team's
// independent checker, and that the checker extracts the same disks.
func TestWriterPassesVmacheck(t *testing.T) {
	py := testutil.RequireTool(t, "python3")
	check := filepath.Join(testutil.SharedDir(t), "tools", "vmacheck.py")
	rng := rand.New(rand.NewSource(8))
	disks := [][]byte{testDisk(rng, 2<<20), testDisk(rng, 540672)}
	arc, _ := testArchive(t, rng, disks)
	dir := t.TempDir()
	cmd := exec.Command(py, check, "-", "-x", dir)
	cmd.Stdin = bytes.NewReader(arc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vmacheck: %v\n%s", err, out)
	}
	for i, d := range disks {
		b, err := os.ReadFile(filepath.Join(dir, "disk-drive-scsi"+string(rune('0'+i))+".raw"))
		if err != nil || !bytes.Equal(b, d) {
			t.Fatalf("vmacheck extracted disk %d differs (%v)", i, err)
		}
	}
}

func TestWriterLayout(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	disk := testDisk(rng, 100*ClusterSize)
	arc, h := testArchive(t, rng, [][]byte{disk})
	// extents of 58 entries, one per cluster: 100 clusters = 58 + 42
	pos := int64(h.Size)
	var counts []int
	for pos < int64(len(arc)) {
		eh, err := ParseExtentHeader(arc[pos:], h.UUID)
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, len(eh.Entries))
		pos += ExtentHeaderSize + eh.DataSize()
	}
	if len(counts) != 2 || counts[0] != 58 || counts[1] != 42 {
		t.Fatalf("entries per extent: %v", counts)
	}
	if h.Size%512 != 0 || h.Size < HeaderFixedSize {
		t.Fatalf("header size %d", h.Size)
	}
}

func TestBadInput(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	arc, _ := testArchive(t, rng, [][]byte{testDisk(rng, 4*ClusterSize)})
	badSum := append([]byte(nil), arc...)
	badSum[100] ^= 1
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrNotVMA},
		{"garbage", bytes.Repeat([]byte("garbage!"), 4000), ErrNotVMA},
		{"header checksum", badSum, ErrHeaderChecksum},
		{"short header", arc[:5000], ErrHeaderSize},
	} {
		for _, salvage := range []bool{false, true} {
			r, err := NewReader(bytes.NewReader(tc.in), Options{Salvage: salvage})
			if salvage && tc.want == ErrHeaderChecksum {
				if err != nil || r.Result().ProblemCount != 1 {
					t.Errorf("%s salvage: %v", tc.name, err)
				}
				continue
			}
			if err == nil {
				_, err = readAll(t, r)
			}
			if err == nil || !errors.Is(err, tc.want) {
				t.Errorf("%s (salvage %v): got %v, want %v", tc.name, salvage, err, tc.want)
			}
		}
	}
}

package codectest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/vma"
)

// VMADevice is the name of the one disk in VMA archives built by VMA.
const VMADevice = "drive-scsi0"

// VMA returns a VMA archive (uncompressed) of the disk image, clusters in
// QEMU's out-of-order runs, as testimg.WriteVMA writes it.
func VMA(t testing.TB, disk []byte) []byte {
	t.Helper()
	f := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(f, disk, 0o600); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	cfg := []vma.Config{{Name: "qemu-server.conf", Data: []byte(testimg.Config)}}
	if _, err := testimg.WriteVMA(&b, []testimg.Disk{{Name: VMADevice, Path: f}}, cfg, 1); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// PutCluster writes a cluster a VMA reader delivered into the disk image
// img, as extract does.
func PutCluster(img []byte, c *vma.Cluster) {
	base := c.Offset()
	k := 0
	for j := range vma.BlocksPerCluster {
		dst := img[min(base+int64(j)*vma.BlockSize, int64(len(img))):min(base+int64(j+1)*vma.BlockSize, int64(len(img)))]
		if c.Mask&(1<<j) == 0 {
			if c.Rewrite {
				clear(dst)
			}
			continue
		}
		copy(dst, c.Data[k*vma.BlockSize:])
		k++
	}
}

// VMAVerdict is what a salvaging read of a VMA archive gave back of its
// disk, cluster by cluster (64 KiB) against the original.
type VMAVerdict struct {
	NonZero   int // non-zero clusters of the original disk
	Identical int // of them, read back identical
	Intact    int // of them, read back identical with no byte in the reported damage
	Wrong     int // clusters with a byte that differs outside the reported damage
}

// CheckVMA reads the VMA stream r (a codec.Reader) with the salvaging VMA
// reader, as extract does, and compares the disk it gives with disk.
func CheckVMA(t testing.TB, r io.Reader, disk []byte) VMAVerdict {
	t.Helper()
	vr, err := vma.NewReader(r, vma.Options{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	img := make([]byte, len(disk))
	for {
		c, err := vr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		PutCluster(img, c)
	}
	var dm *damage.Map
	for _, d := range vr.Result().Devices {
		if d.Name == VMADevice {
			dm = d.Damage
		}
	}
	var v VMAVerdict
	for off := 0; off < len(disk); off += vma.ClusterSize {
		a, b := disk[off:min(off+vma.ClusterSize, len(disk))], img[off:min(off+vma.ClusterSize, len(disk))]
		bad := dm.Any(int64(off), int64(len(a)), damage.Tainted)
		if !bad && !bytes.Equal(a, b) {
			v.Wrong++
		} else if bad && !bytes.Equal(a, b) {
			for i := range a {
				if a[i] != b[i] && !dm.Any(int64(off+i), 1, damage.Tainted) {
					v.Wrong++
					break
				}
			}
		}
		if bytes.Count(a, []byte{0}) == len(a) {
			continue
		}
		v.NonZero++
		if bytes.Equal(a, b) {
			v.Identical++
			if !bad {
				v.Intact++
			}
		}
	}
	return v
}

// PrefixClusters returns the number of non-zero clusters whose extents lie
// whole in the first n bytes of the VMA stream archive: what a stock reader
// of a copy cut there gives back.
func PrefixClusters(t testing.TB, archive []byte, n int) int {
	t.Helper()
	vr, err := vma.NewReader(bytes.NewReader(archive[:n]), vma.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for {
		c, err := vr.Next()
		if err != nil {
			return k
		}
		for j := range c.Blocks() {
			if bytes.Count(c.Data[j*vma.BlockSize:(j+1)*vma.BlockSize], []byte{0}) < vma.BlockSize {
				k++
				break
			}
		}
	}
}

// Decoder is a codec's NewReader.
type Decoder func(io.Reader, codec.Options) (codec.Reader, error)

// CutVMA reads the compressed VMA archive comp (of the uncompressed stream
// arc, of disk) cut in the middle, salvaging with dec, and returns what
// came back and the number of non-zero clusters whose extents lie whole in
// what the cut stream decodes to (what it must keep).
func CutVMA(t testing.TB, dec Decoder, comp, arc, disk []byte) (VMAVerdict, int) {
	t.Helper()
	cut := comp[:len(comp)/2]
	r, err := dec(bytes.NewReader(cut), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := CheckVMA(t, r, disk)
	r, _ = dec(bytes.NewReader(cut), codec.Options{})
	n, _ := io.Copy(io.Discard, r)
	return v, PrefixClusters(t, arc, int(n))
}

// VMADamage reads the VMA stream r (a codec.Reader) with the salvaging VMA
// reader and returns the clusters it reports damaged (tainted or lost) and
// the clusters that are not zero, over all devices.
func VMADamage(t testing.TB, r io.Reader) (damaged, nonZero int64) {
	t.Helper()
	vr, err := vma.NewReader(r, vma.Options{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := vr.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range vr.Result().Devices {
		damaged += d.Clusters.Tainted + d.Clusters.Lost
		nonZero += d.Clusters.Total - d.Clusters.Zero
	}
	return damaged, nonZero
}

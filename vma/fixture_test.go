package vma

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// realFixture returns the gunzipped bytes of the real Proxmox archive.
func realFixture(t testing.TB) []byte {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, "pve-real-truncated.vma.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads every cluster into a disk image per device.
func readAll(t testing.TB, r *Reader) (map[uint8][]byte, error) {
	t.Helper()
	disks := map[uint8][]byte{}
	for _, d := range r.Header().Devices {
		disks[d.ID] = make([]byte, min(d.Size, 64<<20))
	}
	for {
		c, err := r.Next()
		if err == io.EOF {
			return disks, nil
		}
		if err != nil {
			return disks, err
		}
		disk := disks[c.Dev]
		if disk == nil {
			disk = make([]byte, 64<<20)
			disks[c.Dev] = disk
		}
		off := c.Offset()
		k := 0
		for j := 0; j < BlocksPerCluster; j++ {
			if c.Mask&(1<<j) != 0 && off+int64(j)*BlockSize < int64(len(disk)) {
				copy(disk[off+int64(j)*BlockSize:], c.Data[k*BlockSize:(k+1)*BlockSize])
				k++
			} else if c.Mask&(1<<j) != 0 {
				k++
			}
		}
	}
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestRealFixtureHeader(t *testing.T) {
	b := realFixture(t)
	if got := sum(b); got != "9c649a8f6ddd65034b6e24f76f104b2ab213f43015fd36a6d49477b9b8841ad4" {
		t.Fatalf("fixture sha256 %s", got)
	}
	r, err := NewReader(bytes.NewReader(b), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header()
	if h.UUIDString() != "04fc12eb-0fed-4322-9aaa-f4e412f68096" || h.Ctime.Unix() != 1635680622 || h.Size != 12800 {
		t.Fatalf("header: %s %d %d", h.UUIDString(), h.Ctime.Unix(), h.Size)
	}
	if len(h.Configs) != 1 || h.Configs[0].Name != "qemu-server.conf" || len(h.Configs[0].Data) != 417 ||
		!bytes.HasSuffix(bytes.TrimRight(h.Configs[0].Data, "\n"), []byte("#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:")) {
		t.Fatalf("configs: %+v", h.Configs)
	}
	if len(h.Devices) != 1 || h.Devices[0] != (Device{ID: 1, Name: "drive-scsi0", Size: 10737418240}) {
		t.Fatalf("devices: %+v", h.Devices)
	}
}

func TestRealFixtureStrictReportsMissing(t *testing.T) {
	r, err := NewReader(bytes.NewReader(realFixture(t)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = readAll(t, r)
	if !errors.Is(err, ErrMissing) || err.Error() != "detected missing cluster 23 for stream drive-scsi0" {
		t.Fatalf("strict read: %v", err)
	}
}

func TestRealFixtureSalvage(t *testing.T) {
	r, err := NewReader(bytes.NewReader(realFixture(t)), Options{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	disks, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	d := disks[1]
	if got := sum(d[:ClusterSize]); got != "cf4adcf1933a8c9a0a3ff5588e1400e6beea8a32212b3a35ba08c7b08e4e6b1f" {
		t.Errorf("cluster 0: %s", got)
	}
	if got := sum(d[16*ClusterSize : 23*ClusterSize]); got != "8c989a3aa590795fa919ccb7d1f28651c85f8a0d9ba00ab22cdd9fb760fa7955" {
		t.Errorf("clusters 16-22: %s", got)
	}
	if got := sum(d[:136*ClusterSize]); got != "5b9280e7cc6a7f33438ba3b686bd87cd7b6e14dfcffedc73a388dd3dcfd93f19" {
		t.Errorf("first 136 clusters: %s", got)
	}
	res := r.Result()
	if res.Extents != 2 || len(res.Devices) != 1 {
		t.Fatalf("result: %+v", res)
	}
	c := res.Devices[0].Clusters
	if c.Total != 163840 || c.OK+c.Zero != 116 || c.Lost != 163840-116 || c.Tainted != 0 {
		t.Errorf("clusters: %+v", c)
	}
	if res.Intact() {
		t.Error("a truncated archive must not be intact")
	}
	// every lost range lies outside the 116 present clusters
	t.Logf("damage ranges: %d, problems: %v", res.Devices[0].Damage.Len(), res.Problems)
}

package payload_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/payload"
	"github.com/vzsalvage/vzsalvage/payload/payloadtest"
	"github.com/vzsalvage/vzsalvage/vma"
)

// tarStream is a container's tar stream made by GNU tar with vzdump's
// flags (testdata/ct.tar.gz, from internal/testimg.ContainerTree).
func tarStream(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("testdata/ct.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vmaStream is a small VMA stream of two disks.
func vmaStream(t *testing.T) []byte {
	t.Helper()
	h := &vma.Header{Ctime: time.Unix(1765767603, 0), Configs: []vma.Config{{Name: "qemu-server.conf", Data: []byte("cores: 1\n")}},
		Devices: []vma.Device{{ID: 1, Name: "drive-scsi0", Size: 1 << 20}, {ID: 2, Name: "drive-efidisk0", Size: 200 << 10}}}
	rng := rand.New(rand.NewSource(1))
	rng.Read(h.UUID[:])
	var buf bytes.Buffer
	w, err := vma.NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, vma.ClusterSize)
	for _, d := range h.Devices {
		for c := int64(0); c*vma.ClusterSize < d.Size; c++ {
			n := min(int64(vma.ClusterSize), d.Size-c*vma.ClusterSize)
			rng.Read(data[:n/2])
			clear(data[n/2 : n])
			if err := w.WriteCluster(d.ID, uint32(c), data[:n]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVMAConformance(t *testing.T) {
	payloadtest.Check(t, payload.VMAPayload{}, vmaStream(t), tarStream(t))
}

func TestTarConformance(t *testing.T) {
	payloadtest.Check(t, payload.TarPayload{}, tarStream(t), vmaStream(t))
}

// TestDetect: the content decides; the name only when the start is
// unreadable.
func TestDetect(t *testing.T) {
	tarHead, vmaHead := tarStream(t)[:payload.HeadSize], vmaStream(t)[:payload.HeadSize]
	garbage := bytes.Repeat([]byte{0xee}, payload.HeadSize)
	for _, tc := range []struct {
		head []byte
		hint string
		want payload.Kind
	}{
		{tarHead, "vma", payload.Tar},
		{vmaHead, "tar", payload.VMA},
		{garbage, "tar", payload.Tar},
		{garbage, "", payload.VMA},
	} {
		p, err := payload.Detect(tc.head, tc.hint)
		if err != nil || p.Kind() != tc.want {
			t.Errorf("Detect(%q…, %q) = %v, %v; want %s", tc.head[:4], tc.hint, p, err, tc.want)
		}
	}
	if _, err := payload.Detect(nil, ""); err == nil {
		t.Errorf("empty stream detected")
	}
}

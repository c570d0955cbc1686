// Package vmagen writes VMA archives of raw disk images the way a Proxmox
// backup job sends clusters (out-of-order runs), for tests, benchmarks and
// the sample archive. It is a development tool, not part of vzsalvage.
package vmagen

import (
	"io"
	"math/rand"
	"os"
	"time"

	"github.com/vzsalvage/vzsalvage/image/sparse"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Disk is a disk image to put into an archive.
type Disk struct {
	Name string // "drive-scsi0"
	Path string
}

// Config is the qemu-server.conf of the test VM.
const Config = `boot: order=scsi0
cores: 2
efidisk0: local-lvm:vm-100-disk-2,efitype=4m,size=528K
memory: 2048
name: rescue-test
ostype: l26
scsi0: local-lvm:vm-100-disk-0,size=64M
scsi1: local-lvm:vm-100-disk-1,size=300M
scsihw: virtio-scsi-single
#qmdump#map:efidisk0:drive-efidisk0:local-lvm:raw:
#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:
#qmdump#map:scsi1:drive-scsi1:local-lvm:raw:
`

// Write writes a VMA archive of the disks (device ids 1..n in the given
// order) to w, created at ctime. Clusters go out as QEMU's backup job sends
// them: devices one after another in descending id, each in runs handled
// by parallel workers, so runs arrive out of order and the devices mix at
// their boundary. seed fixes the order and the uuid.
func Write(w io.Writer, disks []Disk, configs []vma.Config, seed int64, ctime time.Time) (*vma.Header, error) {
	rng := rand.New(rand.NewSource(seed))
	h := &vma.Header{Ctime: ctime, Configs: configs}
	rng.Read(h.UUID[:])
	files := make([]*os.File, len(disks))
	for i, d := range disks {
		f, err := os.Open(d.Path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		files[i] = f
		h.Devices = append(h.Devices, vma.Device{ID: uint8(i + 1), Name: d.Name, Size: st.Size()})
	}
	type run struct {
		dev    int
		lo, hi int64
	}
	var runs []run
	for i := len(disks) - 1; i >= 0; i-- {
		n := h.Devices[i].Clusters()
		for c := int64(0); c < n; {
			l := min(int64(1+rng.Intn(48)), n-c)
			runs = append(runs, run{i, c, c + l})
			c += l
		}
	}
	// 16 workers: each run may overtake up to 15 runs before it
	for i := range runs {
		j := i + rng.Intn(16)
		if j < len(runs) {
			runs[i], runs[j] = runs[j], runs[i]
		}
	}
	vw, err := vma.NewWriter(w, h)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, vma.ClusterSize)
	for _, r := range runs {
		d := h.Devices[r.dev]
		// holes of a sparse image are zeros, never read (a terabyte disk
		// with little data is written in time for its data)
		data := sparse.NewFinder(files[r.dev], d.Size)
		for c := r.lo; c < r.hi; c++ {
			n := min(int64(vma.ClusterSize), d.Size-c*vma.ClusterSize)
			if !data.Has(c*vma.ClusterSize, n) {
				clear(buf[:n])
			} else if _, err := files[r.dev].ReadAt(buf[:n], c*vma.ClusterSize); err != nil && err != io.EOF {
				return nil, err
			}
			if err := vw.WriteCluster(d.ID, uint32(c), buf[:n]); err != nil {
				return nil, err
			}
		}
	}
	return vw.Header(), vw.Close()
}

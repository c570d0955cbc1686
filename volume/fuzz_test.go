package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// The fuzz targets take disks in a compact "sparse disk" encoding, so that
// seeds made from real images (GPT at both ends of a 64 MiB disk, LVM
// metadata areas) stay small: an 8-byte little-endian disk size, then
// records of a 4-byte sector number, a 2-byte length and that many bytes.

const fuzzMaxDisk = 1 << 40

type extent struct {
	off  int64
	data []byte
}

// sparseDisk is a virtual disk of zeros with some extents of data.
type sparseDisk struct {
	size int64
	ext  []extent // sorted by off; later records win where they overlap
}

func decodeSparse(b []byte) *sparseDisk {
	d := &sparseDisk{}
	if len(b) < 8 {
		return d
	}
	d.size = int64(binary.LittleEndian.Uint64(b) % fuzzMaxDisk)
	b = b[8:]
	for len(b) >= 6 {
		sec := int64(binary.LittleEndian.Uint32(b))
		n := int(binary.LittleEndian.Uint16(b[4:]))
		b = b[6:]
		n = min(n, len(b))
		d.ext = append(d.ext, extent{sec * 512, b[:n]})
		b = b[n:]
	}
	sort.SliceStable(d.ext, func(i, j int) bool { return d.ext[i].off < d.ext[j].off })
	return d
}

func (d *sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	if off >= d.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), d.size-off))
	clear(p[:n])
	end := off + int64(n)
	for _, e := range d.ext {
		if e.off >= end {
			break
		}
		if e.off+int64(len(e.data)) <= off {
			continue
		}
		lo, hi := max(e.off, off), min(e.off+int64(len(e.data)), end)
		copy(p[lo-off:hi-off], e.data[lo-e.off:hi-e.off])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// encodeSparse encodes the non-zero sectors of the given byte ranges of a
// file (a disk of size bytes).
func encodeSparse(t testing.TB, path string, size int64, ranges [][2]int64) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(size))
	for _, r := range ranges {
		b := readAt(t, path, r[0], int(r[1]))
		for s := 0; s < len(b); s += 512 {
			e := s
			for e < len(b) && e-s < 60000 && !allZero(b[e:min(e+512, len(b))]) {
				e += 512
			}
			if e > s {
				out = binary.LittleEndian.AppendUint32(out, uint32((r[0]+int64(s))/512))
				out = binary.LittleEndian.AppendUint16(out, uint16(e-s))
				out = append(out, b[s:e]...)
				s = e - 512
			}
		}
	}
	return out
}

// checkVolumes reads a little of every volume found and checks the
// invariants every consumer relies on.
func checkVolumes(t *testing.T, vols []Volume) {
	seen := map[string]bool{}
	buf := make([]byte, 4096)
	for _, v := range vols {
		if seen[v.ID] {
			t.Fatalf("duplicate id %q", v.ID)
		}
		seen[v.ID] = true
		if v.R == nil || v.Size < 0 {
			t.Fatalf("%s: reader %v size %d", v.ID, v.R, v.Size)
		}
		for _, off := range []int64{0, v.Size / 2, v.Size - 1} {
			if off >= 0 {
				v.R.ReadAt(buf, off)
			}
		}
		for _, r := range v.Damage.Ranges() {
			if r.Off < 0 || r.Len <= 0 || r.End() > v.Size {
				t.Fatalf("%s: damage %+v outside the volume of %d bytes", v.ID, r, v.Size)
			}
		}
	}
}

// FuzzDiscover feeds partition tables, EBR chains and LVM labels and
// metadata to Discover: no panic, no unbounded work, sane volumes.
func FuzzDiscover(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		disks := []Disk{{Name: "a", R: decodeSparse(a), Size: decodeSparse(a).size}}
		if len(b) > 0 {
			db := decodeSparse(b)
			disks = append(disks, Disk{Name: "b", R: db, Size: db.size})
		}
		checkVolumes(t, Discover(disks))
	})
}

// FuzzDetect feeds superblocks to Detect.
func FuzzDetect(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, a []byte) {
		d := decodeSparse(a)
		Detect(d, d.size)
	})
}

// FuzzLVMMetadata feeds text metadata to the parser.
func FuzzLVMMetadata(f *testing.F) {
	f.Add([]byte("vg {\nid = \"x\"\nseqno = 1\nextent_size = 8192\n}\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		vg, err := parseVG(text)
		if err == nil && vg == nil {
			t.Fatal("nil VG without error")
		}
	})
}

// FuzzLVMLabel feeds the first bytes of a PV to the label, pv_header and
// metadata area readers: no panic, bounded work, text within the area.
func FuzzLVMLabel(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		size := int64(len(b))
		lb, err := findLabel(r, size)
		if err != nil {
			return
		}
		if len(lb.data) > lvmMaxLocns || len(lb.mdas) > lvmMaxLocns {
			t.Fatalf("%d data areas, %d metadata areas", len(lb.data), len(lb.mdas))
		}
		for _, loc := range lb.mdas {
			a, err := readMDA(r, size, loc)
			if err != nil {
				continue
			}
			if int64(len(a.buf)) > size || len(a.buf) > lvmMaxMDASize {
				t.Fatalf("area of %d bytes from %d", len(a.buf), size)
			}
			if text, _, _, ok := a.committed(); ok && len(text) > len(a.buf) {
				t.Fatalf("text of %d bytes in an area of %d", len(text), len(a.buf))
			}
			for _, c := range a.ringCopies() {
				parseVG(c.text)
			}
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpora from images made by the real
// tools. It runs only with VZSALVAGE_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("VZSALVAGE_WRITE_SEEDS") != "1" {
		t.Skip("set VZSALVAGE_WRITE_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	write := func(target, name string, args ...[]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		os.MkdirAll(dir, 0o755)
		s := "go test fuzz v1\n"
		for _, a := range args {
			s += fmt.Sprintf("[]byte(%q)\n", a)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gpt := gptDisk(t)
	g := encodeSparse(t, gpt, 64<<20, [][2]int64{{0, 34 * 512}, {64<<20 - 33*512, 33 * 512}})
	write("FuzzDiscover", "gpt", g, nil)
	mbr := mbrDisk(t)
	m := encodeSparse(t, mbr, 32<<20, [][2]int64{{0, 512}, {10240 * 512, 512}, {20480 * 512, 512}})
	write("FuzzDiscover", "mbr", m, nil)
	fx := lvmDisks(t)
	l0 := encodeSparse(t, fx.disks[0], lvmDiskSize, [][2]int64{{0, 34 * 512}, {lvmPartOff, 64 << 10}, {lvmDiskSize - 33*512, 33 * 512}})
	l1 := encodeSparse(t, fx.disks[1], lvmDiskSize, [][2]int64{{0, 64 << 10}})
	write("FuzzDiscover", "lvm-two-disks", l0, l1)
	for _, c := range fsCases {
		img := sparseFile(t, c.name+".img", c.size)
		c.mk(t, img)
		write("FuzzDetect", c.name, encodeSparse(t, img, c.size, [][2]int64{{0, 8 << 10}, {64 << 10, 4 << 10}}))
	}
	off, n := mdaText(t, fx.disks[1], 0)
	write("FuzzLVMMetadata", "real", readAt(t, fx.disks[1], off, int(n)))
	write("FuzzLVMLabel", "pvcreate", readAt(t, fx.disks[1], 0, int(off+n)))
}

package ntfs

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
)

// TestCompressionUnitBound: a compressed stream whose unit the on-disk
// fields make huge (2^8 clusters of 64 KiB: 16 MiB; up to 512 MiB with 2 MiB
// clusters) reads as damaged zeros without decoding (no allocation of a
// unit); one of NTFS's own size (16 clusters of 4 KiB) is decoded (here all
// sparse: zeros, no error).
func TestCompressionUnitBound(t *testing.T) {
	for _, c := range []struct {
		cs, unit int64
		damaged  bool
	}{{64 << 10, 256, true}, {2 << 20, 256, true}, {4096, 16, false}, {4096, 256, false}} {
		f := &FS{cs: c.cs}
		s := &stream{compressed: true, unit: c.unit, size: 1 << 40, initSize: 1 << 40}
		sf := &streamFile{f: f, rec: &record{num: 7}, s: s, unitIdx: -1}
		p := []byte{1, 2, 3, 4}
		n, err := sf.ReadAt(p, 1<<39)
		if n != len(p) || p[0] != 0 || p[3] != 0 {
			t.Errorf("cs %d unit %d: read %d bytes %v", c.cs, c.unit, n, p)
		}
		if got := errors.Is(err, fs.ErrDamaged); got != c.damaged {
			t.Errorf("cs %d unit %d: error %v, damaged %v want %v", c.cs, c.unit, err, got, c.damaged)
		}
	}
}

// TestCompressedHostileRuns reads compressed streams whose run lists
// (parsed by parseRuns, assembled by streamOf) sit at the extremes the
// on-disk fields allow: runs starting near vcn 2^62 (vcn × cluster size
// overflows int64), a size just under 2^62 bytes read at its last bytes
// and across its last units, a lost range whose last VCN is the largest
// int64, and partly allocated units over garbage. Every read returns the
// whole length without panicking; a unit whose mapping is lost or not
// given reads as zeros with an error wrapping fs.ErrDamaged.
func TestCompressedHostileRuns(t *testing.T) {
	const maxSize = 1<<62 - 1
	vol := make([]byte, 64*4096)
	for i := range vol {
		vol[i] = byte(i*7 + i>>9) // garbage for LZNT1
	}
	for _, c := range []struct {
		name     string
		cs       int64
		compUnit int
		startVCN int64
		lastVCN  int64
		size     int64
		runs     []byte
	}{
		// One allocated cluster then 15 sparse ones: a partly allocated
		// unit, decoded as LZNT1 from garbage.
		{"runs near vcn 2^62", 4096, 4, 1<<62 - 16, 1<<62 - 1, maxSize, []byte{0x11, 0x01, 0x05, 0x01, 0x0F, 0}},
		{"runs at the end of a 2^62-byte stream", 4096, 4, maxSize / 4096 &^ 15, maxSize / 4096, maxSize, []byte{0x11, 0x01, 0x05, 0x01, 0x0F, 0}},
		{"64 KiB clusters, 1 MiB units", 64 << 10, 4, maxSize / (64 << 10) &^ 15, maxSize / (64 << 10), maxSize, []byte{0x11, 0x01, 0x02, 0x01, 0x0F, 0}},
		{"fully allocated unit near vcn 2^62", 4096, 4, 1<<62 - 16, 1<<62 - 1, maxSize, []byte{0x11, 0x10, 0x01, 0}},
		{"largest last VCN, runs cut short", 4096, 4, 0, 1<<63 - 1, maxSize, []byte{0x11, 0x01, 0x05, 0x48}},
		{"run list cut short at vcn 2^62", 4096, 4, 1<<62 - 16, 1<<63 - 1, maxSize, []byte{0x11, 0x01}},
		// parseAttr keeps sizes under 2^62; the unit step is right even
		// past that, (u+1) × unit size − off being computed mod 2^64.
		{"size of the largest int64", 4096, 4, (1<<63 - 1) / 4096 &^ 15, (1<<63 - 1) / 4096, 1<<63 - 1, []byte{0x11, 0x01, 0x05, 0x01, 0x0F, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			nclu := int64(len(vol)) / c.cs
			f := &FS{r: bytes.NewReader(vol), size: int64(len(vol)), cs: c.cs, nclu: nclu}
			a := attr{typ: atData, flags: attrCompressed, compUnit: c.compUnit, startVCN: c.startVCN, lastVCN: c.lastVCN,
				allocSize: c.size, realSize: c.size, initSize: c.size}
			a.runs, a.runsErr = parseRuns(c.runs, c.startVCN, nclu)
			rec := &record{num: 9}
			sf := f.openStream(rec, f.streamOf(rec, []attr{a}))
			ub := int64(1) << c.compUnit * c.cs
			for _, r := range []struct{ off, n int64 }{
				{0, 100}, {c.size - 10, 10}, {c.size - 1, 1}, {c.size - ub - 3, ub + 3}, {c.size - 2*ub - 5, 2*ub + 5},
				{c.startVCN * c.cs, 4096}, {(c.size / ub) * ub, c.size % ub}, {c.size - 10, 100},
			} {
				if r.off < 0 || r.off >= c.size || r.n <= 0 {
					continue
				}
				p := make([]byte, r.n)
				n, err := sf.ReadAt(p, r.off)
				if want := min(r.n, c.size-r.off); int64(n) != want {
					t.Errorf("read %d at %d: %d bytes (%v), want %d", r.n, r.off, n, err, want)
				}
				if err != nil && err != io.EOF && !errors.Is(err, fs.ErrDamaged) {
					t.Errorf("read %d at %d: %v, not damage", r.n, r.off, err)
				}
			}
			// The first unit is never mapped here (or mapped in a cut
			// list): damaged zeros.
			if c.startVCN > 0 {
				p := []byte{9, 9, 9}
				if _, err := sf.ReadAt(p, 0); !errors.Is(err, fs.ErrDamaged) || p[0]|p[1]|p[2] != 0 {
					t.Errorf("unmapped first unit: %v %v", p, err)
				}
			}
		})
	}
}

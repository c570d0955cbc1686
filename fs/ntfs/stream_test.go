package ntfs

import (
	"errors"
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

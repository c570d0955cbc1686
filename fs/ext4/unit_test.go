//go:build linux

package ext4

import (
	"bytes"
	iofs "io/fs"
	"strings"
	"testing"
	"time"
)

func TestChecksums(t *testing.T) {
	check := []byte("123456789")
	// CRC-32C check value 0xE3069283; ext4 keeps it uninverted.
	if got := ^crc32c(^uint32(0), check); got != 0xE3069283 {
		t.Errorf("crc32c = %#x", got)
	}
	// crc16 is CRC-16/ARC (init 0) and CRC-16/MODBUS (init 0xFFFF).
	if got := crc16(0, check); got != 0xBB3D {
		t.Errorf("crc16 ARC = %#x", got)
	}
	if got := crc16(0xFFFF, check); got != 0x4B37 {
		t.Errorf("crc16 MODBUS = %#x", got)
	}
}

func TestDecodeDev(t *testing.T) {
	for _, c := range []struct {
		old, new uint32
		want     uint64
	}{
		{0x0801, 0, 8<<8 | 1},  // old encoding: sda1
		{0, 0x00801, 8<<8 | 1}, // new encoding, small numbers
		// New encoding: major 0x456, minor 0x12378, which glibc's makedev
		// lays out the same way in 32 bits.
		{0, 0x12345678, 0x12345678},
	} {
		ib := make([]byte, 60)
		le.PutUint32(ib, c.old)
		le.PutUint32(ib[4:], c.new)
		if got := decodeDev(ib); got != c.want {
			t.Errorf("decodeDev(%#x, %#x) = %#x, want %#x", c.old, c.new, got, c.want)
		}
	}
}

func TestFileMode(t *testing.T) {
	for _, c := range []struct {
		m    uint16
		want iofs.FileMode
	}{
		{0o100644, 0o644},
		{0o040755, iofs.ModeDir | 0o755},
		{0o041777, iofs.ModeDir | iofs.ModeSticky | 0o777},
		{0o104755, iofs.ModeSetuid | 0o755},
		{0o102755, iofs.ModeSetgid | 0o755},
		{0o120777, iofs.ModeSymlink | 0o777},
		{0o020600, iofs.ModeDevice | iofs.ModeCharDevice | 0o600},
		{0o060600, iofs.ModeDevice | 0o600},
		{0o010644, iofs.ModeNamedPipe | 0o644},
		{0o140755, iofs.ModeSocket | 0o755},
		{0o030644, iofs.ModeIrregular | 0o644},
	} {
		if got := fileMode(c.m); got != c.want {
			t.Errorf("fileMode(%o) = %v, want %v", c.m, got, c.want)
		}
	}
}

func TestInodeTime(t *testing.T) {
	for _, c := range []struct {
		lo, extra uint32
		extraSize int
		want      time.Time
	}{
		{1600000000, 123456789 << 2, 32, time.Unix(1600000000, 123456789)},
		{1600000000, 123456789 << 2, 0, time.Unix(1600000000, 0)}, // no extra field
		{0x80000000, 0, 32, time.Unix(-1<<31, 0)},                 // before 1970
		{0x80000000, 1, 32, time.Unix(1<<31, 0)},                  // epoch bits: 2038+
		{5, 0xFFFFFFFC, 32, time.Unix(5, 0)},                      // nanoseconds out of range
	} {
		in := &inode{b: make([]byte, 256), extra: c.extraSize}
		le.PutUint32(in.b[0x10:], c.lo)
		le.PutUint32(in.b[0x88:], c.extra)
		if got := in.time(0x10, 0x88); !got.Equal(c.want) {
			t.Errorf("time(%#x, %#x) = %v, want %v", c.lo, c.extra, got, c.want)
		}
	}
}

func TestACLToXattr(t *testing.T) {
	disk := []byte{1, 0, 0, 0, // version 1
		1, 0, 6, 0, // user:: rw
		2, 0, 6, 0, 0xd2, 4, 0, 0, // user:1234: rw
		4, 0, 4, 0, // group:: r
		0x10, 0, 6, 0, // mask:: rw
		0x20, 0, 4, 0} // other:: r
	want := []byte{2, 0, 0, 0,
		1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		2, 0, 6, 0, 0xd2, 4, 0, 0,
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		0x10, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	got, err := aclToXattr(disk)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("aclToXattr = %x, %v; want %x", got, err, want)
	}
	for _, bad := range [][]byte{nil, {2, 0, 0, 0}, {1, 0, 0, 0, 2, 0, 6, 0}, {1, 0, 0, 0, 0x40, 0, 0, 0}} {
		if _, err := aclToXattr(bad); err == nil {
			t.Errorf("aclToXattr(%x) accepted", bad)
		}
	}
}

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     "plain",
		"a%b":       "a%b", // nothing to escape: left alone
		"a/b\x00c%": "a%2Fb%00c%25",
	} {
		if got := escapeName([]byte(in)); got != want {
			t.Errorf("escapeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// dirBlock builds a 1 KiB directory block from records (inode, rec_len,
// name); a zero rec_len stretches the last record to the end of the block.
func dirBlock(recs ...any) []byte {
	b := make([]byte, 1024)
	off := 0
	for i := 0; i+2 < len(recs); i += 3 {
		ino, rl, name := recs[i].(int), recs[i+1].(int), recs[i+2].(string)
		if rl == 0 {
			rl = 1024 - off
		}
		le.PutUint32(b[off:], uint32(ino))
		le.PutUint16(b[off+4:], uint16(rl))
		b[off+6] = byte(len(name))
		b[off+7] = 1
		copy(b[off+8:], name)
		off += rl
	}
	return b
}

func TestParseDirBlock(t *testing.T) {
	p := &dirParser{bs: 1024, filetype: true, inodesCount: 100}
	for _, c := range []struct {
		name     string
		block    []byte
		first    bool
		want     string // names found
		problems int
	}{
		{"linear", dirBlock(2, 12, ".", 2, 12, "..", 12, 16, "hello", 13, 0, "world"), true, "hello world", 0},
		{"deleted entry", dirBlock(12, 16, "gone", 13, 0, "kept"), false, "gone kept", 0},
		{"inode 0", dirBlock(0, 16, "gone", 13, 0, "kept"), false, "kept", 0},
		{"inode out of range", dirBlock(500, 16, "bad", 13, 0, "kept"), false, "kept", 1},
		{"name with slash", dirBlock(12, 16, "a/b", 13, 0, "kept"), false, "kept", 1},
		{"bad rec_len resyncs", dirBlock(12, 6, "x", 0, 2, "", 13, 0, "after"), false, "after", 1},
		{"rec_len past the end", dirBlock(12, 2000, "x"), false, "", 1},
		{"htree node", func() []byte {
			b := dirBlock(0, 1024, "")
			le.PutUint16(b[8:], (1024-8)/8) // limit
			le.PutUint16(b[10:], 1)         // count
			return b
		}(), false, "", 0},
	} {
		ents, problems := p.parseBlock(c.block, c.first, nil)
		var names []string
		for _, e := range ents {
			names = append(names, e.name)
		}
		if got := strings.Join(names, " "); got != c.want || len(problems) != c.problems {
			t.Errorf("%s: names %q problems %q; want %q and %d problems", c.name, got, problems, c.want, c.problems)
		}
	}
}

func TestHasSuper(t *testing.T) {
	sparse := &superblock{roCompat: roCompatSparseSuper}
	dense := &superblock{}
	s2 := &superblock{compat: compatSparseSuper2, backupBGs: [2]uint32{1, 7}}
	for _, c := range []struct {
		sb   *superblock
		g    uint64
		want bool
	}{
		{sparse, 0, true}, {sparse, 1, true}, {sparse, 2, false}, {sparse, 3, true}, {sparse, 9, true},
		{sparse, 25, true}, {sparse, 49, true}, {sparse, 15, false}, {sparse, 21, false},
		{dense, 2, true}, {dense, 6, true},
		{s2, 1, true}, {s2, 3, false}, {s2, 7, true},
	} {
		if got := c.sb.hasSuper(c.g); got != c.want {
			t.Errorf("hasSuper(%d) = %v with features %#x/%#x", c.g, got, c.sb.compat, c.sb.roCompat)
		}
	}
}

func TestProbe(t *testing.T) {
	b := loadBases(t)["base-ext4"]
	if !Probe(bytes.NewReader(b.img)) {
		t.Error("Probe rejects an ext4 image")
	}
	if Probe(bytes.NewReader(make([]byte, 4096))) || Probe(bytes.NewReader(nil)) {
		t.Error("Probe accepts zeros")
	}
}

// TestImpossibleSize flips the top bit of a file's i_size_high: the file
// reads up to the end of its last mapped block, with a problem.
func TestImpossibleSize(t *testing.T) {
	b := bytes.Clone(loadBases(t)["base-ext4"].img)
	f, err := Open(bytes.NewReader(b), int64(len(b)), Options{Journal: OnDisk})
	if err != nil {
		t.Fatal(err)
	}
	n := lookup(t, f, "/b") // 3,000 bytes: three 1 KiB blocks
	in, _ := f.readInode(uint32(n))
	b[in.pos+0x6C+3] ^= 0x80
	f, _ = Open(bytes.NewReader(b), int64(len(b)), Options{Journal: OnDisk})
	st, err := f.Stat(n)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != 3072 || len(st.Problems) == 0 {
		t.Errorf("size %d, problems %q; want 3072 and a problem", st.Size, st.Problems)
	}
}

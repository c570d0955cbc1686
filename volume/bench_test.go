package volume

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
)

// stripedBench is a 2-stripe, 64 KiB-chunk LV of 64 MiB over two
// in-memory disks.
func stripedBench() (*mapReader, []*device) {
	var devs []*device
	for i := range 2 {
		b := bytes.Repeat([]byte{byte(i + 1)}, 40<<20)
		devs = append(devs, newDevice(Disk{Name: "d", R: bytes.NewReader(b), Size: int64(len(b))}))
	}
	s := seg{off: 0, n: 64 << 20, stripe: 64 << 10, legs: []leg{{devs[0], 1 << 20}, {devs[1], 1 << 20}}}
	return &mapReader{segs: []seg{s}, size: 64 << 20}, devs
}

func BenchmarkStripedRead(b *testing.B) {
	mr, _ := stripedBench()
	buf := make([]byte, 1<<20)
	b.SetBytes(mr.size)
	b.ReportAllocs()
	for b.Loop() {
		for off := int64(0); off < mr.size; off += int64(len(buf)) {
			if _, err := mr.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkStripedDamage translates 10,000 scattered damaged ranges of one
// disk through the striping.
func BenchmarkStripedDamage(b *testing.B) {
	mr, devs := stripedBench()
	for i := range int64(10000) {
		devs[1].dmg.Add(1<<20+i*3000, 700, damage.Lost)
	}
	b.ReportAllocs()
	for b.Loop() {
		if mr.damage().Empty() {
			b.Fatal("no damage")
		}
	}
}

// BenchmarkParseVG parses the real metadata text of the fuzz seed.
func BenchmarkParseVG(b *testing.B) {
	raw, err := os.ReadFile("testdata/fuzz/FuzzLVMMetadata/real")
	if err != nil {
		b.Skip(err)
	}
	line := strings.SplitN(string(raw), "\n", 3)[1]
	text, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "[]byte("), ")"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseVG([]byte(text)); err != nil {
			b.Fatal(err)
		}
	}
}

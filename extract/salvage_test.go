package extract

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
)

// zstdBlocks lists the offsets of the compressed blocks of a one-frame
// zstd file (walking the block headers of the clean file).
func zstdBlocks(t *testing.T, b []byte) []int {
	t.Helper()
	fhd := b[4]
	pos := 5
	if fhd&0x20 == 0 { // no single-segment flag: window descriptor
		pos++
	}
	pos += []int{0, 1, 2, 4}[fhd&3]
	if fhd&0x20 != 0 {
		pos += []int{1, 2, 4, 8}[fhd>>6]
	} else {
		pos += []int{0, 2, 4, 8}[fhd>>6]
	}
	var blocks []int
	for pos+3 <= len(b) {
		h := int(b[pos]) | int(b[pos+1])<<8 | int(b[pos+2])<<16
		blocks = append(blocks, pos)
		size := h >> 3
		if (h>>1)&3 == 1 {
			size = 1
		}
		pos += 3 + size
		if h&1 != 0 {
			break
		}
	}
	return blocks
}

type damageCase struct {
	name    string
	apply   func(b []byte, blocks []int, rng *rand.Rand) []byte
	minGood float64
}

// TestSalvageRealZstd damages archives made by the zstd CLI from real disk
// images the ways disks and RAM do, extracts them, and checks against the
// original images: no byte outside the reported damage may differ (unless
// the damage was silent: only the checksum fails, nothing located), and
// the non-zero clusters recovered stay above a floor. The floors are low for
// damage that loses a zstd block: what copies from it is tainted, and an
// extent whose header is lost loses all its clusters, a large share of this
// small archive; scripts/measure-salvage.sh measures a 400 MB one.
func TestSalvageRealZstd(t *testing.T) {
	disks, _, arc, clean := realZstdArchive(t)
	blocks := zstdBlocks(t, clean)
	at := func(frac float64) int { return blocks[int(frac*float64(len(blocks)))] }
	// The floors were measured on the bytes Debian 12's tools make; the
	// images and archive are the same on every run with those.
	floors, why := testimg.SameTools(t)
	if !floors {
		t.Logf("recovery floors not checked: %s", why)
	}
	cases := []damageCase{
		{"bit flip in a block", func(b []byte, bl []int, rng *rand.Rand) []byte {
			p := at(0.3) + 200 + rng.Intn(1000)
			b[p] ^= 1 << rng.Intn(8)
			return b
		}, 0.99},
		{"zeroed 4 KiB page", func(b []byte, bl []int, rng *rand.Rand) []byte {
			p := (at(0.5) + 3000) &^ 4095
			clear(b[p : p+4096])
			return b
		}, 0.95},
		{"64 KiB garbage run at 30%", func(b []byte, bl []int, rng *rand.Rand) []byte {
			p := len(b) * 3 / 10
			rng.Read(b[p : p+65536])
			return b
		}, 0.9},
		{"damaged block header", func(b []byte, bl []int, rng *rand.Rand) []byte {
			p := at(0.6)
			b[p], b[p+1], b[p+2] = 0xff, 0xff, 0xff
			return b
		}, 0.6},
		{"truncated at 70%", func(b []byte, bl []int, rng *rand.Rand) []byte {
			return b[:len(b)*7/10]
		}, 0.6},
		{"three damages: garbage, broken header, truncation", func(b []byte, bl []int, rng *rand.Rand) []byte {
			rng.Read(b[at(0.2)+50 : at(0.2)+50+65536])
			p := at(0.5)
			b[p], b[p+1], b[p+2] = 0xff, 0xff, 0xff
			return b[:at(0.9)+1000]
		}, 0.45},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(i)))
			bad := tc.apply(append([]byte(nil), clean...), blocks, rng)
			p := filepath.Join(t.TempDir(), filepath.Base(arc))
			if err := os.WriteFile(p, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := Extract(p, filepath.Join(filepath.Dir(p), "out"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			a := res.Report.Archives[0]
			if a.Status != "damaged" {
				t.Errorf("status %s", a.Status)
			}
			good, total, wrong := compareImages(t, res, disks)
			frac := float64(good) / float64(total)
			t.Logf("%s: %d/%d non-zero clusters identical (%.2f%%), checksum %s, %d problems, %d clusters wrong outside damage",
				tc.name, good, total, 100*frac, a.Checksum, a.ProblemCount, wrong)
			located := false
			for _, d := range res.Report.Devices {
				located = located || !d.Damage.Empty()
			}
			// silent damage (only the checksum fails, nothing located) is
			// the one case where wrong bytes lie outside the damage map
			if wrong > 0 && (located || a.Checksum != "mismatch") {
				t.Errorf("%d clusters differ outside the reported damage", wrong)
			}
			if floors && frac < tc.minGood {
				t.Errorf("recovered %.4f, want ≥ %.2f", frac, tc.minGood)
			}
		})
	}
}

// compareImages compares extracted images with the originals cluster by
// cluster. It returns the non-zero clusters recovered identical, their
// total, and the clusters with a byte that differs outside the damage map.
func compareImages(t *testing.T, res *Result, disks []testimg.Disk) (good, total, bad int) {
	t.Helper()
	for _, d := range disks {
		orig, err := os.ReadFile(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(res.Images[d.Name])
		if err != nil {
			t.Fatal(err)
		}
		var dm *damage.Map
		for _, rd := range res.Report.Devices {
			if rd.Name == d.Name {
				dm = rd.Damage
			}
		}
		for off := 0; off < len(orig); off += 65536 {
			end := min(off+65536, len(orig))
			same := bytes.Equal(orig[off:end], got[off:end])
			if !same && outsideDamage(orig[off:end], got[off:end], int64(off), dm) {
				bad++
			}
			if !isZero(orig[off:end]) {
				total++
				if same {
					good++
				}
			}
		}
	}
	return
}

// outsideDamage reports whether a byte that differs lies outside dm.
func outsideDamage(want, got []byte, off int64, dm *damage.Map) bool {
	for i := range want {
		if want[i] != got[i] && !dm.Any(off+int64(i), 1, damage.Tainted) {
			return true
		}
	}
	return false
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

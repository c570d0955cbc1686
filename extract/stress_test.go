package extract

import (
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestStress extracts a real VM archive (.vma.zst by the zstd CLI) damaged
// at random, N times, once each (a garbage run of 1 B to 96 KiB, a zeroed
// 4 KiB page, a bit flip, garbage over the end of a zstd block, a
// truncation), and checks the golden rule on the disk images: no byte
// outside the reported damage differs from the original, unless the damage
// was silent (the decompressor located nothing, its checksum fails). It
// runs only when asked:
//
//	VZSALVAGE_STRESS=500 go test ./extract -run 'TestStress$' -v -timeout 1h
func TestStress(t *testing.T) {
	first, end := testutil.Stress(t)
	disks, dir, arc, clean := realZstdArchive(t)
	blocks := zstdBlocks(t, clean)
	bad, silent, refused := 0, 0, 0
	for seed := first; seed < end; seed++ {
		r := rand.New(rand.NewSource(int64(seed)))
		b := append([]byte(nil), clean...)
		at := r.Intn(len(b))
		switch r.Intn(5) {
		case 0:
			r.Read(b[at:min(at+1+r.Intn(96<<10), len(b))])
		case 1:
			at &^= 4095
			clear(b[at:min(at+4096, len(b))])
		case 2:
			b[at] ^= 1 << r.Intn(8)
		case 3:
			at = max(blocks[1+r.Intn(len(blocks)-1)]-1-r.Intn(256), 0)
			r.Read(b[at:min(at+1+r.Intn(8<<10), len(b))])
		default:
			b = b[:at]
		}
		p := filepath.Join(dir, "bad", filepath.Base(arc))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Extract(p, filepath.Join(dir, "out"), Options{Force: true})
		if err != nil {
			if at < 64<<10 { // the damage took the stream's start: no longer a VMA archive
				refused++
				continue
			}
			t.Errorf("seed %d: %v", seed, err)
			continue
		}
		var have []testimg.Disk // a truncation early enough leaves no image
		for _, d := range disks {
			if res.Images[d.Name] != "" {
				have = append(have, d)
			}
		}
		_, _, wrong := compareImages(t, res, have)
		// Silent: the decompressor located nothing and only its checksum
		// fails (the VMA reader may still see a damaged extent header,
		// but no layer can see damaged data in a zstd raw block).
		located := false
		for _, p := range res.Report.Archives[0].Problems {
			located = located || p.Layer == "zstd" && !strings.Contains(p.Message, "checksum mismatch")
		}
		if wrong > 0 && !located && res.Report.Archives[0].Checksum == "mismatch" {
			silent++
			continue
		}
		if wrong > 0 {
			bad++
			keep, _ := os.MkdirTemp("", "vzsalvage-stress-")
			os.WriteFile(filepath.Join(keep, filepath.Base(arc)), b, 0o644)
			for _, d := range disks {
				if img, err := os.ReadFile(d.Path); err == nil {
					os.WriteFile(filepath.Join(keep, d.Name+".orig"), img, 0o644)
				}
			}
			t.Errorf("seed %d: %d clusters differ outside the reported damage (damage at %d; archive and disks kept in %s)", seed, wrong, at, keep)
		}
	}
	t.Logf("%d trials: %d with wrong bytes outside the damage, %d silent, %d refused (damage at the stream's start)", end-first, bad, silent, refused)
}

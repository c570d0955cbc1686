package merge

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
)

// archives caches the test archives by extension (built once per run).
var archives = map[string][]byte{}

// testArchive builds a VMA archive of a seeded 16 MiB disk
// (testimg.DiskData), compressed by the real CLI for ext, and returns its
// bytes.
func testArchive(t *testing.T, ext string) []byte {
	t.Helper()
	if b, ok := archives[ext]; ok {
		return b
	}
	dir := t.TempDir()
	disk := testimg.DiskData(16<<20, 7)
	raw := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(raw, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	arc := testimg.BuildArchive(t, dir, []testimg.Disk{{Name: "drive-scsi0", Path: raw}}, ext, 1)
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	archives[ext] = b
	return b
}

// damaged writes a copy of orig with garbage runs (offset, length, seed)
// and returns its path.
func damaged(t *testing.T, dir, name string, orig []byte, hits ...[3]int) string {
	t.Helper()
	b := append([]byte(nil), orig...)
	for _, h := range hits {
		rand.New(rand.NewSource(int64(h[2]))).Read(b[h[0] : h[0]+h[1]])
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// at returns the offset at frac of the archive's length.
func at(b []byte, frac float64) int { return int(float64(len(b)) * frac) }

// checkMerged merges paths and compares the output with orig.
func checkMerged(t *testing.T, orig []byte, paths ...string) *Result {
	t.Helper()
	out := filepath.Join(t.TempDir(), "merged")
	res, err := Merge(paths, Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d regions, %d trials, checksum %s, verified %v, unresolved %d", len(res.Regions), res.Trials, res.Checksum, res.Verified, res.Unresolved)
	for _, r := range res.Regions {
		t.Logf("  region %d+%d: %d variants, from %d (%s), others %v", r.Offset, r.Length, r.Variants, r.From, r.How, r.Other)
	}
	if res.SHA256 != sum(got) {
		t.Errorf("the reported SHA-256 is not the output's")
	}
	if res.Verified && sum(got) != sum(orig) {
		t.Fatalf("verified, but the merged archive is not the original")
	}
	return res
}

// TestTwoCopies: two copies of one archive, each with a 64 KiB garbage run
// elsewhere, give the original bit for bit, and each copy's damage is
// named; for zstd, gzip and lzop.
func TestTwoCopies(t *testing.T) {
	for _, ext := range []string{".zst", ".gz", ".lzo"} {
		t.Run(ext, func(t *testing.T) {
			orig := testArchive(t, ext)
			dir := t.TempDir()
			a := damaged(t, dir, "a", orig, [3]int{at(orig, 0.3), 65536, 1})
			b := damaged(t, dir, "b", orig, [3]int{at(orig, 0.7), 65536, 2})
			res := checkMerged(t, orig, a, b)
			if !res.Verified || res.Unresolved != 0 {
				t.Fatalf("not made whole: %+v", res)
			}
			dm := res.Damaged()
			if !dm[0].Any(int64(at(orig, 0.3)), 65536, 0) || dm[0].Any(int64(at(orig, 0.7)), 65536, 0) ||
				!dm[1].Any(int64(at(orig, 0.7)), 65536, 0) || dm[1].Any(int64(at(orig, 0.3)), 65536, 0) {
				t.Errorf("the copies' damage is not named where it is: %v / %v", dm[0].Ranges(), dm[1].Ranges())
			}
		})
	}
}

// TestThreeCopies: three copies, each place hit in two of them — at one
// place with the same garbage (a copy made from a damaged copy: the
// majority is wrong), at the others with different garbage (no majority).
// Trial decoding and the checksum find the third copy's bytes each time.
func TestThreeCopies(t *testing.T) {
	orig := testArchive(t, ".zst")
	dir := t.TempDir()
	x, y, z := at(orig, 0.2), at(orig, 0.5), at(orig, 0.8)
	a := damaged(t, dir, "a", orig, [3]int{x, 65536, 1}, [3]int{z, 65536, 5})
	b := damaged(t, dir, "b", orig, [3]int{x, 65536, 1}, [3]int{y, 65536, 3})
	c := damaged(t, dir, "c", orig, [3]int{y, 65536, 4}, [3]int{z, 65536, 6})
	res := checkMerged(t, orig, a, b, c)
	if !res.Verified {
		t.Fatalf("three copies not made whole: %+v", res)
	}
}

// TestAdjacent: damage in two copies close together (one problem could be
// either's) is decided together, and still makes the original.
func TestAdjacent(t *testing.T) {
	orig := testArchive(t, ".zst")
	comp := blocks(t, orig, 2, 1024)
	p := comp[len(comp)/3]
	dir := t.TempDir()
	a := damaged(t, dir, "a", orig, [3]int{p, 65536, 1})
	b := damaged(t, dir, "b", orig, [3]int{p + 100000, 65536, 2})
	res := checkMerged(t, orig, a, b)
	if !res.Verified {
		t.Fatalf("adjacent damage not made whole: %s: %+v", res.Why(), res)
	}
}

// TestOverlap: when every copy is damaged at the same place, the merge
// says so (not verified, the damage overlaps) and still writes its best
// archive: where the garbage hits compressed blocks no copy's bytes
// decode; where it hits raw blocks only the checksum notices.
func TestOverlap(t *testing.T) {
	orig := testArchive(t, ".zst")
	comp, raw := blocks(t, orig, 2, 1024), blocks(t, orig, 0, 65536)
	for name, p := range map[string]int{"compressed": comp[len(comp)/2], "raw": raw[len(raw)/2]} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a := damaged(t, dir, "a", orig, [3]int{p, 65536, 1})
			b := damaged(t, dir, "b", orig, [3]int{p + 32768, 65536, 2}, [3]int{at(orig, 0.95), 65536, 3})
			res := checkMerged(t, orig, a, b)
			if res.Verified || !strings.Contains(res.Why(), "overlaps") {
				t.Fatalf("overlapping damage not reported: %s: %+v", res.Why(), res)
			}
			if name == "compressed" && res.Unresolved == 0 {
				t.Errorf("no region unresolved")
			}
			// the place only b had damaged is still taken from a
			for _, r := range res.Regions {
				if r.Offset <= int64(at(orig, 0.95)) && int64(at(orig, 0.95)) < r.Offset+r.Length && r.From != 0 {
					t.Errorf("region %d: took copy %d (%s)", r.Offset, r.From, r.How)
				}
			}
		})
	}
}

// TestTruncated: a copy cut short and a copy with garbage make the
// original; two cut copies end where the longer one does, and say so.
func TestTruncated(t *testing.T) {
	orig := testArchive(t, ".zst")
	dir := t.TempDir()
	a := damaged(t, dir, "a", orig, [3]int{at(orig, 0.4), 65536, 1})
	b := damaged(t, dir, "b", orig[:at(orig, 0.8)])
	res := checkMerged(t, orig, a, b)
	if !res.Verified {
		t.Fatalf("not made whole: %+v", res)
	}
	c := damaged(t, dir, "c", orig[:at(orig, 0.9)])
	res = checkMerged(t, orig, b, c)
	if res.Verified || res.Size != int64(at(orig, 0.9)) {
		t.Fatalf("two cut copies: %+v", res)
	}
}

// TestSilent: garbage inside zstd raw blocks decodes without an error in
// both copies; only the checksum can choose, and it does.
func TestSilent(t *testing.T) {
	orig := testArchive(t, ".zst")
	raws := blocks(t, orig, 0, 65536)
	r1, r2 := raws[len(raws)/4], raws[3*len(raws)/4]
	dir := t.TempDir()
	a := damaged(t, dir, "a", orig, [3]int{r1 + 100, 4096, 1})
	b := damaged(t, dir, "b", orig, [3]int{r2 + 100, 4096, 2})
	res := checkMerged(t, orig, a, b)
	if !res.Verified {
		t.Fatalf("silent damage not resolved: %+v", res)
	}
	for _, r := range res.Regions {
		if r.How != HowChecksum && r.How != HowVotes {
			t.Errorf("region %d decided by %s", r.Offset, r.How)
		}
	}
}

// TestIdentical: identical intact copies are verified in one trial;
// identical damaged ones are not, and the damage is shared.
func TestIdentical(t *testing.T) {
	orig := testArchive(t, ".zst")
	dir := t.TempDir()
	res := checkMerged(t, orig, damaged(t, dir, "a", orig), damaged(t, dir, "b", orig))
	if !res.Verified || res.Trials != 1 || len(res.Regions) != 0 {
		t.Fatalf("identical intact copies: %+v", res)
	}
	hit := [3]int{at(orig, 0.5), 65536, 1}
	res = checkMerged(t, orig, damaged(t, dir, "c", orig, hit), damaged(t, dir, "d", orig, hit))
	if res.Verified || len(res.Shared) == 0 {
		t.Fatalf("identical damaged copies: %+v", res)
	}
}

// TestNoChecksum: an uncompressed archive has no checksum: three copies
// are merged by majority, and not called verified.
func TestNoChecksum(t *testing.T) {
	orig := testArchive(t, "")
	dir := t.TempDir()
	a := damaged(t, dir, "a", orig, [3]int{at(orig, 0.3), 65536, 1})
	b := damaged(t, dir, "b", orig, [3]int{at(orig, 0.6), 65536, 2})
	c := damaged(t, dir, "c", orig)
	res := checkMerged(t, orig, a, b, c)
	got, _ := os.ReadFile(res.Output)
	if res.Verified || res.Checksum != codec.ChecksumAbsent || sum(got) != sum(orig) {
		t.Fatalf("uncompressed copies: %+v", res)
	}
}

// TestNotCopies: two different archives are not merged.
func TestNotCopies(t *testing.T) {
	a := testArchive(t, ".zst")
	dir := t.TempDir()
	b := make([]byte, len(a))
	rand.New(rand.NewSource(9)).Read(b)
	_, err := Merge([]string{damaged(t, dir, "a", a), damaged(t, dir, "b", b)}, Options{})
	if !errors.Is(err, ErrNotCopies) {
		t.Fatalf("got %v", err)
	}
}

// blocks returns the offsets of the blocks of type typ (0 raw, 2
// compressed) of min bytes or more in a zstd stream of one frame (RFC 8878
// block headers).
func blocks(t *testing.T, b []byte, typ, min int) []int {
	t.Helper()
	fhd := b[4]
	single := int(fhd>>5) & 1
	fcs := []int{single, 2, 4, 8}[fhd>>6]
	did := []int{0, 1, 2, 4}[fhd&3]
	p := 4 + 1 + (1 - single) + did + fcs
	var out []int
	for p+3 <= len(b) {
		h := int(binary.LittleEndian.Uint32(append(b[p:p+3:p+3], 0)))
		bt, size := h>>1&3, h>>3
		n := size
		if bt == 1 {
			n = 1
		}
		if bt == typ && n >= min {
			out = append(out, p+3)
		}
		p += 3 + n
		if h&1 != 0 {
			break
		}
	}
	if len(out) < 4 {
		t.Skipf("only %d blocks of type %d and %d bytes or more", len(out), typ, min)
	}
	return out
}

package zstd

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// compressedBlocks returns the compressed blocks of the one-frame stream c.
func compressedBlocks(t testing.TB, c []byte) []flipBlock {
	t.Helper()
	fh, err := parseFrameHeader(c)
	if err != nil {
		t.Fatal(err)
	}
	var out []flipBlock
	for p := int64(fh.size); ; {
		bh := parseBlockHeader(c[p:])
		if bh.typ == blockCompressed {
			out = append(out, flipBlock{p, bh})
		}
		p += 3 + int64(bh.clen)
		if bh.last {
			if p+4 != int64(len(c)) {
				t.Fatalf("not one frame: it ends at %d of %d", p+4, len(c))
			}
			return out
		}
	}
}

// applyFlips returns a copy of c with the repairs applied.
func applyFlips(c []byte, res *FlipResult) []byte {
	d := bytes.Clone(c)
	for _, f := range res.Repairs {
		if d[f.Offset] == f.Old {
			d[f.Offset] = f.New
		}
	}
	return d
}

// TestRepairFlips: single bit flips at random positions inside the
// compressed blocks of the zstd CLI's archive, each detected by the decoder,
// are repaired bit for bit (the repaired archive's SHA-256 is the
// original's); the time per repair is printed. Flips the decoder does not
// detect are counted and skipped (out of scope). 4 positions by default,
// 20 with VZSALVAGE_STRESS=1.
func TestRepairFlips(t *testing.T) {
	c := archive(t)
	n := 4
	if os.Getenv("VZSALVAGE_STRESS") != "" {
		n = 20
	}
	want := sha256.Sum256(c)
	blocks := compressedBlocks(t, c)
	rng := rand.New(rand.NewPCG(14, 1))
	done, undetected, tries := 0, 0, 0
	var total time.Duration
	for done < n && tries < 10*n {
		tries++
		b := blocks[rng.IntN(len(blocks))]
		off := b.at + 3 + rng.Int64N(int64(b.bh.clen))
		bit := rng.IntN(8)
		d := bytes.Clone(c)
		d[off] ^= 1 << bit
		start := time.Now()
		res, err := RepairFlips(bytes.NewReader(d), int64(len(d)), FlipOptions{})
		el := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Why, "does not detect") {
			undetected++
			t.Logf("offset %d bit %d: not detected (out of scope): %s", off, bit, res.Why)
			continue
		}
		done++
		total += el
		for _, s := range res.Blocks {
			t.Logf("offset %d bit %d (block %d, %d bytes): %s: %d positions, %d candidates, %d tried, section ok %d, block ok %d, next 1/4/16 ok %d/%d/%d, to the end %d, matched %d; %.2f s",
				off, bit, b.at, b.bh.clen, s.Section, s.Positions, s.Candidates, s.Tried, s.Section1, s.BlockOK, s.Next1, s.Next4, s.Next16, s.End, s.Matched, s.Elapsed.Seconds())
		}
		if !res.Repaired() {
			t.Errorf("offset %d bit %d: not repaired: %s", off, bit, res.Why)
			continue
		}
		got := applyFlips(d, res)
		if sha256.Sum256(got) != want {
			t.Errorf("offset %d bit %d: repaired wrongly: %v", off, bit, res.Repairs)
			continue
		}
		t.Logf("offset %d bit %d: %s in %.2f s", off, bit, res.Repairs[0], el.Seconds())
	}
	if done < n {
		t.Fatalf("only %d of %d flips detected", done, n)
	}
	t.Logf("%d flips repaired bit for bit (%.2f s each on average), %d not detected", done, total.Seconds()/float64(done), undetected)
}

package zstd

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/codec"
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

// TestRepairFlips: single bit flips inside the compressed blocks of the
// zstd CLI's archive, each detected by the decoder, are repaired bit for
// bit (the repaired archive's SHA-256 is the original's); the time per
// repair is printed. By default two pinned positions (a quick one and one
// of 4.6 s on 2 cores); with VZSALVAGE_STRESS=1, 20 positions drawn at
// random (flips the decoder does not detect are counted and skipped: out
// of scope).
func TestRepairFlips(t *testing.T) {
	c := archive(t)
	stress := os.Getenv("VZSALVAGE_STRESS") != ""
	n := 2
	fixed := [][2]int64{{487777, 4}, {1182846, 7}}
	if stress {
		n = 20
	}
	want := sha256.Sum256(c)
	blocks := compressedBlocks(t, c)
	rng := rand.New(rand.NewPCG(14, 1))
	done, undetected, tries := 0, 0, 0
	var total, worst time.Duration
	for done < n && tries < 10*n {
		tries++
		b := blocks[rng.IntN(len(blocks))]
		off := b.at + 3 + rng.Int64N(int64(b.bh.clen))
		bit := rng.IntN(8)
		if !stress {
			off, bit = fixed[done][0], int(fixed[done][1])
		}
		d := bytes.Clone(c)
		d[off] ^= 1 << bit
		start := time.Now()
		res, err := RepairFlips(bytes.NewReader(d), int64(len(d)), FlipOptions{Budget: 5 * time.Minute})
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
		worst = max(worst, el)
		for _, s := range res.Blocks {
			t.Logf("offset %d bit %d: block %d: %s: %d positions, %d candidates, %d tried, section ok %d, block ok %d, next 1/4/16 ok %d/%d/%d, to the end %d, matched %d; %.2f s",
				off, bit, s.Block, s.Section, s.Positions, s.Candidates, s.Tried, s.Section1, s.BlockOK, s.Next1, s.Next4, s.Next16, s.End, s.Matched, s.Elapsed.Seconds())
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
	t.Logf("%d flips repaired bit for bit (%.2f s each on average, %.2f s at most), %d not detected", done, total.Seconds()/float64(done), worst.Seconds(), undetected)
}

// TestRepairFlipsTwoFaults: two flips in one compressed block are not a
// single flip: no candidate makes the checksum match, and the repair is
// refused (no repair reported, the reason said) rather than made wrong.
func TestRepairFlipsTwoFaults(t *testing.T) {
	c := archive(t)
	var blk flipBlock
	for _, b := range compressedBlocks(t, c) {
		if b.at <= 487777 && 487777 < b.at+3+int64(b.bh.clen) {
			blk = b
		}
	}
	if blk.at == 0 || blk.at+3+int64(blk.bh.clen) < 487777+300 {
		t.Fatalf("the pinned archive changed: block %+v", blk)
	}
	d := bytes.Clone(c)
	d[487777] ^= 1 << 4 // alone, repaired in 0.1 s (TestRepairFlips)
	d[487777+250] ^= 1 << 1
	start := time.Now()
	res, err := RepairFlips(bytes.NewReader(d), int64(len(d)), FlipOptions{Budget: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Blocks {
		t.Logf("block %d: %s: %d candidates, %d tried, %d passed the section, %d to the end, %d matched", s.Block, s.Section, s.Candidates, s.Tried, s.Section1, s.End, s.Matched)
	}
	t.Logf("%.2f s: %s", time.Since(start).Seconds(), res.Why)
	if res.Repaired() || len(res.Repairs) > 0 || res.Why == "" || res.Intact {
		t.Fatalf("two faults in a block: %+v", res)
	}
}

// TestRepairFlipsByte: with FlipOptions.Bytes a changed byte (several
// bits) is repaired too, at 255 candidates per position instead of 8.
func TestRepairFlipsByte(t *testing.T) {
	c := archive(t)
	d := bytes.Clone(c)
	d[487777] ^= 0x5a
	start := time.Now()
	res, err := RepairFlips(bytes.NewReader(d), int64(len(d)), FlipOptions{Bytes: true, Budget: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Blocks {
		t.Logf("block %d: %s: %d positions, %d candidates, %d tried, %d passed the section, %d to the end, %d matched", s.Block, s.Section, s.Positions, s.Candidates, s.Tried, s.Section1, s.End, s.Matched)
	}
	t.Logf("%.2f s: %v %s", time.Since(start).Seconds(), res.Repairs, res.Why)
	if !res.Repaired() || !bytes.Equal(applyFlips(d, res), c) || res.Repairs[0].Bit != -1 {
		t.Fatalf("not repaired: %+v", res)
	}
}

// TestRepairFlipsFrames: in a stream of two frames the flip is looked for
// in the frame whose block fails, and checked by that frame's checksum; the
// frame before it is left as it is.
func TestRepairFlipsFrames(t *testing.T) {
	first, second := smallStream(t), archiveST(t)
	c := append(bytes.Clone(first), second...)
	blocks := compressedBlocks(t, second)
	for k := 0; k < 60; k++ {
		b := blocks[(k*7)%len(blocks)]
		off := int64(len(first)) + b.at + 3 + int64(k*977)%int64(b.bh.clen)
		d := bytes.Clone(c)
		d[off] ^= 1 << (k % 8)
		res, err := RepairFlips(bytes.NewReader(d), int64(len(d)), FlipOptions{Budget: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Why, "does not detect") {
			continue
		}
		t.Logf("offset %d: %v %s (%+v)", off, res.Repairs, res.Why, res.Blocks)
		if !res.Repaired() || !bytes.Equal(applyFlips(d, res), c) || res.Repairs[0].Offset != off {
			t.Fatalf("offset %d bit %d: %+v", off, k%8, res)
		}
		return
	}
	t.Fatal("no detected flip in 60 tries")
}

// TestRepairFlipsJunk: input that is no zstd stream, or one cut short, is
// not repaired, with a reason, and never panics.
func TestRepairFlipsJunk(t *testing.T) {
	c := archive(t)
	rng := rand.New(rand.NewPCG(3, 4))
	junk := make([]byte, 100000)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	hdrJunk := append(bytes.Clone(c[:64]), junk...)
	for name, in := range map[string][]byte{
		"empty": {}, "junk": junk, "header then junk": hdrJunk,
		"cut": c[:len(c)/2], "cut in the checksum": c[:len(c)-2], "zeros": make([]byte, 4096),
	} {
		res, err := RepairFlips(bytes.NewReader(in), int64(len(in)), FlipOptions{Budget: 2 * time.Second})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Repaired() || name != "empty" && (res.Intact || res.Why == "") {
			t.Errorf("%s: %+v", name, res)
		}
		t.Logf("%s: %s", name, res.Why)
	}
}

// TestRepairFlipsRandom: one flipped bit, two flipped bits close together
// or a random byte anywhere in a small stream (4 KiB blocks, headers and
// checksum included): the repair never panics, and whatever it repairs is
// the original bit for bit — never a wrong repair. (With
// VZSALVAGE_STRESS=1, 2,000 trials: one bit 260 repaired, 1 refused — two
// flips of a Huffman tree description both give the original content —,
// 406 not detected; two bits or a byte: none repaired but byte changes
// that were one bit.)
func TestRepairFlipsRandom(t *testing.T) {
	c := smallStream(t)
	rng := rand.New(rand.NewPCG(7, 8))
	n := 150
	if os.Getenv("VZSALVAGE_STRESS") != "" {
		n = 2000
	}
	var repaired, refused, undetected [3]int
	for i := 0; i < n; i++ {
		d := bytes.Clone(c)
		kind := i % 3
		p := rng.IntN(len(d))
		switch kind {
		case 0:
			d[p] ^= 1 << rng.IntN(8)
		case 1:
			d[p] ^= 1 << rng.IntN(8)
			q := min(len(d)-1, p+1+rng.IntN(64))
			d[q] ^= 1 << rng.IntN(8)
		case 2:
			d[p] = byte(rng.Uint32())
		}
		res, err := RepairFlips(bytes.NewReader(d), int64(len(d)), FlipOptions{Budget: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case res.Repaired():
			repaired[kind]++
			if !bytes.Equal(applyFlips(d, res), c) {
				t.Fatalf("kind %d at %d: a wrong repair %v", kind, p, res.Repairs)
			}
		case strings.Contains(res.Why, "does not detect") || res.Intact:
			undetected[kind]++
		default:
			refused[kind]++
			if kind == 0 && !strings.Contains(res.Why, "chain of block headers") {
				t.Logf("one bit at %d refused: %s", p, res.Why)
			}
		}
	}
	t.Logf("repaired %v, refused %v, not detected or unchanged %v (one bit, two bits, a byte)", repaired, refused, undetected)
}

// TestRepairFlipsHeader: a flipped bit in a block header breaks the chain
// of headers; the flip of the last headers that makes the chain hold and
// the checksum match is found: each of the 24 bits of a header is repaired
// bit for bit, a type bit that makes a compressed block raw (the chain
// holds, a later block fails) among the headers before the failing block.
func TestRepairFlipsHeader(t *testing.T) {
	c := archiveST(t)
	blocks := compressedBlocks(t, c)
	hp := blocks[len(blocks)/2].at
	repaired := 0
	for bit := 0; bit < 24; bit++ {
		d := bytes.Clone(c)
		d[hp+int64(bit/8)] ^= 1 << (bit % 8)
		start := time.Now()
		res, err := RepairFlips(bytes.NewReader(d), int64(len(d)), FlipOptions{})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case res.Repaired():
			if !bytes.Equal(applyFlips(d, res), c) {
				t.Fatalf("bit %d: a wrong repair %v", bit, res.Repairs)
			}
			repaired++
			t.Logf("header bit %d: %s in %.2f s", bit, res.Repairs[0], time.Since(start).Seconds())
		default:
			t.Logf("header bit %d: not repaired: %s", bit, res.Why)
		}
	}
	if repaired < 24 {
		t.Fatalf("%d of 24 header flips repaired", repaired)
	}
}

// TestRepairFlipsFile measures the flip repair on a one-frame archive
// $VZSALVAGE_FLIP_FILE (e.g. scripts/mkdisk | scripts/mkvma | zstd
// --threads=1): $VZSALVAGE_FLIP_N (default 5) flips the decoder detects,
// at random positions in compressed blocks, each repaired with a budget of
// $VZSALVAGE_FLIP_BUDGET (default 60s) and checked to be exactly the flip
// made; the time per repair is printed.
func TestRepairFlipsFile(t *testing.T) {
	c := envArchive(t, "VZSALVAGE_FLIP_FILE")
	n := 5
	if v, err := strconv.Atoi(os.Getenv("VZSALVAGE_FLIP_N")); err == nil {
		n = v
	}
	budget := DefaultFlipBudget
	if v, err := time.ParseDuration(os.Getenv("VZSALVAGE_FLIP_BUDGET")); err == nil {
		budget = v
	}
	blocks := compressedBlocks(t, c)
	rng := rand.New(rand.NewPCG(14, 2))
	done, undetected, repaired := 0, 0, 0
	for done < n {
		b := blocks[rng.IntN(len(blocks))]
		off := b.at + 3 + rng.Int64N(int64(b.bh.clen))
		bit := rng.IntN(8)
		src := &patchedAt{bytes.NewReader(c), off, c[off] ^ 1<<bit}
		start := time.Now()
		res, err := RepairFlips(src, int64(len(c)), FlipOptions{Budget: budget})
		el := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Why, "does not detect") {
			undetected++
			continue
		}
		done++
		for _, s := range res.Blocks {
			t.Logf("offset %d bit %d: block %d: %s: %d candidates, %d tried, %d passed the section, %d to the end, %d matched; %.2f s",
				off, bit, s.Block, s.Section, s.Candidates, s.Tried, s.Section1, s.End, s.Matched, s.Elapsed.Seconds())
		}
		ok := res.Repaired() && len(res.Repairs) == 1 && res.Repairs[0].Offset == off && res.Repairs[0].Bit == bit
		if res.Repaired() && !ok {
			t.Errorf("offset %d bit %d: a wrong repair %v", off, bit, res.Repairs)
		}
		if ok {
			repaired++
		}
		t.Logf("offset %d bit %d: repaired %v in %.2f s (the whole run; %s)", off, bit, ok, el.Seconds(), res.Why)
	}
	t.Logf("%d of %d detected flips repaired, %d not detected", repaired, n, undetected)
}

// FuzzRepairFlips: on any input the flip repair never panics, and a repair
// it reports makes a stream that the strict decoder reads to its end with
// every checksum matching.
func FuzzRepairFlips(f *testing.F) {
	c := smallStream(f)
	f.Add(c, 100, uint8(4))
	f.Add(c, 3000, uint8(1))
	f.Add(c[:200], 20, uint8(0x80))
	f.Fuzz(func(t *testing.T, data []byte, at int, mask uint8) {
		if len(data) > 256<<10 {
			return
		}
		d := bytes.Clone(data)
		if len(d) > 0 {
			d[uint(at)%uint(len(d))] ^= mask
		}
		res, err := RepairFlips(bytes.NewReader(d), int64(len(d)), FlipOptions{Budget: 100 * time.Millisecond, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Repaired() {
			return
		}
		z := newReader(bytes.NewReader(applyFlips(d, res)), codec.Options{Strict: true}, config{salvageOnly: true})
		if _, err := io.Copy(io.Discard, z); err != nil || z.Checksum() != codec.ChecksumOK {
			t.Fatalf("repaired %v, yet: %v, checksum %v", res.Repairs, err, z.Checksum())
		}
	})
}

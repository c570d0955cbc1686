package vma

import (
	"bytes"
	"io"
	"math/rand"
	"sort"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// fakeCodec plays a damaged decoder's output: bytes plus spans, revealed
// as they are read.
type fakeCodec struct {
	out   []byte
	spans []codec.Span
	pos   int
	rng   *rand.Rand
	// to play Resize: the clean stream, the ops, and the lengths decided
	orig     []byte
	ops      []dmgOp
	resizes  map[int]int   // op index -> 1 + the length a Resize set
	resyncAt map[int64]int // output offset of a Resync span -> op index
	resized  int
}

func (f *fakeCodec) Read(p []byte) (int, error) {
	if f.pos >= len(f.out) {
		return 0, io.EOF
	}
	n := min(len(p), 1+f.rng.Intn(200000), len(f.out)-f.pos)
	copy(p, f.out[f.pos:f.pos+n])
	f.pos += n
	return n, nil
}

func (f *fakeCodec) Spans() []codec.Span {
	i := sort.Search(len(f.spans), func(i int) bool { return f.spans[i].Off >= int64(f.pos) })
	return f.spans[:i]
}
func (f *fakeCodec) Problems() []damage.Problem { return nil }
func (f *fakeCodec) Checksum() codec.Checksum   { return codec.ChecksumMismatch }

type dmgOp struct {
	kind   byte // 't' taint, 'l' lose, 'r' resync loss, 'x' truncate
	lo, hi int
	est    int   // resync: placeholder length
	max    int64 // resync: MaxLen
	cond   int   // resync: bytes after the loss that depend on its length (Cond)
}

// Resize plays a decoder that decodes again once told a loss's length: the
// Cond bytes after it are right only if the length given is the true one.
func (f *fakeCodec) Resize(off, n int64) error {
	i, ok := f.resyncAt[off]
	if !ok || n < 0 || (f.ops[i].max >= 0 && n > f.ops[i].max) {
		return codec.ErrCannotResize
	}
	f.resizes[i] = int(n) + 1
	g := damageStream(f.orig, f.ops, f.rng, f.resizes)
	f.out, f.spans, f.resyncAt = g.out, g.spans, g.resyncAt
	f.pos = int(off)
	f.resized++
	return nil
}

// damageStream applies ops (sorted, disjoint) to a clean stream. resizes
// gives, per resync op, 1 + the length a Resize set (0: not resized).
func damageStream(orig []byte, ops []dmgOp, rng *rand.Rand, resizes map[int]int) *fakeCodec {
	if resizes == nil {
		resizes = map[int]int{}
	}
	f := &fakeCodec{rng: rng, orig: orig, ops: ops, resizes: resizes, resyncAt: map[int64]int{}}
	pos := 0
	for i, op := range ops {
		f.out = append(f.out, orig[pos:op.lo]...)
		o := int64(len(f.out))
		switch op.kind {
		case 't':
			for _, c := range orig[op.lo:op.hi] {
				f.out = append(f.out, c^byte(1+rng.Intn(255)))
			}
			f.spans = append(f.spans, codec.Span{Off: o, Len: int64(op.hi - op.lo), State: damage.Tainted})
		case 'h': // an extent header whose entries copied lost zeros
			h := bytes.Clone(orig[op.lo:op.hi])
			for e := extOffInfo; e+8 <= len(h); e += 8 {
				if h[e] == 0xFF && h[e+1] == 0xFF {
					h[e+1] = 0 // low byte of a full mask
				}
				h[e+3] = 0 // device id
			}
			if n := len(h); n >= ExtentHeaderSize {
				h[n-9-8] = 0 // and the low byte of a cluster number in a run
			}
			f.out = append(f.out, h...)
			f.spans = append(f.spans, codec.Span{Off: o, Len: int64(op.hi - op.lo), State: damage.Tainted})
		case 'k': // Cond bytes copied across the loss before: while that loss has a
			// wrong length they hold a copy of an earlier header (from est)
			src := orig[op.lo:op.hi]
			if prev := ops[i-1]; resizes[i-1]-1 != prev.hi-prev.lo {
				src = orig[op.est : op.est+op.hi-op.lo]
			}
			f.out = append(f.out, src...)
			f.spans = append(f.spans, codec.Span{Off: o, Len: int64(op.hi - op.lo), State: damage.Tainted, Cond: true})
		case 'l':
			f.out = append(f.out, make([]byte, op.hi-op.lo)...)
			f.spans = append(f.spans, codec.Span{Off: o, Len: int64(op.hi - op.lo), State: damage.Lost})
		case 'r':
			n, resync := op.est, true
			if resizes[i] != 0 {
				n, resync = resizes[i]-1, false
			}
			f.out = append(f.out, make([]byte, n)...)
			f.spans = append(f.spans, codec.Span{Off: o, Len: int64(n), State: damage.Lost, Resync: resync, MaxLen: op.max})
			if resync {
				f.resyncAt[o] = i
			}
			// bytes after the loss decoded at the assumed distance
			c := min(op.cond, len(orig)-op.hi)
			if next := nextLo(ops, i); next >= 0 {
				c = min(c, next-op.hi)
			}
			if c > 0 {
				right := n == op.hi-op.lo
				co := int64(len(f.out))
				for _, b := range orig[op.hi : op.hi+c] {
					if !right {
						b ^= 0x5a
					}
					f.out = append(f.out, b)
				}
				f.spans = append(f.spans, codec.Span{Off: co, Len: int64(c), State: damage.Tainted, Cond: true})
				pos = op.hi + c
				continue
			}
		case 'x':
			return f
		}
		pos = op.hi
	}
	f.out = append(f.out, orig[pos:]...)
	return f
}

// nextLo returns where the op after i starts, or -1.
func nextLo(ops []dmgOp, i int) int {
	if i+1 < len(ops) {
		return ops[i+1].lo
	}
	return -1
}

// salvageAndCheck reads a damaged stream and checks the golden rule: every
// byte outside the reported damage equals the original. It returns the
// number of non-zero clusters recovered byte-identical and their total.
func salvageAndCheck(t *testing.T, src io.Reader, disks [][]byte) (good, total int, res *Result) {
	t.Helper()
	r, err := NewReader(src, Options{Salvage: true})
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	img := make([][]byte, len(disks))
	for i, d := range disks {
		img[i] = make([]byte, len(d))
	}
	for {
		c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		d := img[c.Dev-1]
		off := int(c.Offset())
		k := 0
		for j := 0; j < BlocksPerCluster; j++ {
			lo := off + j*BlockSize
			if lo >= len(d) {
				break
			}
			hi := min(lo+BlockSize, len(d))
			if c.Mask&(1<<j) != 0 {
				copy(d[lo:hi], c.Data[k*BlockSize:])
				k++
			} else if c.Rewrite {
				clear(d[lo:hi])
			}
		}
	}
	res = r.Result()
	for i, d := range disks {
		dm := res.Devices[i].Damage
		for c := 0; c*ClusterSize < len(d); c++ {
			lo, hi := c*ClusterSize, min((c+1)*ClusterSize, len(d))
			same := bytes.Equal(d[lo:hi], img[i][lo:hi])
			if !same {
				// every byte that differs lies in the damage map
				for b := lo; b < hi; b++ {
					if d[b] != img[i][b] && !dm.Any(int64(b), 1, damage.Tainted) {
						t.Fatalf("disk %d byte %d (cluster %d) differs but is not in the damage map (result %+v)", i, b, c, res.Devices[i].Clusters)
					}
				}
			}
			if !isZeroAll(d[lo:hi]) {
				total++
				if same {
					good++
				}
			}
		}
	}
	return good, total, res
}

func isZeroAll(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

func TestSalvageCases(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	disks := [][]byte{testDisk(rng, 40<<20), testDisk(rng, 540672)}
	arc, h := testArchive(t, rng, disks)
	ext := extentOffsets(t, arc, h)
	mid := ext[len(ext)/2]
	for _, tc := range []struct {
		name     string
		ops      []dmgOp
		minGood  float64
		trusted  bool
		mustLose bool
	}{
		{"clean", nil, 1, true, false},
		{"taint in data", []dmgOp{{kind: 't', lo: mid + 5000, hi: mid + 9000}}, 0.99, true, false},
		{"lost header", []dmgOp{{kind: 'l', lo: mid, hi: mid + 4096}}, 0.9, false, true},
		{"header entries tainted", []dmgOp{{kind: 'h', lo: mid, hi: mid + ExtentHeaderSize}}, 1, true, false},
		{"header entries tainted after a resync", []dmgOp{
			{kind: 'r', lo: ext[5] - 300000, hi: ext[5] - 200000, est: 131072, max: 262144, cond: 100000},
			{kind: 'h', lo: ext[5], hi: ext[5] + ExtentHeaderSize}}, 0.99, true, true},
		{"resync in data", []dmgOp{{kind: 'r', lo: mid + 700000, hi: mid + 800000, est: 131072, max: 131072}}, 0.99, true, true},
		{"resync est short", []dmgOp{{kind: 'r', lo: mid + 700000, hi: mid + 800000, est: 5000, max: 131072}}, 0.99, true, true},
		{"resync unbounded", []dmgOp{{kind: 'r', lo: mid + 700000, hi: mid + 800000, est: 131072, max: -1}}, 0.99, true, true},
		{"resync over header", []dmgOp{{kind: 'r', lo: ext[5] - 3000, hi: ext[5] + 3000, est: 131072, max: 131072}}, 0.9, false, true},
		{"resync hides extent", []dmgOp{{kind: 'r', lo: ext[4] - 100000, hi: ext[6] + 100000, est: 131072, max: -1}}, 0.5, false, true},
		// The loss swallows the next header and half the next extent: the
		// header after that fits as the end of this extent, and the loss is
		// resized to a wrong length. What follows the loss in this extent
		// must stay provisional (clusters are missing at the end).
		// After a loss of unknown length, a copy of an earlier header comes
		// out of bytes copied across the loss (at the wrong distance): it
		// must not be taken for the next header.
		{"header copied across a loss", []dmgOp{
			{kind: 'r', lo: ext[5] + 10000, hi: ext[5] + 200000, est: 131072, max: -1},
			{kind: 'k', lo: ext[5] + 300000, hi: ext[5] + 300000 + ExtentHeaderSize, est: ext[2]}}, 0.95, true, true},
		{"resync hides the next header, a later one fits", []dmgOp{{kind: 'r', lo: ext[5] + 10000, hi: ext[6] + (ext[7]-ext[6])/2, est: 131072, max: -1}}, 0.5, false, true},
		{"truncated mid extent", []dmgOp{{kind: 'x', lo: mid + 1234567}}, 0.3, false, true},
		{"truncated at boundary", []dmgOp{{kind: 'x', lo: mid}}, 0.3, false, true},
		{"resync with cond bytes, estimate wrong", []dmgOp{{kind: 'r', lo: mid + 700000, hi: mid + 800000, est: 131072, max: 262144, cond: 300000}}, 0.99, true, true},
		{"resync with cond bytes, estimate right", []dmgOp{{kind: 'r', lo: mid + 700000, hi: mid + 800000, est: 100000, max: 262144, cond: 300000}}, 0.99, true, true},
		{"resync with cond bytes over a header", []dmgOp{{kind: 'r', lo: ext[5] - 3000, hi: ext[5] + 3000, est: 131072, max: 131072, cond: 300000}}, 0.85, false, true},
		{"garbage run", []dmgOp{{kind: 'r', lo: mid + 300000, hi: mid + 365536, est: 65536, max: 262144}}, 0.99, true, false},
		{"three at once", []dmgOp{
			{kind: 't', lo: ext[2] + 100, hi: ext[2] + 200},
			{kind: 'r', lo: ext[7] + 100000, hi: ext[7] + 230000, est: 131072, max: 262144},
			{kind: 'l', lo: ext[len(ext)-2], hi: ext[len(ext)-2] + 512}}, 0.8, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, total, res := salvageAndCheck(t, damageStream(arc, tc.ops, rng, nil), disks)
			frac := float64(good) / float64(total)
			t.Logf("%d of %d non-zero clusters recovered (%.2f%%), tails placed %d trusted %v, resized %d, problems %d",
				good, total, 100*frac, res.TailsPlaced, res.TailsTrusted, res.Resized, res.ProblemCount)
			if frac < tc.minGood {
				t.Errorf("recovered %.4f < %.4f", frac, tc.minGood)
			}
			if res.TailsPlaced > 0 && tc.trusted != res.TailsTrusted {
				t.Errorf("tails trusted %v, want %v", res.TailsTrusted, tc.trusted)
			}
			lost := int64(0)
			for _, d := range res.Devices {
				lost += d.Clusters.Lost
			}
			if tc.mustLose != (lost > 0) {
				t.Errorf("lost clusters %d", lost)
			}
		})
	}
}

// TestSalvageRandom applies random damage and checks the golden rule.
func TestSalvageRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	disks := [][]byte{testDisk(rng, 8<<20), testDisk(rng, 540672)}
	arc, _ := testArchive(t, rng, disks)
	for iter := 0; iter < 150; iter++ {
		var ops []dmgOp
		pos := 0
		for pos < len(arc) && len(ops) < 4 {
			lo := pos + rng.Intn(len(arc)/3+1)
			if lo >= len(arc) {
				break
			}
			hi := min(lo+1+rng.Intn(300000), len(arc))
			op := dmgOp{kind: "tlrrx"[rng.Intn(5)], lo: lo, hi: hi}
			if op.kind == 'r' {
				op.cond = rng.Intn(300000)
				op.est = rng.Intn(200000)
				op.max = int64(hi - lo + rng.Intn(100000))
				if rng.Intn(3) == 0 {
					op.max = -1
				}
			}
			ops = append(ops, op)
			pos = hi
			if op.kind == 'x' {
				break
			}
		}
		if ops[0].lo < 13000 {
			continue // damage in the main header: nothing to salvage from
		}
		salvageAndCheck(t, damageStream(arc, ops, rng, nil), disks)
	}
}

// extentOffsets lists the stream offsets of an archive's extent headers.
func extentOffsets(t testing.TB, arc []byte, h *Header) []int {
	var offs []int
	for pos := h.Size; pos < len(arc); {
		eh, err := ParseExtentHeader(arc[pos:], h.UUID)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, pos)
		pos += ExtentHeaderSize + int(eh.DataSize())
	}
	return offs
}

// TestTailSearchBounded: after a loss of unknown length inside an extent,
// the search for the next header widens past later losses, whose
// placeholders the buffer holds too; with a loss every 500 KB it must not
// buffer them all (it did: 64 losses' worth).
func TestTailSearchBounded(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	disks := [][]byte{testDisk(rng, 40<<20)}
	arc, h := testArchive(t, rng, disks)
	ext := extentOffsets(t, arc, h)
	var ops []dmgOp
	for lo := ext[3] + 10000; lo+100000 < ext[len(ext)-2]; lo += 500000 {
		ops = append(ops, dmgOp{kind: 'r', lo: lo, hi: lo + 100000, est: 2 << 20, max: -1})
	}
	peak := peakBuffer(t, damageStream(arc, ops, rng, nil))
	// the extent before the loss, its tail's room, the widening, and
	// fill's growth margin
	const bound = (2*MaxExtentSize + maxTailWiden) * 5 / 4
	t.Logf("%d losses: peak buffer %d bytes (bound %d)", len(ops), peak, bound)
	if peak > bound {
		t.Errorf("peak buffer %d bytes, want at most %d", peak, bound)
	}
	salvageAndCheck(t, damageStream(arc, ops, rng, nil), disks)
}

// peakBuffer reads src with salvage and returns the largest stream buffer
// the reader held.
func peakBuffer(t *testing.T, src io.Reader) int {
	t.Helper()
	r, err := NewReader(src, Options{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	peak := 0
	for {
		_, err := r.Next()
		peak = max(peak, cap(r.buf))
		if err == io.EOF {
			return peak
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLongLossNotBuffered: a loss of unknown length estimated far longer
// than an extent, inside one, is not buffered while the reader looks for
// the extent's tail (it was: 253 MiB for a loss of 200 MiB), and the
// salvage is what it was.
func TestLongLossNotBuffered(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	disks := [][]byte{testDisk(rng, 40<<20)}
	arc, h := testArchive(t, rng, disks)
	ext := extentOffsets(t, arc, h)
	var ops []dmgOp
	for _, i := range []int{2, len(ext) - 2} {
		lo := ext[i] + 10000
		ops = append(ops, dmgOp{kind: 'r', lo: lo, hi: lo + 100000, est: 48 << 20, max: -1})
	}
	// with Resize, and without (the hole is kept until the reader passes it)
	for _, resizer := range []bool{true, false} {
		src := func() io.Reader {
			f := damageStream(arc, ops, rng, nil)
			if resizer {
				return f
			}
			return struct{ codec.Reader }{f}
		}
		peak := peakBuffer(t, src())
		const bound = (2*MaxExtentSize + maxTailWiden) * 5 / 4
		t.Logf("resizer %v: peak buffer %d bytes (bound %d)", resizer, peak, bound)
		if peak > bound {
			t.Errorf("resizer %v: peak buffer %d bytes, want at most %d", resizer, peak, bound)
		}
		good, total, _ := salvageAndCheck(t, src(), disks)
		t.Logf("resizer %v: %d of %d clusters right", resizer, good, total)
	}
}

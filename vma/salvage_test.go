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
}

// damageStream applies ops (sorted, disjoint) to a clean stream.
func damageStream(orig []byte, ops []dmgOp, rng *rand.Rand) *fakeCodec {
	f := &fakeCodec{rng: rng}
	pos := 0
	for _, op := range ops {
		f.out = append(f.out, orig[pos:op.lo]...)
		o := int64(len(f.out))
		switch op.kind {
		case 't':
			for _, c := range orig[op.lo:op.hi] {
				f.out = append(f.out, c^byte(1+rng.Intn(255)))
			}
			f.spans = append(f.spans, codec.Span{Off: o, Len: int64(op.hi - op.lo), State: damage.Tainted})
		case 'l':
			f.out = append(f.out, make([]byte, op.hi-op.lo)...)
			f.spans = append(f.spans, codec.Span{Off: o, Len: int64(op.hi - op.lo), State: damage.Lost})
		case 'r':
			f.out = append(f.out, make([]byte, op.est)...)
			f.spans = append(f.spans, codec.Span{Off: o, Len: int64(op.est), State: damage.Lost, Resync: true, MaxLen: op.max})
		case 'x':
			return f
		}
		pos = op.hi
	}
	f.out = append(f.out, orig[pos:]...)
	return f
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
			if !same && !dm.Any(int64(lo), int64(hi-lo), damage.Tainted) {
				t.Fatalf("disk %d cluster %d differs but is not in the damage map (result %+v)", i, c, res.Devices[i].Clusters)
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
		{"resync in data", []dmgOp{{kind: 'r', lo: mid + 700000, hi: mid + 800000, est: 131072, max: 131072}}, 0.99, true, true},
		{"resync est short", []dmgOp{{kind: 'r', lo: mid + 700000, hi: mid + 800000, est: 5000, max: 131072}}, 0.99, true, true},
		{"resync unbounded", []dmgOp{{kind: 'r', lo: mid + 700000, hi: mid + 800000, est: 131072, max: -1}}, 0.99, true, true},
		{"resync over header", []dmgOp{{kind: 'r', lo: ext[5] - 3000, hi: ext[5] + 3000, est: 131072, max: 131072}}, 0.9, false, true},
		{"resync hides extent", []dmgOp{{kind: 'r', lo: ext[4] - 100000, hi: ext[6] + 100000, est: 131072, max: -1}}, 0.5, false, true},
		{"truncated mid extent", []dmgOp{{kind: 'x', lo: mid + 1234567}}, 0.3, false, true},
		{"truncated at boundary", []dmgOp{{kind: 'x', lo: mid}}, 0.3, false, true},
		{"garbage run", []dmgOp{{kind: 'r', lo: mid + 300000, hi: mid + 365536, est: 65536, max: 262144}}, 0.99, true, false},
		{"three at once", []dmgOp{
			{kind: 't', lo: ext[2] + 100, hi: ext[2] + 200},
			{kind: 'r', lo: ext[7] + 100000, hi: ext[7] + 230000, est: 131072, max: 262144},
			{kind: 'l', lo: ext[len(ext)-2], hi: ext[len(ext)-2] + 512}}, 0.8, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, total, res := salvageAndCheck(t, damageStream(arc, tc.ops, rng), disks)
			frac := float64(good) / float64(total)
			t.Logf("%d of %d non-zero clusters recovered (%.2f%%), tails placed %d trusted %v, problems %d",
				good, total, 100*frac, res.TailsPlaced, res.TailsTrusted, res.ProblemCount)
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
		salvageAndCheck(t, damageStream(arc, ops, rng), disks)
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

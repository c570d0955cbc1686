package zstd

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// testDonor is a donor made of a copy of the original output (changed
// where a test wants it wrong) and the true lengths of the first pass's
// losses.
type testDonor struct {
	data    []byte
	lengths map[int64]codec.Loss
	asked   int
}

func (d *testDonor) Loss(off int64) (codec.Loss, bool) {
	l, ok := d.lengths[off]
	return l, ok
}

func (d *testDonor) Donate(off int64, p []byte) []codec.Piece {
	d.asked++
	if off < 0 || off >= int64(len(d.data)) {
		return nil
	}
	n := copy(p, d.data[off:])
	return []codec.Piece{{Off: off, Len: int64(n)}}
}

// trueLosses returns, for a first pass's trace, the true output offset and
// length of each loss (from the reference block map), as the VMA extent
// arithmetic would establish them, and whether every loss was found.
func trueLosses(ref refMap, blocks []blockRecord) (map[int64]codec.Loss, bool) {
	out := map[int64]codec.Loss{}
	all := true
	prevEnd, havePrev := int64(0), false
	inLoss := false
	start := int64(-1)
	for _, b := range blocks {
		if b.Placeholder {
			if !inLoss {
				inLoss = true
				start = -1
				if havePrev {
					start = prevEnd
				} else if i, ok := ref.byIn[b.In]; ok {
					start = ref.blocks[i].Out
				}
			}
			continue
		}
		i, ok := ref.byIn[b.In]
		if inLoss {
			inLoss = false
			if ok && start >= 0 && ref.blocks[i].Out >= start {
				out[start] = codec.Loss{Off: start, Len: ref.blocks[i].Out - start, Resume: b.In}
			} else {
				all = false
			}
		}
		havePrev = ok && ref.blocks[i].N == b.N
		if havePrev {
			prevEnd = ref.blocks[i].Out + ref.blocks[i].N
		}
	}
	if inLoss {
		// a loss up to the frame's end: its length is what is left
		all = false
	}
	return out, all
}

// donorTrial damages the stress stream as seed says, decodes it, and
// decodes it again with a donor (the original, with wrong bytes where
// wrong says). It reports whether the damage was detectable (spans in the
// first pass), whether every loss had a known length, whether the second
// pass was verified by the checksum and equals the original, and the bytes
// outside every span (Donor spans included) that differ from the original.
func donorTrial(t *testing.T, s *stressStream, seed uint64, wrong func([]byte)) (detectable, known, verified bool, bad int64) {
	r := rand.New(rand.NewPCG(seed, 0xd0d0))
	d := append([]byte(nil), s.c...)
	at := r.Int64N(int64(len(d)))
	end := min(at+1+r.Int64N(96<<10), int64(len(d)))
	for p := at; p < end; p++ {
		d[p] = byte(r.Uint32())
	}
	first := decode(d, codec.Options{}, config{})
	if len(first.spans) == 0 {
		return false, false, false, 0
	}
	lengths, all := trueLosses(s.ref, first.blocks)
	data := append([]byte(nil), s.orig...)
	if wrong != nil {
		wrong(data)
	}
	donor := &testDonor{data: data, lengths: lengths}
	second := decode(d, codec.Options{Donor: donor}, config{})
	if second.err != nil {
		t.Fatalf("seed %d: %v", seed, second.err)
	}
	verified = second.sum == codec.ChecksumOK && bytes.Equal(second.out, s.orig)
	if second.sum == codec.ChecksumOK && !bytes.Equal(second.out, s.orig) {
		t.Fatalf("seed %d: checksum ok but the output differs from the original", seed)
	}
	if !all {
		return true, false, verified, 0
	}
	n := min(len(second.out), len(s.orig))
	p := 0
	for _, sp := range append(second.spans, codec.Span{Off: int64(n)}) {
		for ; p < int(min(sp.Off, int64(n))); p++ {
			if second.out[p] != s.orig[p] {
				bad++
			}
		}
		p = max(p, int(min(sp.End(), int64(n))))
	}
	if len(second.out) != len(s.orig) {
		t.Errorf("seed %d: %d bytes out, %d original, with every loss's length known", seed, len(second.out), len(s.orig))
	}
	return true, true, verified, bad
}

// TestDonorVerifies: garbage runs in the stream, a clean donor with the
// losses' true lengths: the second pass is the original, bit for bit, and
// its checksum says so.
func TestDonorVerifies(t *testing.T) {
	s := newStressStream(t)
	n, det, ver := 0, 0, 0
	for seed := uint64(0); seed < 6; seed++ {
		detectable, known, verified, bad := donorTrial(t, s, seed, nil)
		n++
		if bad != 0 {
			t.Errorf("seed %d: %d wrong bytes outside the spans", seed, bad)
		}
		if !detectable || !known {
			continue
		}
		det++
		if verified {
			ver++
		} else {
			t.Errorf("seed %d: a clean donor with known lengths did not verify", seed)
		}
	}
	t.Logf("%d trials, %d detectable with known lengths, %d verified bit-exact", n, det, ver)
}

// TestDonorWrong: a donor that is wrong in places (as a cluster that
// changed between nights) is never verified, and no byte outside the
// spans the second pass reports is wrong.
func TestDonorWrong(t *testing.T) {
	s := newStressStream(t)
	for seed := uint64(0); seed < 4; seed++ {
		wrong := func(b []byte) {
			// every 64 KiB, 4 KiB rewritten
			for p := 0; p+4096 <= len(b); p += 64 << 10 {
				for i := p; i < p+4096; i++ {
					b[i] ^= 0x5a
				}
			}
		}
		_, _, verified, bad := donorTrial(t, s, seed, wrong)
		if bad != 0 {
			t.Errorf("seed %d: %d wrong bytes outside the spans", seed, bad)
		}
		if verified {
			t.Errorf("seed %d: a wrong donor verified", seed)
		}
	}
}

// TestDonorStress runs the stress trials with a clean donor (see
// TestStress): every trial whose damage was detectable and whose losses'
// lengths were known must verify bit-exact.
//
//	VZSALVAGE_STRESS=300 go test ./codec/zstd -run 'TestDonorStress$' -v -timeout 1h
func TestDonorStress(t *testing.T) {
	first, end := testutil.Stress(t)
	s := newStressStream(t)
	var det, known, ver, unknownVer int
	for seed := first; seed < end; seed++ {
		d, k, v, bad := donorTrial(t, s, seed, nil)
		if bad != 0 {
			t.Errorf("seed %d: %d wrong bytes outside the spans", seed, bad)
		}
		if d {
			det++
		}
		switch {
		case k:
			known++
			if v {
				ver++
			} else {
				t.Errorf("seed %d: not verified", seed)
			}
		case v:
			unknownVer++
		}
	}
	t.Logf("%d trials: %d detectable, %d with every loss's length known, %d of those verified bit-exact; %d verified without known lengths", end-first, det, known, ver, unknownVer)
}

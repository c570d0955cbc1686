package zstd

import (
	"bytes"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// passResult is what a pass reported, for comparing two passes.
type passResult struct {
	out      []byte
	err      error
	spans    []codec.Span
	problems []damage.Problem
	sum      codec.Checksum
	losses   []codec.Loss
}

func readPass(t *testing.T, z *Reader) passResult {
	t.Helper()
	var p passResult
	p.out, p.err = io.ReadAll(z)
	p.spans = slices.Clone(z.Spans())
	p.problems = slices.Clone(z.Problems())
	p.sum = z.Checksum()
	p.losses = z.Losses()
	return p
}

// samePass reports how a pass resumed from c at output offset from
// differs from one started at the stream's beginning, or "".
func samePass(full, res passResult, c *Checkpoint, from int64) string {
	switch {
	case (full.err == nil) != (res.err == nil) || full.err != nil && full.err.Error() != res.err.Error():
		return "errors differ: " + errString(full.err) + " / " + errString(res.err)
	case from > int64(len(full.out)) || !bytes.Equal(full.out[from:], res.out):
		return "output differs"
	case full.sum != res.sum:
		return "checksum verdict differs"
	case !slices.Equal(full.problems, res.problems):
		return "problems differ"
	case !slices.Equal(full.losses, res.losses):
		return "losses differ"
	}
	var want []codec.Span
	for _, s := range full.spans {
		if lo := min(from, c.hashed); s.End() > lo || s.Resync && s.Off >= lo {
			want = append(want, s)
		}
	}
	if !slices.Equal(want, res.spans) {
		return "spans differ"
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// TestCheckpointResume: a first pass saves a checkpoint at its first
// handover; a Reader resumed from it (at the checkpoint, at the earliest
// offset it can replay from, and between) gives the same output past that
// offset, the same spans, problems and checksum verdict as the pass from
// the stream's start — a first pass, a second pass with a clean donor
// (verified bit-exact) and one with a wrong donor — at several damage
// positions in the zstd CLI's streams.
func TestCheckpointResume(t *testing.T) {
	s := newStressStream(t)
	saved, verified, dropped := 0, 0, 0
	for i, frac := range []float64{0.1, 0.3, 0.5, 0.7, 0.9} {
		// (size 0: the block's end and the next header overwritten)
		for _, size := range []int{0, 1, 4 << 10, 64 << 10} {
			d := append([]byte(nil), s.c...)
			bi := pickCompressed(t, s.c, s.ref, frac)
			at := int64(s.ref.blocks[bi].In) + 3 + int64(size%997)
			r := rand.New(rand.NewPCG(uint64(i), uint64(size)))
			for p := at; p < min(at+int64(size), int64(len(d))); p++ {
				d[p] = byte(r.Uint32())
			}
			if size == 0 && bi+1 < len(s.ref.blocks) {
				// the last bytes of the block (its sequences' final
				// bits) and the next header
				for p := s.ref.blocks[bi+1].In - 2; p < s.ref.blocks[bi+1].In+3; p++ {
					d[p] = 0xff
				}
			}
			var blocks []blockRecord
			z := newReader(bytes.NewReader(d), codec.Options{}, config{trace: func(b blockRecord) { blocks = append(blocks, b) }})
			z.KeepCheckpoint()
			first := readPass(t, z)
			cp := z.Saved()
			z.Close()
			zp := newReader(bytes.NewReader(d), codec.Options{}, config{})
			if why := samePass(readPass(t, zp), first, &Checkpoint{}, 0); why != "" {
				t.Errorf("frac %.1f size %d: a first pass keeping a checkpoint and one not: %s", frac, size, why)
			}
			zp.Close()
			if len(first.spans) == 0 {
				continue
			}
			if cp == nil {
				dropped++
				t.Logf("frac %.1f size %d: no checkpoint (first span at %d)", frac, size, first.spans[0].Off)
				continue
			}
			saved++
			if first.spans[0].Off < cp.hashed {
				t.Fatalf("frac %.1f size %d: checkpoint at %d, damage from %d", frac, size, cp.Out, first.spans[0].Off)
			}
			lengths, _ := trueLosses(s.ref, blocks)
			wrong := append([]byte(nil), s.orig...)
			for p := 0; p+4096 <= len(wrong); p += 64 << 10 {
				for k := p; k < p+4096; k++ {
					wrong[k] ^= 0x5a
				}
			}
			for _, pass := range []struct {
				name  string
				donor func() codec.Donor
			}{
				{"first", func() codec.Donor { return nil }},
				{"donor", func() codec.Donor { return &testDonor{data: s.orig, lengths: lengths} }},
				{"wrong-donor", func() codec.Donor { return &testDonor{data: wrong, lengths: lengths} }},
			} {
				zf := newReader(bytes.NewReader(d), codec.Options{Donor: pass.donor()}, config{})
				full := readPass(t, zf)
				zf.Close()
				if pass.name == "donor" && full.sum == codec.ChecksumOK && bytes.Equal(full.out, s.orig) {
					verified++
				}
				for _, from := range []int64{cp.Out, cp.From(), (cp.From() + cp.Out) / 2} {
					// (the source as the archive's read-ahead is, at one offset)
					var src io.Reader = bytes.NewReader(d[cp.In:])
					if from == cp.From() {
						src = &asyncSource{r: src}
					}
					zr, err := ResumeReader(src, codec.Options{Donor: pass.donor()}, cp, from)
					if err != nil {
						t.Fatal(err)
					}
					res := readPass(t, zr)
					zr.Close()
					if why := samePass(full, res, cp, from); why != "" {
						t.Errorf("frac %.1f size %d %s from %d (checkpoint %d, input %d): %s", frac, size, pass.name, from, cp.Out, cp.In, why)
					}
				}
			}
		}
	}
	t.Logf("%d checkpoints saved, %d not; %d clean-donor passes verified", saved, dropped, verified)
	if saved < 8 {
		t.Errorf("only %d checkpoints saved", saved)
	}
	// A first pass keeping a checkpoint reads undamaged streams as
	// another: one frame, and two (the hash of the first frame's held
	// output completed at its end).
	two := append(append([]byte(nil), s.c...), s.c...)
	for _, c := range [][]byte{s.c, two} {
		z := newReader(bytes.NewReader(c), codec.Options{}, config{})
		z.KeepCheckpoint()
		p := readPass(t, z)
		if p.sum != codec.ChecksumOK || len(p.spans) > 0 || len(p.problems) > 0 || len(p.out) != len(c)/len(s.c)*len(s.orig) || z.Saved() != nil {
			t.Errorf("undamaged stream of %d bytes: checksum %v, %d spans, %d problems, %d bytes out", len(c), p.sum, len(p.spans), len(p.problems), len(p.out))
		}
	}
	if _, err := ResumeReader(bytes.NewReader(nil), codec.Options{}, nil, 0); err == nil {
		t.Error("a nil checkpoint resumed")
	}
}

// TestCheckpointCost measures what resuming saves: the archive the
// environment names, hit by a 64 KiB garbage run over the first compressed
// block's header at 30 % and 80 % of its length, read from its start and from the first pass's checkpoint
// (median wall time of 3 reads each, no donor: the clean prefix is what
// differs).
//
//	VZSALVAGE_CKPT_ARCHIVE=FILE.zst go test -run 'TestCheckpointCost$' -v ./codec/zstd
func TestCheckpointCost(t *testing.T) {
	c := envArchive(t, "VZSALVAGE_CKPT_ARCHIVE")
	for _, pct := range []int64{30, 80} {
		d := append([]byte(nil), c...)
		at := firstCompressedAfter(t, c, int64(len(d))*pct/100) - 100
		r := rand.New(rand.NewPCG(uint64(pct), 1))
		for p := at; p < min(at+64<<10, int64(len(d))); p++ {
			d[p] = byte(r.Uint32())
		}
		z := newReader(bytes.NewReader(d), codec.Options{}, config{})
		z.KeepCheckpoint()
		full := readPass(t, z)
		cp := z.Saved()
		z.Close()
		if cp == nil {
			t.Log(at, z.ckptTried, full.problems[:min(3, len(full.problems))], full.spans[:min(3, len(full.spans))])
			t.Fatalf("%d %%: no checkpoint", pct)
		}
		zr, err := ResumeReader(bytes.NewReader(d[cp.In:]), codec.Options{}, cp, cp.Out)
		if err != nil {
			t.Fatal(err)
		}
		if why := samePass(full, readPass(t, zr), cp, cp.Out); why != "" {
			t.Fatalf("%d %%: %s", pct, why)
		}
		zr.Close()
		var tFull, tRes []time.Duration
		for range 3 {
			t0 := time.Now()
			zf := newReader(bytes.NewReader(d), codec.Options{}, config{})
			io.Copy(io.Discard, zf)
			zf.Close()
			tFull = append(tFull, time.Since(t0))
			t0 = time.Now()
			zr, _ := ResumeReader(bytes.NewReader(d[cp.In:]), codec.Options{}, cp, cp.Out)
			io.Copy(io.Discard, zr)
			zr.Close()
			tRes = append(tRes, time.Since(t0))
		}
		slices.Sort(tFull)
		slices.Sort(tRes)
		t.Logf("%d %%: checkpoint at input %d of %d, output %d of %d (copy %d KiB); from the start %v, resumed %v (medians of 3)",
			pct, cp.In, len(d), cp.Out, len(full.out), len(cp.win)>>10, tFull[1].Round(time.Millisecond), tRes[1].Round(time.Millisecond))
	}
}

// firstCompressedAfter returns the input offset of the first compressed
// block of c's first frame that starts at or after off.
func firstCompressedAfter(t *testing.T, c []byte, off int64) int64 {
	fh, err := parseFrameHeader(c)
	if err != nil {
		t.Fatal(err)
	}
	for p := int64(fh.size); p+3 <= int64(len(c)); {
		bh := parseBlockHeader(c[p:])
		if bh.typ == blockCompressed && p >= off {
			return p
		}
		if bh.last {
			break
		}
		p += 3 + int64(bh.clen)
	}
	t.Fatal("no compressed block there")
	return 0
}

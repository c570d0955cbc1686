package zstd

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
)

// TestCleanMatchesSalvage: the clean path, and its handover to our decoder
// at the first error, lose nothing. On a clean stream and on copies damaged
// at several positions (the damage kinds of testimg.Damagers, garbage runs
// in compressed blocks and on their headers, several at once, a stream of
// two frames damaged in both), the default Reader, read whole and through
// codec.ReadAhead as the commands read it (its input through a
// codec.AsyncFiller), gives the output, spans,
// problems and checksum of the salvage-only Reader, and the VMA reader the
// same results and images.
//
// One difference is allowed (none occurs since damaged headers are
// rebuilt, repair.go): where garbage holds a plausible block
// header, klauspost decodes the block and the handover comes at the next
// header, where the chain-break rule taints what the block made; the
// salvage-only path refuses the block at once (chainBroken) and
// resynchronises from there, which often loses more. There the default
// Reader must have no wrong byte outside the damage map and no more
// damaged clusters than the salvage-only one.
func TestCleanMatchesSalvage(t *testing.T) {
	c := archive(t)
	type variant struct {
		name string
		b    []byte
		vma  bool // a VMA archive of testDisk
	}
	vs := []variant{{"clean", c, true}, {"clean, two frames", append(bytes.Clone(archiveST(t)), c...), false}}
	for k, dmg := range testimg.Damagers {
		for seed := range uint64(3) {
			b := dmg.Do(bytes.Clone(c), rand.New(rand.NewPCG(seed, 20+uint64(k))))
			vs = append(vs, variant{fmt.Sprintf("%s, seed %d", dmg.Name, seed), b, true})
		}
	}
	// the compressed blocks of a stream
	compressed := func(b []byte) []int64 {
		var at []int64
		for _, r := range decode(b, codec.Options{}, config{salvageOnly: true}).blocks {
			if parseBlockHeader(b[r.In:]).typ == blockCompressed {
				at = append(at, r.In)
			}
		}
		return at
	}
	two := append(bytes.Clone(archiveST(t)), c...)
	cc, tc := compressed(c), compressed(two)
	// garbage hits the compressed blocks at fracs of the list, in their
	// middle or on their header
	garbage := func(b []byte, blocks []int64, header bool, fracs ...float64) []byte {
		for i, f := range fracs {
			at := int(blocks[int(f*float64(len(blocks)-1))])
			n := 3
			if !header {
				at += 3 + parseBlockHeader(b[at:]).clen/2
				n = 2048
			}
			g := rand.New(rand.NewPCG(uint64(i), uint64(at)))
			for j := at; j < min(at+n, len(b)); j++ {
				b[j] = byte(g.Uint32())
			}
		}
		return b
	}
	for _, f := range []float64{0, 0.2, 0.45, 0.7, 1} {
		vs = append(vs, variant{fmt.Sprintf("garbage in compressed block %.2f", f), garbage(bytes.Clone(c), cc, false, f), true},
			variant{fmt.Sprintf("garbage on compressed block header %.2f", f), garbage(bytes.Clone(c), cc, true, f), true})
	}
	vs = append(vs, variant{"garbage in compressed blocks 0.1, 0.5, 0.9", garbage(bytes.Clone(c), cc, false, 0.1, 0.5, 0.9), true},
		variant{"two frames, garbage in both", garbage(two, tc, false, 0.1, 0.3, 0.8), false},
		variant{"two frames, cut in the second", garbage(bytes.Clone(two), tc, false, 0.2)[:len(two)*2/3], false})

	located, differ := 0, 0
	for _, v := range vs {
		ref := decode(v.b, codec.Options{}, config{salvageOnly: true})
		got := decode(v.b, codec.Options{}, config{})
		if ref.err != nil || got.err != nil {
			t.Fatalf("%s: salvage-only: %v, default: %v", v.name, ref.err, got.err)
		}
		if len(got.problemAt) > 0 && got.sum != codec.ChecksumMismatch {
			located++ // damage found where it is, not only by the checksum
		}
		// a reader that hands out spans as it goes splits them there
		same := func(out []byte, spans []codec.Span, problemAt []int64, sum codec.Checksum) bool {
			return bytes.Equal(out, ref.out) && slices.Equal(merged(spans), merged(ref.spans)) && slices.Equal(problemAt, ref.problemAt) && sum == ref.sum
		}
		// (its input copied asynchronously, as from archive's read-ahead)
		z := newReader(&asyncSource{r: bytes.NewReader(v.b)}, codec.Options{}, config{})
		a := codec.ReadAhead(z, 1<<20, 4)
		out, err := readVarying(a)
		if err != nil {
			t.Fatalf("%s, read ahead: %v", v.name, err)
		}
		var at []int64
		for _, p := range a.Problems() {
			at = append(at, p.Offset)
		}
		if !bytes.Equal(out, got.out) || !slices.Equal(merged(a.Spans()), merged(got.spans)) || !slices.Equal(at, got.problemAt) || a.Checksum() != got.sum {
			t.Errorf("%s: read ahead, %d bytes, %d spans, problems at %v, checksum %s; whole: %d bytes, %d spans, problems at %v, checksum %s",
				v.name, len(out), len(a.Spans()), at, a.Checksum(), len(got.out), len(got.spans), got.problemAt, got.sum)
		}
		a.Close()
		z.Close()
		if v.name == "clean" && (!bytes.Equal(got.out, vmaData(t)) || got.sum != codec.ChecksumOK || len(got.spans) > 0) {
			t.Errorf("clean stream: equal %v, checksum %s, %d spans", bytes.Equal(got.out, vmaData(t)), got.sum, len(got.spans))
		}
		equal := same(got.out, got.spans, got.problemAt, got.sum)
		if !equal {
			differ++
			t.Logf("%s: default %d bytes, %d spans, problems at %v; salvage-only %d bytes, %d spans, problems at %v",
				v.name, len(got.out), len(got.spans), got.problemAt, len(ref.out), len(ref.spans), ref.problemAt)
			if !v.vma {
				t.Errorf("%s: the default Reader decodes differently from the salvage-only one", v.name)
				continue
			}
		}
		if !v.vma {
			continue
		}
		r := readVMA(t, newReader(bytes.NewReader(v.b), codec.Options{}, config{salvageOnly: true}), true)
		g := readVMA(t, newReader(bytes.NewReader(v.b), codec.Options{}, config{}), true)
		if equal && (!reflect.DeepEqual(g.res, r.res) || !reflect.DeepEqual(g.disks, r.disks)) {
			t.Errorf("%s: the VMA reader's results differ: %s, salvage-only %s", v.name, g.count, r.count)
		}
		if !equal {
			wrong, _ := wrongOutside(testDisk(), g.disks["drive-scsi0"], g.res.Devices[0].Damage)
			if wrong > 0 && got.sum != codec.ChecksumMismatch || g.count.damaged > r.count.damaged {
				t.Errorf("%s: default: %s, %d bytes wrong outside the damage map; salvage-only: %s", v.name, g.count, wrong, r.count)
			}
		}
	}
	t.Logf("%d streams, %d with damage located, %d decoded differently (checked against the original)", len(vs), located, differ)
	if located < len(vs)/3 || differ > len(vs)/4 {
		t.Errorf("%d of %d streams with damage located, %d decoded differently", located, len(vs), differ)
	}
}

// readVarying reads r to its end in reads of varying size, as the VMA
// reader does.
func readVarying(r io.Reader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 200<<10)
	for n := 1; ; n++ {
		k, err := r.Read(buf[:1+(n*7919)%len(buf)])
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
	}
}

// merged returns spans with the touching ones of the same kind merged.
func merged(spans []codec.Span) []codec.Span {
	var m []codec.Span
	for _, s := range spans {
		if n := len(m); n > 0 && mergeable(m[n-1], s) {
			m[n-1].Len += s.Len
			continue
		}
		m = append(m, s)
	}
	return m
}

// TestLendKeepsBytes: output lent (Lend) stays unchanged until it is given
// back, however many loans are out while the decoder slides its history
// on (clean path and salvage-only decoder; three frames of 8.4 MiB, whose
// 2 MiB windows make the history slide).
func TestLendKeepsBytes(t *testing.T) {
	c := bytes.Repeat(archive(t), 3)
	want := bytes.Repeat(vmaData(t), 3)
	for _, cfg := range []config{{}, {salvageOnly: true}} {
		for _, tc := range []struct{ size, out int }{{256 << 10, 5}, {64 << 10, 1}, {1 << 20, 12}, {4096, 600}} {
			z := newReader(bytes.NewReader(c), codec.Options{}, cfg)
			type loan struct {
				b   []byte
				off int
			}
			var out []loan
			check := func(l loan) {
				if !bytes.Equal(l.b, want[l.off:min(l.off+len(l.b), len(want))]) {
					t.Fatalf("salvage-only %v, %d loans of %d: the loan at %d changed before it was given back", cfg.salvageOnly, tc.out, tc.size, l.off)
				}
			}
			off := 0
			for {
				b, err := z.Lend(tc.size)
				if err != nil && err != io.EOF || len(b) > tc.size || len(b) == 0 && err == nil {
					t.Fatalf("Lend: %d bytes, %v", len(b), err)
				}
				if len(b) > 0 {
					out = append(out, loan{b, off})
					off += len(b)
				}
				if err != nil {
					break
				}
				if len(out) > tc.out {
					check(out[0])
					z.Return(out[0].b)
					out = out[1:]
				}
			}
			for _, l := range out {
				check(l)
			}
			if off != len(want) || z.Checksum() != codec.ChecksumOK {
				t.Errorf("salvage-only %v: %d bytes lent of %d, checksum %s", cfg.salvageOnly, off, len(want), z.Checksum())
			}
			z.Close()
		}
	}
}

// TestCleanTruncatedAtHeaders: input that ends at a block header, or
// inside one, or right after one. The clean path handed the block before
// the cut to our decoder again, which wrote its output a second time (the
// failing block was taken to be the last one klauspost had read). Now the
// default Reader gives the salvage-only Reader's output and spans, a
// prefix of the whole stream's output.
func TestCleanTruncatedAtHeaders(t *testing.T) {
	c := archive(t)
	full := decode(c, codec.Options{}, config{salvageOnly: true})
	var cuts []int
	for i, r := range full.blocks {
		if i < 16 || i%7 == 0 || i == len(full.blocks)-1 {
			cuts = append(cuts, int(r.In), int(r.In)+1, int(r.In)+2, int(r.In)+3)
		}
	}
	for _, cut := range cuts {
		a := decode(c[:cut], codec.Options{}, config{})
		s := decode(c[:cut], codec.Options{}, config{salvageOnly: true})
		if !bytes.Equal(a.out, s.out) || !bytes.HasPrefix(full.out, a.out) || !reflect.DeepEqual(a.spans, s.spans) {
			t.Errorf("cut at %d: %d bytes (%d from the salvage-only Reader), a prefix: %v; spans %v, salvage-only %v",
				cut, len(a.out), len(s.out), bytes.HasPrefix(full.out, a.out), a.spans, s.spans)
		}
	}
}

package zstd

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// repairStream returns the pinned VMA backup of testDisk and that stream
// as the zstd CLI compressed it for vzdump (see helpers_test.go).
func repairStream(t testing.TB) (orig, c []byte) {
	t.Helper()
	return vmaData(t), archive(t)
}

// garbleHeader replaces the block header at p by random bytes that cannot
// be a header there.
func garbleHeader(d []byte, p int64, r *rand.Rand) {
	for {
		for k := range int64(3) {
			d[p+k] = byte(r.Uint32())
		}
		if !plausible(parseBlockHeader(d[p:]), maxBlockSize) {
			return
		}
	}
}

// hasProblem reports whether problems hold one of kind at input offset off.
func hasProblem(problems []damage.Problem, kind damage.Kind, off int64) bool {
	for _, p := range problems {
		if p.Kind == kind && p.Offset == off {
			return true
		}
	}
	return false
}

// TestRepairHeader garbles the header of 20 blocks of a VMA backup the
// zstd CLI compressed, one at a time: each header is rebuilt, the stream
// comes out bit for bit with its checksum ok, and every cluster is
// reported intact — but where the block or the one before it is raw or
// RLE: a raw block's content proves nothing, and a garbage run that began
// in the block before would have passed unseen there; they are tainted
// (and what copies from them) until the checksum confirms them. Each is
// read without repairs too: the clusters damaged then and now are logged.
func TestRepairHeader(t *testing.T) {
	orig, c := repairStream(t)
	ref := newRefMap(t, c, orig)
	r := rand.New(rand.NewPCG(14, 1))
	n := len(ref.blocks)
	var was, now int64
	for k := range 20 {
		i := 1 + k*(n-1)/20
		b := ref.blocks[i]
		d := bytes.Clone(c)
		garbleHeader(d, b.In, r)
		z := newReader(bytes.NewReader(d), codec.Options{}, config{})
		cnt := readVMA(t, z, false).count
		got := decode(d, codec.Options{}, config{})
		typ := blockTypeName(parseBlockHeader(c[b.In:]).typ)
		before := blockTypeName(parseBlockHeader(c[ref.blocks[i-1].In:]).typ)
		soft := typ != blockTypeName(blockCompressed) || before != typ
		old := readVMA(t, newReader(bytes.NewReader(d), codec.Options{}, config{noRepair: true}), false).count
		was, now = was+old.damaged, now+cnt.damaged
		t.Logf("block %d (%s one, after %s one): %v (without repairs %d damaged); checksum %s, %d spans", i, typ, before, cnt, old.damaged, got.sum, len(got.spans))
		switch {
		case !bytes.Equal(got.out, orig) || got.sum != codec.ChecksumOK:
			t.Errorf("block %d: output equal %v, checksum %s", i, bytes.Equal(got.out, orig), got.sum)
		case !hasProblem(z.Problems(), damage.Repaired, b.In):
			t.Errorf("block %d: no repair reported: %v", i, z.Problems())
		case !soft && cnt.damaged > 0:
			t.Errorf("block %d: %v", i, cnt)
		}
	}
	t.Logf("20 garbled headers: %d clusters damaged in all, %d without repairs", now, was)
}

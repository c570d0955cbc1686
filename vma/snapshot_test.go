package vma

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
)

// delivery is what a Reader delivered of one cluster.
type delivery struct {
	dev     uint8
	num     uint32
	mask    uint16
	rewrite bool
	sum     [32]byte
}

// deliveries reads r to its end, appending what it delivers to out as it
// goes, and returns its Result.
func deliveries(t *testing.T, r *Reader, out *[]delivery) *Result {
	t.Helper()
	for {
		c, err := r.Next()
		if err == io.EOF {
			return r.Result()
		}
		if err != nil {
			t.Fatal(err)
		}
		*out = append(*out, delivery{c.Dev, c.Num, c.Mask, c.Rewrite, sha256.Sum256(c.Data)})
	}
}

// TestSnapshotResume: a read resumed from a snapshot at an extent header
// before the damage delivers the same clusters as a read from the start
// does from that header on, and ends with the same Result, spans passed
// and placements; the snapshot is shared by two resumed reads.
func TestSnapshotResume(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	disks := [][]byte{testDisk(rng, 24<<20), testDisk(rng, 540672)}
	arc, h := testArchive(t, rng, disks)
	ext := extentOffsets(t, arc, h)
	mid := ext[len(ext)/2]
	cases := []struct {
		name string
		ops  []dmgOp
	}{
		{"clean", nil},
		{"taint in data", []dmgOp{{kind: 't', lo: mid + 5000, hi: mid + 9000}}},
		{"lost header", []dmgOp{{kind: 'l', lo: mid, hi: mid + 4096}}},
		{"resync in data", []dmgOp{{kind: 'r', lo: mid + 700000, hi: mid + 800000, est: 131072, max: 131072}}},
		{"resync over header", []dmgOp{{kind: 'r', lo: ext[5] - 3000, hi: ext[5] + 3000, est: 131072, max: 131072}}},
		{"resync hides extent", []dmgOp{{kind: 'r', lo: ext[4] - 100000, hi: ext[6] + 100000, est: 131072, max: -1}}},
		{"truncated mid extent", []dmgOp{{kind: 'x', lo: mid + 1234567}}},
		{"garbage run and a lost page", []dmgOp{
			{kind: 'r', lo: mid + 300000, hi: mid + 365536, est: 65536, max: 262144},
			{kind: 'l', lo: ext[len(ext)-2] + 9000, hi: ext[len(ext)-2] + 13096}}},
	}
	for _, tc := range cases {
		first := len(arc)
		if len(tc.ops) > 0 {
			first = tc.ops[0].lo
		}
		for _, k := range []int{0, 1, 3, -1} {
			// the k-th extent header, or the last before the damage
			want := ext[0]
			if k >= 0 {
				want = ext[min(k, len(ext)-1)]
			} else {
				for _, e := range ext {
					if e <= first {
						want = e
					}
				}
			}
			if want > first {
				continue
			}
			t.Run(fmt.Sprintf("%s/at%d", tc.name, want), func(t *testing.T) {
				type placed struct {
					so  int64
					dev uint8
					do  int64
				}
				var fullPlaced, fullSpans []any
				opt := Options{Salvage: true,
					Place: func(so int64, dev uint8, do int64) { fullPlaced = append(fullPlaced, placed{so, dev, do}) },
					Spans: func(s codec.Span) { fullSpans = append(fullSpans, s) }}
				var got []delivery
				at := -1
				opt.Snapshot = func(pos int64) bool {
					if pos == int64(want) {
						at = len(got)
						return true
					}
					return false
				}
				// (at counts the clusters delivered before the snapshot)
				r, err := NewReader(damageStream(arc, tc.ops, rand.New(rand.NewSource(1)), nil), opt)
				if err != nil {
					t.Fatal(err)
				}
				full := deliveries(t, r, &got)
				snap := r.Snapshot()
				if snap == nil || at < 0 {
					t.Fatalf("no snapshot at %d", want)
				}
				if snap.Offset() != int64(want) {
					t.Fatalf("snapshot at %d, want %d", snap.Offset(), want)
				}
				for pass := 0; pass < 2; pass++ {
					src := damageStream(arc, tc.ops, rand.New(rand.NewSource(1)), nil)
					src.pos = want
					var rPlaced, rSpans []any
					ropt := Options{Salvage: true,
						Place: func(so int64, dev uint8, do int64) { rPlaced = append(rPlaced, placed{so, dev, do}) },
						Spans: func(s codec.Span) { rSpans = append(rSpans, s) }}
					rr, err := Resume(src, snap, ropt)
					if err != nil {
						t.Fatal(err)
					}
					var rd []delivery
					rres := deliveries(t, rr, &rd)
					if !reflect.DeepEqual(rd, got[at:]) {
						t.Fatalf("pass %d: %d clusters delivered, want %d (the full read's from %d)", pass, len(rd), len(got)-at, at)
					}
					if !reflect.DeepEqual(rres, full) {
						t.Fatalf("pass %d: results differ:\n%+v\n%+v", pass, rres, full)
					}
					if !reflect.DeepEqual(rPlaced, fullPlaced) || !reflect.DeepEqual(rSpans, fullSpans) {
						t.Fatalf("pass %d: %d placed, %d spans; want %d, %d", pass, len(rPlaced), len(rSpans), len(fullPlaced), len(fullSpans))
					}
				}
			})
		}
	}
}

// TestSnapshotNotAfterDamage: no snapshot is taken at or after the first
// damaged byte read.
func TestSnapshotNotAfterDamage(t *testing.T) {
	rng := rand.New(rand.NewSource(22))
	disks := [][]byte{testDisk(rng, 16<<20)}
	arc, h := testArchive(t, rng, disks)
	ext := extentOffsets(t, arc, h)
	lo := ext[2] + 70000
	r, err := NewReader(damageStream(arc, []dmgOp{{kind: 't', lo: lo, hi: lo + 100}}, rng, nil), Options{Salvage: true, Snapshot: func(int64) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, r); err != nil {
		t.Fatal(err)
	}
	if s := r.Snapshot(); s == nil || s.Offset() != int64(ext[2]) {
		t.Fatalf("snapshot %+v, want at %d", s, ext[2])
	}
}

package gzip

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
)

// The oracle bound: how close salvage comes to the best any decoder can do.
//
// A decoder that knew all the state a damaged stream carries (where each
// block starts, its Huffman codes, how much each symbol the damage touched
// wrote) but not those symbols' content would still have to distrust what
// they wrote and everything later copied from it. The inflater's lose
// range gives that oracle: it decodes the clean stream and takes the
// output of the symbols whose bits the garbage overwrote as unknown. Salvage
// loses more: what it decoded since the last sync point before the damage,
// what lies between the damage and the next place it can resume, and the
// whole 32 KiB window before that place.

// oracleCompare damages a copy of clean with n bytes of garbage at off and
// returns the clusters our salvage and the oracle report damaged, and the
// non-zero clusters.
func oracleCompare(t testing.TB, clean []byte, off, n int, seed uint64) (ours, oracle, nonZero int64) {
	t.Helper()
	bad := bytes.Clone(clean)
	codectest.Garbage(bad, off, n, seed)
	r, err := NewReader(bytes.NewReader(bad), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ours, nonZero = codectest.VMADamage(t, r)
	r, err = NewReader(bytes.NewReader(clean), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.(*Reader).f.lose = extent{int64(off) * 8, int64(off+n) * 8}
	oracle, _ = codectest.VMADamage(t, r)
	return ours, oracle, nonZero
}

// TestSalvageNearOracle checks, on a VMA archive made by gzip --rsyncable,
// that salvage after a 64 KiB garbage run reports only a few clusters more
// damaged than the oracle must.
func TestSalvageNearOracle(t *testing.T) {
	gz := rsyncable(t, codectest.VMA(t, codectest.Disk(21, 16<<20)), false)
	for _, pct := range []int{40, 70} {
		ours, oracle, nonZero := oracleCompare(t, gz, len(gz)*pct/100, 64<<10, uint64(pct))
		t.Logf("garbage at %d%%: salvage %d, oracle %d of %d non-zero clusters damaged", pct, ours, oracle, nonZero)
		if oracle == 0 || ours < oracle || ours > oracle+6 {
			t.Errorf("garbage at %d%%: salvage %d, oracle %d clusters damaged", pct, ours, oracle)
		}
	}
}

// TestOracleBound compares salvage with the oracle on a given archive, as
// scripts/oracle-bound.sh runs it:
//
//	VZSALVAGE_ORACLE_ARCHIVE=X.vma.gz VZSALVAGE_ORACLE_AT=20,50 go test ./codec/gzip -run '^TestOracleBound$' -v
func TestOracleBound(t *testing.T) {
	path := os.Getenv("VZSALVAGE_ORACLE_ARCHIVE")
	if path == "" {
		t.Skip("VZSALVAGE_ORACLE_ARCHIVE not set")
	}
	clean, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Split(os.Getenv("VZSALVAGE_ORACLE_AT"), ",") {
		pct, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("VZSALVAGE_ORACLE_AT: %v", err)
		}
		ours, oracle, nonZero := oracleCompare(t, clean, len(clean)*pct/100, 64<<10, uint64(pct))
		intact := func(d int64) float64 { return 100 * float64(nonZero-d) / float64(max(nonZero, 1)) }
		fmt.Printf("garbage at %d%%: ours %d of %d non-zero clusters damaged (%.3f%% intact); oracle %d (%.3f%% intact)\n",
			pct, ours, nonZero, intact(ours), oracle, intact(oracle))
	}
}

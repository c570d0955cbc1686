package zstd

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/vma"
)

// The oracle bound: how close salvage comes to the best any decoder can do.
//
// A decoder that knew all the state a damaged stream carries (entropy
// tables, repeat offsets, where each block's output goes) but not the
// content of the blocks the damage touched would still have to distrust
// what those blocks produced and everything later copied from it. The
// config field loseBlocks gives that oracle: it decodes the clean archive
// and takes the touched blocks' output as unknown. These tests read the
// damaged archive with our salvage and the clean one with the oracle, both
// through the VMA reader, and compare the clusters each reports damaged.

// oracleCount is what a VMA read reports, over all devices.
type oracleCount struct {
	damaged, nonZero int64
	repaired         int // extent headers rebuilt from their MD5
}

func (c oracleCount) String() string {
	return fmt.Sprintf("%d of %d non-zero clusters damaged (%.3f%% intact)",
		c.damaged, c.nonZero, 100*float64(c.nonZero-c.damaged)/float64(max(c.nonZero, 1)))
}

// readVMA reads a whole archive through z and the VMA reader in salvage
// mode and counts the clusters reported lost or tainted.
func readVMA(t testing.TB, z *Reader) oracleCount {
	t.Helper()
	vr, err := vma.NewReader(z, vma.Options{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := vr.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	var c oracleCount
	for _, p := range vr.Result().Problems {
		if strings.Contains(p.Message, "header repaired") {
			c.repaired++
		}
	}
	for _, d := range vr.Result().Devices {
		c.damaged += d.Clusters.Tainted + d.Clusters.Lost
		c.nonZero += d.Clusters.Total - d.Clusters.Zero
	}
	return c
}

// blocksTouching returns the input offsets of the blocks of a clean zstd
// stream whose header or content overlaps [lo, hi).
func blocksTouching(t testing.TB, clean []byte, lo, hi int64) map[int64]bool {
	t.Helper()
	touched := map[int64]bool{}
	for pos := int64(0); pos < int64(len(clean)); {
		if le32(clean[pos:])&0xFFFFFFF0 == 0x184D2A50 { // skippable frame
			pos += 8 + int64(le32(clean[pos+4:]))
			continue
		}
		fh, err := parseFrameHeader(clean[pos:])
		if err != nil {
			t.Fatal(err)
		}
		pos += int64(fh.size)
		for {
			bh := parseBlockHeader(clean[pos:])
			end := pos + 3 + int64(bh.clen)
			if end > lo && pos < hi {
				touched[pos] = true
			}
			pos = end
			if bh.last {
				break
			}
		}
		if fh.checksum {
			pos += 4
		}
	}
	return touched
}

// oracleCompare damages a copy of clean with n bytes of garbage at off and
// returns what our salvage and the oracle report.
func oracleCompare(t testing.TB, clean []byte, off, n int64, seed uint64) (ours, oracle oracleCount) {
	t.Helper()
	bad := bytes.Clone(clean)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := off; i < min(off+n, int64(len(bad))); i++ {
		bad[i] = byte(rng.Uint32())
	}
	ours = readVMA(t, newReader(bytes.NewReader(bad), codec.Options{}, config{}))
	lose := blocksTouching(t, clean, off, off+n)
	oracle = readVMA(t, newReader(bytes.NewReader(clean), codec.Options{}, config{salvageOnly: true, loseBlocks: lose}))
	return ours, oracle
}

// TestSalvageNearOracle checks that on an archive made by the zstd CLI,
// salvage after a garbage run reports at most a few clusters more damaged
// than the oracle must.
func TestSalvageNearOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 48 MiB archive")
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, testimg.Corpus(t, 48<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	arc := testimg.BuildArchive(t, dir, []testimg.Disk{{Name: "drive-scsi0", Path: disk}}, ".zst", 1)
	clean, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	repaired := 0
	for i, pct := range []int64{10, 20, 30, 38, 45, 52, 60, 67, 75, 82, 90} {
		off := int64(len(clean)) * pct / 100
		ours, oracle := oracleCompare(t, clean, off, 64<<10, uint64(i))
		t.Logf("garbage at %d%%: ours %v; oracle %v", pct, ours, oracle)
		repaired += ours.repaired
		if ours.nonZero != oracle.nonZero {
			t.Errorf("garbage at %d%%: %d non-zero clusters read, the oracle read %d", pct, ours.nonZero, oracle.nonZero)
		}
		if slack := 2 + oracle.damaged/20; ours.damaged > oracle.damaged+slack {
			t.Errorf("garbage at %d%%: %d clusters damaged, more than the oracle's %d + %d", pct, ours.damaged, oracle.damaged, slack)
		}
	}
	t.Logf("%d extent headers repaired", repaired)
}

// TestOracleBound compares salvage with the oracle on an archive given in
// the environment (for scripts/oracle-bound.sh):
//
//	VZSALVAGE_ORACLE_ARCHIVE=clean.vma.zst VZSALVAGE_ORACLE_AT=20,30,40 \
//	  go test ./codec/zstd -run TestOracleBound -v
//
// For each percentage it writes 64 KiB of garbage there and prints both
// counts.
func TestOracleBound(t *testing.T) {
	path := os.Getenv("VZSALVAGE_ORACLE_ARCHIVE")
	if path == "" {
		t.Skip("VZSALVAGE_ORACLE_ARCHIVE not set")
	}
	clean, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range strings.Split(os.Getenv("VZSALVAGE_ORACLE_AT"), ",") {
		pct, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			t.Fatalf("VZSALVAGE_ORACLE_AT: %v", err)
		}
		off := int64(float64(len(clean)) * pct / 100)
		ours, oracle := oracleCompare(t, clean, off, 64<<10, uint64(i))
		fmt.Printf("garbage at %g%%: ours %v; oracle %v\n", pct, ours, oracle)
	}
}

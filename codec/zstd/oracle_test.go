package zstd

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/codectest"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/vma"
)

// The oracle bound: how close salvage comes to the best any decoder can do.
//
// A decoder that knew all the state a damaged stream carries (entropy
// tables, repeat offsets, every block's length and type) but not the
// content of the blocks the damage touched would still have to distrust
// what those blocks produced and everything later copied from it. The
// oracleConfig gives that oracle: it decodes the clean archive with our
// decoder and replaces the touched blocks' output by what a decoder sees of it
// (placeholder zeros; for a raw block, the damaged bytes), reported lost.
// These tests read the damaged archive with our salvage and the clean one
// with the oracle, both through the VMA reader, and compare the clusters
// each reports damaged.
//
// The oracle must not see the true bytes of the blocks it loses: an
// earlier version took their output as tainted but left it in place, so
// the VMA reader read extent headers from it that no decoder can read, and
// salvage seemed to lose more than the bound (clusters of an extent whose
// header lay in the lost blocks, zero ones included: more "non-zero"
// clusters than the disk has).

// oracleConfig returns the config of a Reader that decodes a clean stream
// as the oracle does: the blocks at the input offsets in lose are decoded
// and their state kept (their length too), but their output is unknown:
// placeholder zeros, as for a lost block, so that neither later copies of
// it nor the layer above (an extent header in it) learn its content; a raw
// block shows what the damaged input seen holds there, as it would to any
// decoder.
func oracleConfig(lose map[int64]bool, seen []byte) config {
	return config{salvageOnly: true, decoded: func(z *Reader, b *block) {
		if !lose[b.rec.In] {
			return
		}
		clear(z.h.buf[b.w0:z.h.w])
		if in := b.rec.In + 3; b.bh.typ == blockRaw && in < int64(len(seen)) {
			copy(z.h.buf[b.w0:z.h.w], seen[in:])
		}
		z.h.truncateTaints(b.start)
		z.h.addTaint(b.start, z.h.pos(), lvLost)
	}}
}

// oracleCount is what a VMA read reports, over all devices.
type oracleCount struct {
	damaged, nonZero int64
	repaired         int // extent headers rebuilt from their MD5
}

func (c oracleCount) String() string {
	return fmt.Sprintf("%d of %d non-zero clusters damaged (%.3f%% intact)",
		c.damaged, c.nonZero, 100*float64(c.nonZero-c.damaged)/float64(max(c.nonZero, 1)))
}

// vmaRead is a whole archive read through the VMA reader in salvage mode.
type vmaRead struct {
	count oracleCount
	res   *vma.Result
	disks map[string][]byte // the images as extracted (when asked for)
}

// readVMA reads a whole archive through z and the VMA reader in salvage
// mode and counts the clusters reported lost or tainted; with images it
// also rebuilds the disk images.
func readVMA(t testing.TB, z *Reader, images bool) vmaRead {
	t.Helper()
	vr, err := vma.NewReader(z, vma.Options{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	var rd vmaRead
	var imgs [256][]byte // by device id
	if images {
		rd.disks = map[string][]byte{}
		for _, d := range vr.Header().Devices {
			imgs[d.ID] = make([]byte, d.Size)
			rd.disks[d.Name] = imgs[d.ID]
		}
	}
	for {
		c, err := vr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if images && imgs[c.Dev] != nil {
			codectest.PutCluster(imgs[c.Dev], c)
		}
	}
	rd.res = vr.Result()
	for _, p := range rd.res.Problems {
		if strings.Contains(p.Message, "header repaired") {
			rd.count.repaired++
		}
	}
	for _, d := range rd.res.Devices {
		rd.count.damaged += d.Clusters.Tainted + d.Clusters.Lost
		rd.count.nonZero += d.Clusters.Total - d.Clusters.Zero
	}
	return rd
}

// wrongOutside counts the bytes of img that differ from orig outside dm,
// and the clusters holding them.
func wrongOutside(orig, img []byte, dm *damage.Map) (bytes_, clusters int64) {
	for off := 0; off < len(orig); off += vma.ClusterSize {
		end := min(off+vma.ClusterSize, len(orig))
		if bytes.Equal(orig[off:end], img[off:end]) {
			continue
		}
		n := int64(0)
		for p := off; p < end; p++ {
			if orig[p] != img[p] && !dm.Any(int64(p), 1, damage.Tainted) {
				n++
			}
		}
		if n > 0 {
			bytes_ += n
			clusters++
		}
	}
	return
}

// blockSpan is a block of a clean zstd stream: its header's input offset,
// type, and where its raw content lies (a raw block's content, or a
// compressed block's raw literals; empty if none).
type blockSpan struct {
	in, end      int64
	typ          int
	rawLo, rawHi int64
}

// streamBlocks lists the blocks of a clean zstd stream.
func streamBlocks(t testing.TB, clean []byte) []blockSpan {
	t.Helper()
	var bs []blockSpan
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
			b := blockSpan{in: pos, end: pos + 3 + int64(bh.clen), typ: bh.typ}
			switch bh.typ {
			case blockRaw:
				b.rawLo, b.rawHi = pos+3, b.end
			case blockCompressed:
				if lh, err := parseLitHeader(clean[pos+3:]); err == nil && lh.typ == litRaw {
					b.rawLo = pos + 3 + int64(lh.hsize)
					b.rawHi = b.rawLo + int64(lh.csize)
				}
			}
			bs = append(bs, b)
			pos = b.end
			if bh.last {
				break
			}
		}
		if fh.checksum {
			pos += 4
		}
	}
	return bs
}

// blocksTouching returns the input offsets of the blocks of a clean zstd
// stream whose header or content overlaps [lo, hi).
func blocksTouching(t testing.TB, clean []byte, lo, hi int64) map[int64]bool {
	t.Helper()
	touched := map[int64]bool{}
	for _, b := range streamBlocks(t, clean) {
		if b.end > lo && b.in < hi {
			touched[b.in] = true
		}
	}
	return touched
}

// inRawContent reports whether [lo, hi) lies wholly inside one block's raw
// content: damage there decodes without error (only the frame's checksum
// can tell), by design.
func inRawContent(bs []blockSpan, lo, hi int64) bool {
	for _, b := range bs {
		if b.rawLo <= lo && hi <= b.rawHi {
			return true
		}
	}
	return false
}

// garbage returns a copy of clean with n bytes of garbage at off.
func garbage(clean []byte, off, n int64, seed uint64) []byte {
	bad := bytes.Clone(clean)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := off; i < min(off+n, int64(len(bad))); i++ {
		bad[i] = byte(r.Uint32())
	}
	return bad
}

// oracleCompare damages a copy of clean with n bytes of garbage at off and
// reads it with our salvage (z, returned for its account) and the clean
// archive with the oracle.
func oracleCompare(t testing.TB, clean []byte, off, n int64, seed uint64, images bool) (z *Reader, ours, oracle vmaRead) {
	t.Helper()
	bad := garbage(clean, off, n, seed)
	z = newReader(bytes.NewReader(bad), codec.Options{}, config{})
	ours = readVMA(t, z, images)
	lose := blocksTouching(t, clean, off, off+n)
	oracle = readVMA(t, newReader(bytes.NewReader(clean), codec.Options{}, oracleConfig(lose, bad)), false)
	return z, ours, oracle
}

// TestSalvageNearOracle: 64 KiB of garbage at positions across the pinned
// archive (a VMA backup of testDisk as zstd --threads=1 made it). At each,
// the disk image salvage extracts is compared with the original, and what
// salvage reports damaged with what the oracle must:
//
//   - silent damage: the garbage lies wholly inside raw content (a raw
//     block's, or a compressed block's raw literals), and nothing else
//     notices: salvage reports no damaged cluster and only the stream's
//     checksum mismatch, while the oracle loses the block (and what copies
//     from it). Wrong bytes then stand outside the reported damage, as
//     designed (the archive says "checksum: mismatch").
//   - otherwise no byte outside the reported damage is wrong, and salvage
//     reports at most a few clusters more damaged than the oracle.
//
// Positions whose cause was found and fixed (see the notes) are among
// them: each note is checked.
func TestSalvageNearOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("many reads of a 9.6 MiB archive")
	}
	clean := archive(t)
	disk := testDisk()
	bs := streamBlocks(t, clean)
	trueNonZero := int64(0)
	for off := 0; off < len(disk); off += vma.ClusterSize {
		if !bytes.Equal(disk[off:min(off+vma.ClusterSize, len(disk))], make([]byte, min(vma.ClusterSize, len(disk)-off))) {
			trueNonZero++
		}
	}
	// Positions: 2 %, 6 %, ... 98 % (grid index i at 2+2i %, garbage seed
	// i), the ones the notes are about, and three where salvage was found
	// above the bound (gaps: see the notes; over is how many clusters
	// above it, measured; one is closed by rebuilt block headers).
	type position struct {
		permille int
		seed     uint64
		note     string
		over     int64
	}
	notes := map[int]string{
		3:  "silent: inside a raw block",
		4:  "a loss estimated too short: later matches reach before the frame start (their bytes are unknown, the blocks are kept)",
		9:  "silent: inside a compressed block's raw literals, copied on into 70 clusters",
		13: "an extent header in the destroyed blocks: its zero clusters are unknown, for the oracle too",
		28: "an intact raw block right after the damaged header: kept by the resync scan, tainted",
		31: "a raw block partly overwritten: its intact part holds an extent header that its MD5 confirms",
		34: "a copy of the broken extent's own header (Cond bytes) in its tail: not taken as the next header",
	}
	var positions []position
	for i := 0; i <= 48; i++ {
		if _, noted := notes[i]; i%2 == 0 || noted {
			positions = append(positions, position{20 + 20*i, uint64(i), notes[i], 0})
		}
	}
	positions = append(positions,
		position{290, 56, "gap: the loss is sized right but the extent header that would confirm it was lost with it: the Cond bytes after it stay damaged", 11},
		position{604, 121, "the damage destroyed a raw block's header and part of its content: the header is rebuilt (repair.go) and the block kept tainted: at the bound (57 clusters above it before)", 0},
		position{826, 167, "gap: the chain broke after a raw block, which may hold the start of the garbage: tainted (the oracle knows it does not)", 2},
	)
	var silent, located int
	for _, ps := range positions {
		pct := float64(ps.permille) / 10
		off := int64(len(clean)) * int64(ps.permille) / 1000
		n := int64(64 << 10)
		z, ours, oracle := oracleCompare(t, clean, off, n, ps.seed, true)
		img := ours.disks["drive-scsi0"]
		dm := ours.res.Devices[0].Damage
		wrong, wrongCl := wrongOutside(disk, img, dm)
		zproblems := z.Problems()
		t.Logf("garbage at %g%%: ours %v; oracle %v; %d vma problems, %d resized; checksum %s; %d bytes in %d clusters wrong outside the damage",
			pct, ours.count, oracle.count, ours.res.ProblemCount, ours.res.Resized, z.Checksum(), wrong, wrongCl)
		if ps.note != "" {
			t.Logf("  (%s)", ps.note)
		}
		if inRawContent(bs, off, off+n) && ours.res.ProblemCount == 0 {
			silent++
			if z.Checksum() != codec.ChecksumMismatch || len(zproblems) != 1 || !strings.Contains(zproblems[0].Message, "checksum mismatch") {
				t.Errorf("garbage at %g%% inside raw content: checksum %s, problems %v; want a mismatch and nothing else", pct, z.Checksum(), zproblems)
			}
			if ours.count.damaged != 0 || oracle.count.damaged == 0 {
				t.Errorf("garbage at %g%% inside raw content: ours %d clusters damaged, the oracle %d; want 0 and more", pct, ours.count.damaged, oracle.count.damaged)
			}
			if ps.note != "" && !strings.HasPrefix(ps.note, "silent") {
				t.Errorf("garbage at %g%%: silent, but the note says %q", pct, ps.note)
			}
			continue
		}
		located++
		if strings.HasPrefix(ps.note, "silent") {
			t.Errorf("garbage at %g%%: not silent, but the note says %q", pct, ps.note)
		}
		if wrong != 0 {
			t.Errorf("garbage at %g%%: %d bytes in %d clusters wrong outside the reported damage", pct, wrong, wrongCl)
		}
		if z.Checksum() == codec.ChecksumOK || ours.count.damaged == 0 {
			t.Errorf("garbage at %g%%: checksum %s, %d clusters damaged", pct, z.Checksum(), ours.count.damaged)
		}
		if ours.count.nonZero < trueNonZero {
			t.Errorf("garbage at %g%%: %d non-zero clusters, fewer than the disk's %d", pct, ours.count.nonZero, trueNonZero)
		}
		if slack := 2 + oracle.count.damaged/20 + ps.over; ours.count.damaged > oracle.count.damaged+slack {
			t.Errorf("garbage at %g%%: %d clusters damaged, more than the oracle's %d + %d", pct, ours.count.damaged, oracle.count.damaged, slack)
		}
	}
	t.Logf("%d positions silent, %d located", silent, located)
	if silent < 5 || located < 10 {
		t.Errorf("%d silent and %d located positions: the archive no longer gives both kinds", silent, located)
	}
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
	clean := envArchive(t, "VZSALVAGE_ORACLE_ARCHIVE")
	for i, s := range strings.Split(os.Getenv("VZSALVAGE_ORACLE_AT"), ",") {
		pct, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			t.Fatalf("VZSALVAGE_ORACLE_AT: %v", err)
		}
		off := int64(float64(len(clean)) * pct / 100)
		z, ours, oracle := oracleCompare(t, clean, off, 64<<10, uint64(i), false)
		fmt.Printf("garbage at %g%%: ours %v; oracle %v; checksum %s\n", pct, ours.count, oracle.count, z.Checksum())
	}
}

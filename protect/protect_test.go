package protect

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// chunksSHA computes a version 2 sidecar's pin of a file independently:
// the SHA-256 of the xxh64 of each of its chunks of size n (the last one
// short), 8 bytes little-endian each.
func chunksSHA(t *testing.T, path string, n int) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for len(b) > 0 {
		c := b[:min(n, len(b))]
		b = b[len(c):]
		h.Write(binary.LittleEndian.AppendUint64(nil, xxhash.Sum64(c)))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestVersion1Sidecar: a sidecar of format version 1 (pinned by the
// archive's SHA-256), as vzsalvage wrote before version 2, is still read:
// status, scrub's check and repair (bit for bit, in place) work with it.
func TestVersion1Sidecar(t *testing.T) {
	arc := testArchive(t)
	want := fileSHA(t, arc)
	dir := t.TempDir()
	res := protectOK(t, arc, Options{SidecarDir: dir, version: 1})
	sc, err := OpenSidecar(res.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	h := sc.Header
	sc.Close()
	if h.Version != 1 || h.Archive.SHA256 != want || h.Archive.ChunksSHA256 != "" {
		t.Fatalf("header %+v", h)
	}
	pre, err := os.ReadFile(res.Sidecar)
	if err != nil || binary.LittleEndian.Uint32(pre[8:]) != 1 {
		t.Fatalf("preamble version: %v", err)
	}
	if c := CheckArchive(arc, dir, nil); c.Result != ScrubOK {
		t.Fatalf("check: %+v", c)
	}
	damageFile(t, arc, 2)
	if c := CheckArchive(arc, dir, nil); c.Result != ScrubRepairable {
		t.Fatalf("check of the damaged archive: %+v", c)
	}
	rr, err := Repair(arc, RepairOptions{SidecarDir: dir, InPlace: true})
	if err != nil || !rr.Complete || fileSHA(t, arc) != want {
		t.Fatalf("repair: %v %+v", err, rr)
	}
	if rr, err := Repair(arc, RepairOptions{SidecarDir: dir}); err != nil || !rr.Intact {
		t.Fatalf("after the repair: %v %+v", err, rr)
	}
}

func TestProtectWritesSidecar(t *testing.T) {
	arc := testArchive(t)
	res := protectOK(t, arc, Options{Tool: "test"})
	if res.Sidecar != arc+".vzsalvage" {
		t.Fatalf("sidecar at %s", res.Sidecar)
	}
	sc, err := OpenSidecar(res.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	h := sc.Header
	if h.Version != 2 || h.Archive.SHA256 != "" || h.Archive.ChunksSHA256 != chunksSHA(t, arc, h.Chunks.Size) ||
		h.Archive.Size != res.ArchiveSize || len(h.VMA.Devices) != 2 {
		t.Fatalf("header %+v", h)
	}
	over := float64(res.SidecarSize) / float64(res.ArchiveSize)
	t.Logf("archive %d bytes, sidecar %d bytes: %.2f %%", res.ArchiveSize, res.SidecarSize, 100*over)
	// 3 % at most, but never less than the parity's floor (MinStripes) for
	// a small archive
	floor := int64(res.Parity.ParityShards * res.Parity.MinStripes * res.Parity.ShardSize)
	if res.SidecarSize > res.ArchiveSize*3/100+floor {
		t.Errorf("sidecar overhead %.2f %% > 3 %% + %d bytes", 100*over, floor)
	}
	if _, err := os.Stat(arc + ".vzsalvage.tmp"); err == nil {
		t.Error("temporary file left")
	}
}

func TestStatus(t *testing.T) {
	arc := testArchive(t)
	st, err := Status(arc, "")
	if err != nil || st.Present {
		t.Fatalf("before protect: %v %+v", err, st)
	}
	dir := t.TempDir()
	protectOK(t, arc, Options{SidecarDir: dir})
	st, err = Status(arc, dir)
	if err != nil || !st.Present || !st.Matches || st.Verify.Status != "intact" || st.Written.IsZero() || st.LastCheck != nil {
		t.Fatalf("after protect: %v %+v", err, st)
	}
	if c := CheckArchive(arc, dir, nil); c.Result != ScrubOK {
		t.Fatalf("check: %+v", c)
	}
	st, _ = Status(arc, dir)
	if st.LastCheck == nil || st.LastCheck.Result != ScrubOK {
		t.Fatalf("after a check: %+v", st)
	}
}

// TestChunkHashesPinned: a version 2 sidecar pins the archive by the
// SHA-256 of its chunk hashes: a sidecar whose chunk hashes were changed
// (each record's own checksum made to fit) does not call the archive
// intact, even where the archive's chunk has the changed hash.
func TestChunkHashesPinned(t *testing.T) {
	arc := testArchive(t)
	dir := t.TempDir()
	res := protectOK(t, arc, Options{SidecarDir: dir})
	sc, err := OpenSidecar(res.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	// rewrite the sidecar with the first chunk's hash changed, and the
	// archive's first byte changed to fit it
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	S := sc.Header.Chunks.Size
	forged := xxhash.Sum64(b[:min(S, len(b))])
	sw, err := createSidecar(res.Sidecar, Version)
	if err != nil {
		t.Fatal(err)
	}
	for k := range sc.index {
		if k.typ == recHeader || k.typ == recIndex {
			continue
		}
		p, err := sc.record(k.typ, k.key)
		if err != nil {
			t.Fatal(err)
		}
		if k.typ == recChunks && k.key == 0 {
			p = binary.LittleEndian.AppendUint64(nil, forged)
			rest, _ := sc.record(k.typ, k.key)
			p = append(p, rest[8:]...)
		}
		if err := sw.record(k.typ, k.key, p); err != nil {
			t.Fatal(err)
		}
	}
	h := sc.Header
	sc.Close()
	if err := sw.finish(&h); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(arc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rr, err := Repair(arc, RepairOptions{SidecarDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Intact || !rr.Damage.Empty() {
		t.Fatalf("a sidecar with forged chunk hashes called the archive intact: %+v", rr)
	}
	t.Logf("notes: %q", rr.Notes)
}

package protect

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
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

// TestProtectFailFast: protect of a clean zstd archive takes the FailFast
// read, and its sidecar holds the very records the full read writes; an
// archive without a checksum and a damaged one are read again in full (the
// first gets its sidecar, saying it has no checksum; the second none, with
// the full read's account of the damage).
func TestProtectFailFast(t *testing.T) {
	arc := testArchive(t)
	fast := protectOK(t, arc, Options{SidecarDir: t.TempDir()})
	full := protectOK(t, arc, Options{SidecarDir: t.TempDir(), noFast: true})
	if !fast.fast || full.fast {
		t.Fatalf("fast read %v, full read %v", fast.fast, full.fast)
	}
	s1, err := OpenSidecar(fast.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := OpenSidecar(full.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	h1, h2 := s1.Header, s2.Header
	h1.Created, h2.Created = "", ""
	if !reflect.DeepEqual(h1, h2) || len(s1.index) != len(s2.index) {
		t.Fatalf("headers or record counts differ:\n%+v\n%+v\n%d %d records", h1, h2, len(s1.index), len(s2.index))
	}
	for k, loc := range s1.index {
		if k.typ == recHeader || k.typ == recIndex {
			continue
		}
		b1, err1 := s1.readAt(k.typ, k.key, loc)
		b2, err2 := s2.record(k.typ, k.key)
		if err1 != nil || err2 != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("record %d/%d differs (%v, %v)", k.typ, k.key, err1, err2)
		}
	}

	// no checksum: the same stream recompressed with zstd --no-check
	zstd := testutil.RequireTool(t, "zstd")
	noCheck := filepath.Join(t.TempDir(), filepath.Base(arc))
	cmd := exec.Command("sh", "-c", `"$0" -q -d -c "$1" | "$0" -q --no-check -o "$2"`, zstd, arc, noCheck)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v: %s", err, out)
	}
	res := protectOK(t, noCheck, Options{SidecarDir: t.TempDir()})
	if sc, err := OpenSidecar(res.Sidecar); err != nil || sc.Header.Verify.Checksum != "absent" || res.fast {
		t.Fatalf("no checksum: %v, fast %v, header %+v", err, res.fast, sc.Header.Verify)
	}

	// damaged: no sidecar, the full read's account
	damageFile(t, arc, 5)
	dir := t.TempDir()
	rereads := 0
	res, err = Protect(arc, Options{SidecarDir: dir, Reread: func() { rereads++ }})
	if err != nil || res.Intact || res.fast || res.Sidecar != "" || rereads != 1 {
		t.Fatalf("damaged: %v, intact %v, fast %v, sidecar %q, %d rereads", err, res.Intact, res.fast, res.Sidecar, rereads)
	}
	ref, err := Protect(arc, Options{SidecarDir: dir, noFast: true})
	if err != nil || !reflect.DeepEqual(res.Report.Archives, ref.Report.Archives) {
		t.Fatalf("damaged: the report differs from the full read's (%v)", err)
	}
	if n, _ := filepath.Glob(filepath.Join(dir, "*")); len(n) != 0 {
		t.Fatalf("files left: %v", n)
	}
}

// TestProtectFailFastVerdicts: on archives damaged at random (one hit
// each: a bit flip, a zeroed 4 KiB page, a garbage run, a cut, or a flip in
// the first 4 KiB, where the headers are), protect with its FailFast read
// gives the verdict and account the full read gives, and writes a sidecar
// only when that says intact. VZSALVAGE_STRESS=N runs N trials (default 10).
func TestProtectFailFastVerdicts(t *testing.T) {
	trials := 10
	if n, err := strconv.Atoi(os.Getenv("VZSALVAGE_STRESS")); err == nil && n > 0 {
		trials = n
	}
	src := testArchive(t)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(21, 22))
	damaged := 0
	for i := 0; i < trials; i++ {
		b := bytes.Clone(orig)
		at := rng.IntN(len(b))
		switch i % 5 {
		case 0:
			b[at] ^= 1 << rng.IntN(8)
		case 1:
			at &^= 4095
			clear(b[at:min(len(b), at+4096)])
		case 2:
			for j := at; j < min(len(b), at+1+rng.IntN(64<<10)); j++ {
				b[j] = byte(rng.Uint32())
			}
		case 3:
			b = b[:at]
		default:
			b[rng.IntN(4096)] ^= 1 << rng.IntN(8)
		}
		arc := filepath.Join(t.TempDir(), filepath.Base(src))
		if err := os.WriteFile(arc, b, 0o644); err != nil {
			t.Fatal(err)
		}
		d1, d2 := t.TempDir(), t.TempDir()
		fast, err1 := Protect(arc, Options{SidecarDir: d1})
		full, err2 := Protect(arc, Options{SidecarDir: d2, noFast: true})
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("trial %d: errors %v and %v", i, err1, err2)
		}
		if err1 != nil {
			continue
		}
		if fast.Intact != full.Intact || (fast.Sidecar == "") != (full.Sidecar == "") || !reflect.DeepEqual(fast.Report.Archives, full.Report.Archives) {
			t.Fatalf("trial %d (kind %d at %d): FailFast intact %v sidecar %q, full intact %v sidecar %q", i, i%5, at, fast.Intact, fast.Sidecar, full.Intact, full.Sidecar)
		}
		if fast.fast && !fast.Intact {
			t.Fatalf("trial %d: the FailFast read gave a damaged verdict", i)
		}
		if !full.Intact {
			damaged++
		}
	}
	t.Logf("%d trials, %d damaged", trials, damaged)
}

// TestProtectEveryCodec: an archive of the same disks compressed by gzip,
// by lzop and not at all (read through the encoder's lent buffers with
// those decoders) gets a sidecar whose cluster hashes are those of the
// zstd archive's, and whose parity puts the archive back bit for bit
// after a garbage run, a zeroed page and a bit flip.
func TestProtectEveryCodec(t *testing.T) {
	ref := protectOK(t, testArchive(t), Options{})
	rs, err := OpenSidecar(ref.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for _, ext := range []string{".gz", ".lzo", ""} {
		arc := testimg.BuildArchive(t, t.TempDir(), shared.disks, ext, 42)
		want := fileSHA(t, arc)
		res := protectOK(t, arc, Options{})
		s, err := OpenSidecar(res.Sidecar)
		if err != nil {
			t.Fatal(err)
		}
		clusters := 0
		for k := range rs.index {
			if k.typ != recCluster {
				continue
			}
			b1, err1 := rs.record(k.typ, k.key)
			b2, err2 := s.record(k.typ, k.key)
			if err1 != nil || err2 != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("%q: cluster page %x differs from the zstd archive's (%v, %v)", ext, k.key, err1, err2)
			}
			clusters++
		}
		s.Close()
		if clusters == 0 {
			t.Fatal("no cluster page in the zstd archive's sidecar")
		}
		damageFile(t, arc, 5)
		out := filepath.Join(t.TempDir(), "fixed")
		rr, err := Repair(arc, RepairOptions{Output: out})
		if err != nil || !rr.Complete || fileSHA(t, out) != want {
			t.Fatalf("%q: repair: %v %+v", ext, err, rr)
		}
	}
}

package protect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/reedsolomon"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/merge"
	"github.com/vzsalvage/vzsalvage/report"
)

// RepairOptions control Repair.
type RepairOptions struct {
	// SidecarDir is where the sidecar is when it is not beside the archive.
	SidecarDir string
	// Output writes the repaired archive there (also when the repair is
	// only partial: fewer damaged bytes for rescue), with a copy of the
	// sidecar beside it. Empty: only check and report.
	Output string
	// InPlace replaces the archive with the repaired one, only when the
	// repair is complete (SHA-256 equal to the sidecar's).
	InPlace bool
	// Progress, if set, is called with bytes done and total per phase.
	Progress func(done, total int64)
	// NoLocate skips reading the archive to locate damaged clusters when
	// the damage exceeds the parity (scrub only counts).
	NoLocate bool
	// Context, if set, stops the repair when done (an interrupt): the
	// archive is left as it was and a partial output is removed.
	Context context.Context
	// Copies are other copies of the archive (copies.go): with a sidecar,
	// damaged chunks are taken from them where their hashes match; without
	// one, the copies are merged at the compressed-byte level.
	Copies []string
	// Resume continues the chunk check where an earlier one stopped (nil:
	// from the start). A point that does not fit (another archive, size or
	// mtime; another sidecar; with Copies) is ignored: the check starts
	// from the beginning. The result covers the whole archive either way.
	Resume *ScanPoint
	// Checkpoint, if set, is called after every block of the chunk check
	// with the bytes checked so far; point builds the ScanPoint a later
	// Resume goes on from (call it only when saving: it copies the damage).
	Checkpoint func(done int64, point func() *ScanPoint)
}

// ScanPoint is how far a chunk check got: the bytes before Offset are
// checked, their damage is in Damage and SHA256 is the whole-file hash's
// state after them (for a version 1 sidecar; empty for version 2, whose
// pin is the hash of the sidecar's chunk hashes, not of the file). The
// archive's and sidecar's identities make a point of a changed archive or
// sidecar void.
type ScanPoint struct {
	ScanIdentity
	Offset int64       `json:"offset"`
	SHA256 []byte      `json:"sha256_state,omitempty"`
	Damage *damage.Map `json:"damage"`
}

// ScanIdentity names the archive (path, size, mtime) and the sidecar (path,
// size, mtime, the archive's pin it records: its SHA-256 for version 1,
// ArchiveInfo.Pin for version 2) a ScanPoint belongs to.
type ScanIdentity struct {
	Archive       string `json:"archive"`
	Size          int64  `json:"size"`
	ModTime       int64  `json:"mtime_ns"`
	Sidecar       string `json:"sidecar"`
	SidecarSize   int64  `json:"sidecar_size"`
	SidecarMTime  int64  `json:"sidecar_mtime_ns"`
	SidecarSHA256 string `json:"sidecar_archive_sha256"`
}

// RepairResult is what Repair found and did.
type RepairResult struct {
	Archive string `json:"archive"`
	Sidecar string `json:"sidecar"`
	// Size is the archive's size now; Header.Archive.Size its size when
	// protected.
	Size   int64  `json:"size"`
	Header Header `json:"header"`
	// Intact: the archive is bit for bit what was protected.
	Intact bool `json:"intact"`
	// Damage lists the archive file's byte ranges found damaged (whole
	// chunks; lost past a truncated end).
	Damage *damage.Map `json:"damage"`
	// Rebuilt counts the bytes rebuilt from parity, FromCopies those taken
	// from copies; Unrepairable lists what neither could rebuild.
	Rebuilt      int64       `json:"rebuilt"`
	FromCopies   int64       `json:"from_copies,omitempty"`
	Unrepairable *damage.Map `json:"unrepairable"`
	// Complete: the output is bit for bit the original (version 1: its
	// SHA-256 is the sidecar's; version 2: every chunk's hash is the
	// sidecar's and the SHA-256 of them all is the sidecar's pin).
	Complete bool `json:"complete"`
	// Output is the file written (empty when none).
	Output string `json:"output,omitempty"`
	// Located is, when the repair is not complete, the read of the best
	// archive there is with the sidecar: every damaged cluster of every
	// device is in its devices' damage.
	Located *report.Report `json:"located,omitempty"`
	// Notes are things worth saying (extra bytes after the end, ...).
	Notes []string `json:"notes,omitempty"`
	// Merge is the merge of the copies, when there was no sidecar.
	Merge *merge.Result `json:"merge,omitempty"`
	// ResumedAt is the offset the chunk check went on from (Resume).
	ResumedAt int64 `json:"resumed_at,omitempty"`
}

// Repair checks an archive against its sidecar, rebuilds damaged chunks
// from the parity and, with Output or InPlace, writes the original back.
// When the damage exceeds the parity it reads the archive with the sidecar
// to locate every damaged cluster (RepairResult.Located).
func Repair(path string, opt RepairOptions) (*RepairResult, error) {
	sc, err := findSidecar(path, opt)
	if err != nil {
		return nil, err
	}
	if sc == nil && len(opt.Copies) > 0 {
		return repairFromCopies(path, opt)
	}
	if sc == nil {
		return nil, fmt.Errorf("%s: %w (looked for %s)", path, ErrNoSidecar, SidecarPath(path, opt.SidecarDir))
	}
	defer sc.Close()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	rr := &RepairResult{Archive: path, Sidecar: sc.Path, Size: st.Size(), Header: sc.Header,
		Damage: &damage.Map{}, Unrepairable: &damage.Map{}}
	copies, err := openCopies(opt.Copies)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range copies {
			c.Close()
		}
	}()
	r := &repairer{sc: sc, src: &patched{base: f}, size: st.Size(), orig: sc.Header.Archive.Size, p: sc.Header.Parity, rr: rr, opt: opt}
	if r.here, err = r.identity(path, st); err != nil {
		return nil, err
	}
	for _, c := range copies {
		r.copies = append(r.copies, c)
	}
	if r.size > r.orig {
		rr.Notes = append(rr.Notes, fmt.Sprintf("%d bytes after the protected end are not part of the archive", r.size-r.orig))
	}
	if err := r.scan(); err != nil {
		return nil, err
	}
	rr.Intact = rr.Damage.Empty() && r.size == r.orig && r.sumOK
	if rr.Intact {
		rr.Complete = true
		return rr, nil
	}
	if err := r.rebuild(); err != nil {
		return nil, err
	}
	if !rr.Complete && !opt.NoLocate {
		best := path
		if rr.Output != "" {
			best = rr.Output
		}
		res, err := extract.Verify(best, extract.Options{Checker: NewChecker(sc), Progress: opt.Progress, Context: opt.Context})
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		if err != nil {
			rr.Notes = append(rr.Notes, fmt.Sprintf("locating the damaged clusters failed: %v", err))
		} else {
			rr.Located = res.Report
		}
	}
	return rr, nil
}

// repairer holds one repair's state.
type repairer struct {
	sc     *Sidecar
	src    *patched // the archive, with chunks from copies
	copies []io.ReaderAt
	chunk  []byte
	size   int64 // the file's size now
	orig   int64 // its size when protected
	p      Parity
	rr     *RepairResult
	opt    RepairOptions
	sumOK  bool
	bad    []*damage.Map // per segment: damaged shards (segment offsets)
	here   ScanIdentity  // the archive's and sidecar's identity
}

// scanBlock is the chunk check's read size: a ScanPoint's Offset is a
// multiple of it within its segment (or the archive's end). A variable for
// tests, whose archives are a few blocks.
var scanBlock int64 = 4 << 20

// identity returns the identity a ScanPoint of this archive and sidecar
// carries.
func (r *repairer) identity(path string, st os.FileInfo) (ScanIdentity, error) {
	sst, err := os.Stat(r.sc.Path)
	if err != nil {
		return ScanIdentity{}, err
	}
	pin := r.sc.Header.Archive.SHA256 // (as version 1 state files have it)
	if pin == "" {
		pin = r.sc.Header.Archive.Pin()
	}
	return ScanIdentity{Archive: path, Size: st.Size(), ModTime: st.ModTime().UnixNano(),
		Sidecar: r.sc.Path, SidecarSize: sst.Size(), SidecarMTime: sst.ModTime().UnixNano(),
		SidecarSHA256: pin}, nil
}

// resumable returns opt.Resume when the check can go on from it, and (for a
// version 1 sidecar) the whole-file hash restored to its state.
func (r *repairer) resumable(sum hash.Hash) *ScanPoint {
	p := r.opt.Resume
	if p == nil || p.Offset <= 0 || p.Offset > r.orig || len(r.copies) > 0 {
		return nil
	}
	if p.ScanIdentity != r.here {
		return nil
	}
	if p.Offset != r.orig && (p.Offset%r.p.segmentSize())%scanBlock != 0 {
		return nil
	}
	if !r.fileSum() {
		return p
	}
	u, ok := sum.(encoding.BinaryUnmarshaler)
	if !ok || u.UnmarshalBinary(p.SHA256) != nil {
		sum.Reset()
		return nil
	}
	return p
}

// clip returns m's ranges within [off, off+n), relative to off.
func clip(m *damage.Map, off, n int64) *damage.Map {
	out := &damage.Map{}
	if m == nil || n <= 0 {
		return out
	}
	for _, rg := range m.Overlaps(off, n) {
		a, b := max(rg.Off, off), min(rg.End(), off+n)
		out.Add(a-off, b-a, rg.State)
	}
	return out
}

// fileSum says whether the sidecar pins the archive by the SHA-256 of its
// bytes (version 1) rather than of its chunk hashes (version 2).
func (r *repairer) fileSum() bool { return r.sc.Header.Version == 1 }

// scan compares every chunk of the file with its hash and records the
// damaged ones; it checks the archive's pin: version 1 the SHA-256 of the
// whole file, version 2 the SHA-256 of the sidecar's chunk hashes (the file
// is then intact when every chunk matched its hash).
func (r *repairer) scan() error {
	nseg := r.p.segments(r.orig)
	sum := sha256.New()
	hsum := sha256.New() // of the sidecar's chunk hashes
	hashesOK := true
	buf := make([]byte, scanBlock)
	r.bad = make([]*damage.Map, nseg)
	var from int64
	var before *damage.Map // the damage found before from
	if p := r.resumable(sum); p != nil {
		from, before = p.Offset, p.Damage
		r.rr.ResumedAt = from
	}
	done := from
	for i := int64(0); i < nseg; i++ {
		s := r.p.segment(r.orig, i)
		hashes, err := r.sc.chunkHashes(i, s.shards)
		m := clip(before, s.start, min(s.length, from-s.start))
		r.bad[i] = m
		if err != nil {
			// the sidecar cannot say where the damage is in this segment
			r.rr.Notes = append(r.rr.Notes, fmt.Sprintf("segment %d of the archive cannot be checked: %v", i, err))
			hashesOK = false
		} else {
			writeHashes(hsum, hashes)
		}
		fileSum := r.fileSum()
		err = r.eachBlock(s, max(0, from-s.start), buf, func(off int64, b []byte, got int) error {
			n := int64(len(b))
			if fileSum {
				sum.Write(b[:got])
			}
			for j := int64(0); j < n; j += int64(r.p.ShardSize) {
				sh := (off + j) / int64(r.p.ShardSize)
				l := min(int64(r.p.ShardSize), s.length-off-j)
				st := damage.OK
				switch {
				case j+l > int64(got):
					st = damage.Lost
				case hashes == nil || xxhash.Sum64(b[j:j+l]) != hashes[sh]:
					st = damage.Tainted
				}
				if st != damage.OK && hashes != nil && r.fromCopy(s.start+off+j, l, hashes[sh]) {
					r.rr.Damage.Add(s.start+off+j, l, st)
				} else if st != damage.OK {
					m.Add(off+j, l, st)
				}
			}
			done += n
			if r.opt.Progress != nil {
				r.opt.Progress(done, r.orig)
			}
			if r.opt.Checkpoint != nil {
				r.opt.Checkpoint(done, func() *ScanPoint { return r.point(done, sum, s.start, m) })
			}
			return nil
		})
		if err != nil && r.opt.Context != nil && r.opt.Context.Err() != nil && r.opt.Checkpoint != nil {
			// stopped: the point after the last block read
			r.opt.Checkpoint(done, func() *ScanPoint { return r.point(done, sum, s.start, m) })
		}
		if err != nil {
			return err
		}
		for _, rg := range m.Ranges() {
			r.rr.Damage.Add(s.start+rg.Off, rg.Len, rg.State)
		}
	}
	if r.fileSum() {
		r.sumOK = hex.EncodeToString(sum.Sum(nil)) == r.sc.Header.Archive.SHA256
		return nil
	}
	r.sumOK = hashesOK && hex.EncodeToString(hsum.Sum(nil)) == r.sc.Header.Archive.ChunksSHA256
	if hashesOK && !r.sumOK {
		r.rr.Notes = append(r.rr.Notes, "the sidecar's chunk hashes are not those it was written with (their SHA-256 differs from its header's)")
	}
	return nil
}

// pinName names the archive's pin in messages.
func (r *repairer) pinName() string {
	if r.fileSum() {
		return "SHA-256"
	}
	return "SHA-256 of its chunk hashes"
}

// writeHashes adds chunk hashes to h as the sidecar stores them: 8 bytes,
// little-endian, each.
func writeHashes(h hash.Hash, hs []uint64) {
	b := make([]byte, 0, 8*len(hs))
	for _, v := range hs {
		b = appendUint64(b, v)
	}
	h.Write(b)
}

// point returns the ScanPoint after done bytes: the damage of the segments
// before and of the current one so far (m, from segment offset start).
func (r *repairer) point(done int64, sum hash.Hash, start int64, m *damage.Map) *ScanPoint {
	p := ScanPoint{ScanIdentity: r.here, Offset: done}
	if r.fileSum() {
		p.SHA256, _ = sum.(encoding.BinaryMarshaler).MarshalBinary()
	}
	p.Damage = r.rr.Damage.Clone()
	p.Damage.Shift(m, start)
	return &p
}

// rebuild reconstructs what the parity allows, segment by segment, and
// writes the output when asked.
func (r *repairer) rebuild() error {
	rs, err := newRS(r.p.DataShards, r.p.ParityShards)
	if err != nil {
		return err
	}
	var out *os.File
	var outSum hash.Hash // version 1: of the output; version 2: of its chunk hashes
	var outHashes []uint64
	target := r.opt.Output
	if r.opt.InPlace {
		target = r.rr.Archive
	}
	if target != "" {
		out, err = report.CreateTemp(target)
		if err != nil {
			return err
		}
		defer func() {
			if out != nil {
				out.Close()
				os.Remove(out.Name())
			}
		}()
		outSum = sha256.New()
	}
	buf := make([]byte, 4<<20)
	proven := true // version 2: every chunk of the output has the sidecar's hash
	for i := int64(0); i < r.p.segments(r.orig); i++ {
		s := r.p.segment(r.orig, i)
		fixes, err := r.rebuildSegment(rs, s)
		if err != nil {
			return err
		}
		if out == nil {
			continue
		}
		var want []uint64
		if !r.fileSum() {
			if want, err = r.sc.chunkHashes(i, s.shards); err != nil {
				proven = false
			}
			outHashes = outHashes[:0]
		}
		err = r.eachBlock(s, 0, buf, func(off int64, b []byte, got int) error {
			n := int64(len(b))
			clear(b[got:])
			S := int64(r.p.ShardSize)
			for j := int64(0); j < n; j += S {
				sh := (off + j) / S
				if fx, ok := fixes[sh]; ok {
					copy(b[j:], fx)
				}
				if r.fileSum() {
					continue
				}
				h := xxhash.Sum64(b[j : j+min(S, s.length-off-j)])
				outHashes = append(outHashes, h)
				if want == nil || sh >= int64(len(want)) || want[sh] != h {
					proven = false
				}
			}
			if r.fileSum() {
				outSum.Write(b)
			}
			_, err := out.Write(b)
			return report.TargetError(err, out.Name(), target)
		})
		if err != nil {
			return err
		}
		if !r.fileSum() {
			writeHashes(outSum, outHashes)
		}
	}
	r.rr.Complete = r.rr.Unrepairable.Empty()
	if out == nil {
		return nil
	}
	var complete bool
	if r.fileSum() {
		complete = hex.EncodeToString(outSum.Sum(nil)) == r.sc.Header.Archive.SHA256
	} else {
		complete = proven && hex.EncodeToString(outSum.Sum(nil)) == r.sc.Header.Archive.ChunksSHA256
	}
	if r.rr.Complete && !complete {
		return fmt.Errorf("the rebuilt archive's %s differs from the sidecar's although every chunk matched (please report this)", r.pinName())
	}
	r.rr.Complete = complete
	if r.opt.InPlace && !complete {
		r.rr.Notes = append(r.rr.Notes, "the repair is not complete: the archive was left as it was")
		return nil
	}
	name := out.Name()
	if err := out.Chmod(0o644); err != nil {
		return report.TargetError(err, name, target)
	}
	if err := out.Sync(); err != nil {
		return report.TargetError(err, name, target)
	}
	if err := out.Close(); err != nil {
		return report.TargetError(err, name, target)
	}
	out = nil
	if err := os.Rename(name, target); err != nil {
		os.Remove(name)
		return report.TargetError(err, name, target)
	}
	r.rr.Output = target
	if !r.opt.InPlace {
		// rescue and verify find the sidecar beside the repaired file
		if err := copySidecar(r.sc.Path, SidecarPath(target, "")); err != nil {
			return err
		}
	}
	return nil
}

// eachBlock reads a segment of the archive from offset from in blocks of
// len(buf) and calls fn with each block's offset in the segment, its bytes
// and how many of them the file had (fewer past a truncated end).
func (r *repairer) eachBlock(s segment, from int64, buf []byte, fn func(off int64, b []byte, got int) error) error {
	for off := from; off < s.length; off += int64(len(buf)) {
		if r.opt.Context != nil {
			if err := r.opt.Context.Err(); err != nil {
				return err
			}
		}
		b := buf[:min(int64(len(buf)), s.length-off)]
		got, err := r.src.ReadAt(b, s.start+off)
		if err != nil && err != io.EOF {
			return err
		}
		if err := fn(off, b, got); err != nil {
			return err
		}
	}
	return nil
}

// rebuildSegment reconstructs the damaged shards of a segment that the
// parity allows; it returns them by shard index in the segment.
func (r *repairer) rebuildSegment(rs reedsolomon.Encoder, s segment) (map[int64][]byte, error) {
	bad := r.bad[s.index]
	if bad.Empty() {
		return nil, nil
	}
	S := int64(r.p.ShardSize)
	// damaged shards per stripe
	perStripe := map[int][]int{} // stripe → columns
	for _, rg := range bad.Ranges() {
		for sh := rg.Off / S; sh*S < rg.End(); sh++ {
			c, t := int(sh/int64(s.stripes)), int(sh%int64(s.stripes))
			perStripe[t] = append(perStripe[t], c)
		}
	}
	hashes, herr := r.sc.chunkHashes(s.index, s.shards)
	par, perr := r.sc.parity(s.index, r.p.parityLen(s))
	fixes := map[int64][]byte{}
	k, m := r.p.DataShards, r.p.ParityShards
	shards := make([][]byte, k+m)
	for t, cols := range perStripe {
		if len(cols) > m || herr != nil || perr != nil {
			r.unrepairable(s, cols, t)
			continue
		}
		for c := 0; c < k; c++ {
			shards[c] = make([]byte, S)
			off := r.p.shardOff(s, c, t)
			if off-s.start < s.length {
				n, err := r.src.ReadAt(shards[c], off)
				if err != nil && err != io.EOF {
					return nil, err
				}
				clear(shards[c][n:])
				if end := s.start + s.length - off; end < S {
					clear(shards[c][end:])
				}
			}
		}
		for _, c := range cols {
			shards[c] = nil
		}
		for j := 0; j < m; j++ {
			o := (j*s.stripes + t) * r.p.ShardSize
			shards[k+j] = bytes.Clone(par[o : o+r.p.ShardSize])
		}
		if err := rs.ReconstructData(shards); err != nil {
			r.unrepairable(s, cols, t)
			continue
		}
		ok := true
		for _, c := range cols {
			sh := int64(c)*int64(s.stripes) + int64(t)
			l := min(S, s.length-sh*S)
			if xxhash.Sum64(shards[c][:l]) != hashes[sh] {
				ok = false
			}
		}
		if !ok {
			r.unrepairable(s, cols, t)
			continue
		}
		for _, c := range cols {
			sh := int64(c)*int64(s.stripes) + int64(t)
			l := min(S, s.length-sh*S)
			fixes[sh] = shards[c][:l]
			r.rr.Rebuilt += l
		}
	}
	return fixes, nil
}

// unrepairable records the damaged shards of a stripe the parity cannot
// rebuild.
func (r *repairer) unrepairable(s segment, cols []int, t int) {
	S := int64(r.p.ShardSize)
	for _, c := range cols {
		off := r.p.shardOff(s, c, t)
		r.rr.Unrepairable.Add(off, min(S, s.start+s.length-off), damage.Tainted)
	}
}

// copySidecar copies a sidecar to dst (atomically).
func copySidecar(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return report.WriteFileAtomic(dst, b, 0o644)
}

package vma

import (
	"errors"
	"io"
	"math"
)

// Resuming a read at an extent header.
//
// A second pass over a damaged stream (codec.Options.Donor) reads the
// same bytes as the first up to the first damage, so the reader's state
// at an extent header before it is the same in both. A first pass asked
// to (Options.Snapshot) saves that state at the extent headers it
// reaches while nothing it has read is damaged, and a second pass starts
// there (Resume) on a stream that starts at the header, instead of
// reading everything before it again. The state of a clean prefix is
// small: which clusters were seen (the cluster maps, shared with the
// first pass copy on write) and a few counters.

// Snapshot is a Reader's state at an extent header with nothing damaged
// before it.
type Snapshot struct {
	pos    int64
	hdr    *Header
	devs   [MaxDevices]*devState
	budget int
	res    Result
	limit  int64
	seen   int64
}

// Offset returns the stream offset of the extent header the snapshot was
// taken at: where a resumed Reader's stream starts.
func (s *Snapshot) Offset() int64 { return s.pos }

// Header returns the archive's header.
func (s *Snapshot) Header() *Header { return s.hdr }

// Seen calls fn for each run of clusters of a device read before the
// snapshot (all clean), as device byte ranges; stored says whether they
// held data (else the archive listed them as all zeros).
func (s *Snapshot) Seen(fn func(dev uint8, off, n int64, stored bool)) {
	for id, d := range s.devs {
		if d == nil {
			continue
		}
		nclusters := (d.dev.Size + ClusterSize - 1) / ClusterSize
		for i := int64(0); i < nclusters; i += pageSize {
			p := d.m.pages[uint32(i>>pageBits)]
			if p == nil {
				continue
			}
			p.each(min(int64(pageSize), nclusters-i), func(j, k int64, st cstate) {
				if st != cUnseen {
					off := (i + j) * ClusterSize
					fn(uint8(id), off, min(k*ClusterSize, d.dev.Size-off), st != cZero)
				}
			})
		}
	}
}

// Snapshot returns the latest snapshot saved (Options.Snapshot), or nil.
func (r *Reader) Snapshot() *Snapshot { return r.snap }

// clean reports whether nothing the reader has read up to pos (an extent
// header it is about to read) is damaged or doubtful, so that its state
// is the same in any pass that reads the same bytes before pos.
func (r *Reader) clean() bool {
	if !r.aligned || r.hole > 0 || r.skip > 0 || r.res.ProblemCount > 0 || r.res.Headerless ||
		r.damagedPassed > 0 || r.rsBad != math.MaxInt64 || r.cur != nil || r.pendingAt < len(r.pending) ||
		r.res.TailsPlaced > 0 || r.res.Resized > 0 || len(r.res.Losses) > 0 {
		return false
	}
	for _, d := range r.devs {
		if d != nil && (len(d.dmg) > 0 || len(d.prov) > 0 || d.merged > 0) {
			return false
		}
	}
	// no span of the codec starts before pos
	sp := r.spans()
	return len(sp) == 0 || sp[0].Off >= r.pos
}

// maybeSnapshot saves a snapshot at r.pos (step, after pass) when asked
// to and the read so far is clean.
func (r *Reader) maybeSnapshot() {
	if r.opt.Snapshot == nil || r.snapDone {
		return
	}
	if !r.clean() {
		r.snapDone = true // once damaged, no later state is clean
		return
	}
	if !r.opt.Snapshot(r.pos) {
		return
	}
	s := &Snapshot{pos: r.pos, hdr: r.hdr, budget: r.budget, res: r.res, limit: r.limit, seen: r.seen}
	s.res.Problems = nil
	s.devs = shareDevs(&r.devs)
	r.snap = s
}

// shareDevs returns the devices' states of a clean read (no damage
// ranges), their cluster maps shared copy on write with devs'.
func shareDevs(devs *[MaxDevices]*devState) (out [MaxDevices]*devState) {
	for i, d := range devs {
		if d != nil {
			out[i] = &devState{dev: d.dev, learned: d.learned, m: d.m.freeze()}
		}
	}
	return out
}

var errSnapshot = errors.New("vma: cannot resume from this snapshot")

// Resume returns a Reader that continues a read from snapshot s: src
// must deliver the stream from s.Offset() on (when src is a codec.Reader,
// its spans in the whole stream's offsets). Its clusters, Result and
// callbacks are those of a Reader that read the stream from its start,
// from the snapshot's extent on. Options.Snapshot is ignored.
func Resume(src io.Reader, s *Snapshot, opt Options) (*Reader, error) {
	if s == nil || s.hdr == nil {
		return nil, errSnapshot
	}
	opt.Snapshot = nil
	r := newReader(src, opt)
	r.hdr, r.pos, r.keepFrom, r.bufOff, r.passed = s.hdr, s.pos, s.pos, s.pos, s.pos
	r.budget, r.res, r.limit, r.seen, r.snapDone = s.budget, s.res, s.limit, s.seen, true
	r.devs = shareDevs(&s.devs)
	return r, nil
}

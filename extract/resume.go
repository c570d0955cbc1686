package extract

import (
	"errors"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/vma"
)

// A second pass that starts where the damage starts.
//
// A second pass (Options.Donor) reads the same stream bytes as the first
// up to the first damaged block: the donor changes nothing before a loss.
// So a first pass asked to (Options.Resumable) keeps the zstd decoder's
// state at the first block its clean path fails on (codec.Checkpoint:
// the window before it, the tables, the running hash; 4 to 40 MiB) and
// the VMA reader's state at the extent headers it reaches while nothing
// it has read is damaged (vma.Snapshot: which clusters it has seen).
// When the last such header lies within the checkpoint's window, a second
// pass (Options.Resume) reads the archive file from the checkpoint's
// input offset and the stream from that header on: the clean prefix is
// neither read from the disk nor decoded again. It writes in place
// (Overlay), where the first pass's images hold the prefix's clusters.
// Its images, damage and verdict are those of a second pass from the
// start (TestRedoResumed in rescue).

// Resume is where a second pass can start: a first pass's decoder
// checkpoint and its VMA reader's snapshot at an extent header within it.
type Resume struct {
	cp   codec.Checkpoint
	snap *vma.Snapshot
}

// Offset returns the stream offset the second pass starts reading at.
func (r *Resume) Offset() int64 { return r.snap.Offset() }

// Input returns the archive file offset it starts reading at.
func (r *Resume) Input() int64 { return r.cp.Input() }

// errResume: a read cannot start at its Options.Resume (Extract then
// reads the whole stream).
var errResume = errors.New("extract: cannot resume this read")

// resumable reports whether a read keeps what a second pass needs to
// start late (Options.Resumable, for a first pass the caller may make a
// second pass over).
func (opt Options) resumable() bool {
	return opt.Resumable && opt.Resume == nil && opt.Donor == nil && !opt.Strict &&
		opt.Observe == nil && len(opt.Taps) == 0
}

// check refuses a resumed read without what it needs: a donor, every
// image written in place (checked when they are open), nothing that must
// see every cluster.
func (r *Resume) check(opt Options) error {
	if r == nil {
		return nil
	}
	if opt.Donor == nil || opt.Overlay == nil || opt.Strict || opt.Observe != nil || len(opt.Taps) > 0 ||
		opt.Unlinked || opt.Format == "qcow2" {
		return errResume
	}
	return nil
}

// snapshots makes a first pass's VMA reader keep snapshots while they may
// serve (at or before the checkpoint's failing block), and returns the
// decoder's Checkpointer (nil when the pass keeps none).
func snapshots(vopt *vma.Options, raw codec.Reader, opt Options, chk Checker) codec.Checkpointer {
	ck, ok := raw.(codec.Checkpointer)
	if !ok || !opt.resumable() || chk != nil {
		return nil
	}
	vopt.Snapshot = func(pos int64) bool {
		cp := ck.Checkpoint()
		return cp == nil || pos <= cp.Until()
	}
	return ck
}

// resumePoint returns where a second pass can start, once a first pass
// is read: the checkpoint, if the decoder kept one to the end, and the
// reader's last snapshot within its window, before the first damaged
// stream byte.
func resumePoint(ck codec.Checkpointer, vr *vma.Reader, sm *StreamMap) *Resume {
	if ck == nil {
		return nil
	}
	cp, sn := ck.Checkpoint(), vr.Snapshot()
	if cp == nil || sn == nil || sn.Offset() < cp.From() || sn.Offset() > cp.Until() {
		return nil
	}
	if sm != nil && sm.First() >= 0 && sm.First() < sn.Offset() {
		return nil
	}
	return &Resume{cp: cp, snap: sn}
}

// resumed counts the clusters a resumed read does not read (those before
// its snapshot) as written: the first pass's images hold them.
func (s *imageSet) resumed(sn *vma.Snapshot) error {
	var err error
	sn.Seen(func(dev uint8, off, n int64, stored bool) {
		im := s.files[dev]
		if im == nil || im.log == nil {
			err = errResume
			return
		}
		im.w.add(off, n)
		if s.over != nil && stored {
			s.over.Skipped += n
		}
	})
	return err
}

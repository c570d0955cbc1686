package vma

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// Options control a Reader.
type Options struct {
	// Salvage reads past damage instead of failing at the first problem:
	// bad extent headers are skipped by scanning for the next good one (an
	// extent header with the archive's uuid and a matching MD5), clusters
	// whose bytes the codec reports as damaged are marked, the tail of an
	// extent broken by a loss of unknown length is placed by counting back
	// from the next good header, and at the end every cluster of every
	// device is accounted for (Result).
	Salvage bool
	// MaxProblems caps the problems kept in Result (default 1000); the
	// count of all problems is kept regardless.
	MaxProblems int
	// Place, if set, is called for every stored block delivered whose
	// bytes meet a codec span: the block's stream offset (BlockSize bytes
	// from there), its device and its offset in the device. With the final
	// spans it maps damaged stream bytes to device bytes (a second pass
	// with a donor needs it).
	Place func(streamOff int64, dev uint8, devOff int64)
	// Spans, if set, sees every span of the codec once, in order, when
	// the reader has passed it (the rest at the end): the final spans,
	// which the reader itself does not keep.
	Spans func(codec.Span)
	// Snapshot, if set, is called at each extent header the reader
	// reaches while nothing it has read is damaged (stream offset pos);
	// when it returns true the reader saves its state there (Snapshot,
	// replacing the one before), for a second pass to Resume from.
	Snapshot func(pos int64) bool
}

// Cluster is one cluster as read from the archive.
type Cluster struct {
	Dev  uint8
	Num  uint32
	Mask uint16
	// Data holds the stored blocks (bit j of Mask set) in ascending order:
	// popcount(Mask)*BlockSize bytes. It is valid until the next call to Next.
	Data []byte
	// Rewrite says a worse copy of this cluster was delivered before: the
	// blocks not in Mask must be written as zeros.
	Rewrite bool
}

// Blocks returns the number of stored blocks.
func (c *Cluster) Blocks() int { return bits.OnesCount16(c.Mask) }

// Offset returns the cluster's byte offset in its device.
func (c *Cluster) Offset() int64 { return int64(c.Num) * ClusterSize }

// DeviceResult says what a Reader found of one device.
type DeviceResult struct {
	Device
	Clusters Clusters
	// Damage lists the device's byte ranges not known to be right.
	Damage *damage.Map
	// DamageMerged counts the ranges merged into wider ones to keep the
	// damage map small (damage.Map.Coarsen): the damage is then reported
	// wider than it is, never narrower.
	DamageMerged int
}

// Result is the account of a whole read.
type Result struct {
	Devices []DeviceResult
	// Problems holds the first Options.MaxProblems problems, with stream
	// offsets (layer "vma").
	Problems []damage.Problem
	// ProblemCount counts all problems.
	ProblemCount int
	// Extents counts the good extents read.
	Extents int
	// TailsPlaced counts extents whose tail was placed by counting back
	// from the next header; TailsTrusted says whether those clusters count
	// as intact (no cluster of any device is missing, so no extent can have
	// been hidden in the loss).
	TailsPlaced  int
	TailsTrusted bool
	// Resized counts losses of unknown length whose true length the
	// extent arithmetic gave back to the codec, which then decoded again.
	Resized int
	// Headerless is set when the main header was unusable and devices were
	// learned from the extents (named "dev<ID>", sizes from the highest
	// cluster seen).
	Headerless bool
	// Losses lists the losses of unknown length whose true length the
	// extent arithmetic established (confirmed or resized): Off and Len in
	// the stream. Final only when TailsTrusted.
	Losses []codec.Span
	// Bomb is set when reading stopped because the decompressed stream went
	// on far past what its devices can hold (see StreamLimit): the input is
	// a decompression bomb, or not this archive's stream.
	Bomb bool
}

// Intact reports whether every cluster of every device was read intact and
// no problem was found.
func (r *Result) Intact() bool {
	if r.ProblemCount > 0 {
		return false
	}
	for _, d := range r.Devices {
		if d.Clusters.Tainted+d.Clusters.Lost > 0 {
			return false
		}
	}
	return true
}

// Reader reads a VMA stream.
type Reader struct {
	src io.Reader
	cr  codec.Reader // the source's damage account, or nil
	opt Options
	hdr *Header

	buf    []byte
	bufOff int64 // stream offset of buf[0]
	// hole: the stream bytes [holeAt, holeAt+hole) are not in buf (the
	// placeholders of a long loss, skipHole); buf holds the bytes before
	// and after it. skip: how many of them are still to be read.
	holeAt, hole, skip int64
	eof                bool
	readErr            error

	pos       int64 // next stream offset to parse
	aligned   bool  // pos is at a known extent boundary (false: scan for one)
	keepFrom  int64
	scratch   []byte
	inScratch bool // the cluster delivered last has its Data in scratch
	pending   []pendingCluster
	pendingAt int
	ext       extentPlace
	cur       *ExtentHeader // the extent whose tail is being placed, or nil
	cl        Cluster

	// confirmed holds the offsets of losses of unknown length whose true
	// length the extent arithmetic confirmed (or that were resized).
	confirmed   map[int64]bool
	resizeTried map[int64]bool
	resized     lossRange // the latest loss resized from the extent arithmetic
	rsOffs      []int64   // offsets of the Resync spans seen and not passed, in order
	rsFrom      int64     // spans from here on are not in rsOffs yet

	// The spans before passed were passed (spans.go): they count here,
	// and the codec may forget them.
	passed        int64
	damagedPassed int64 // the bytes they cover
	rsBad         int64 // the first Resync span among them never confirmed (MaxInt64: none)
	ref           *foldRef

	devs   [MaxDevices]*devState
	budget int
	res    Result
	done   bool
	err    error

	// limit is where reading stops (StreamLimit; 0 in headerless salvage,
	// which bounds the stream by headerlessLimit instead).
	limit int64
	// seen counts the clusters seen, for headerlessLimit, checked again
	// once the stream passes nextCheck.
	seen, nextCheck int64

	snap     *Snapshot // (snapshot.go)
	snapDone bool      // no snapshot is taken any more
}

// bombSlack is the stream StreamLimit allows beyond its bound, and what
// a headerless read may scan without finding clusters.
const bombSlack = 64 << 20

// maxDamageRanges bounds the damage ranges a reader keeps for all devices
// together; each device keeps between minDeviceRanges and maxDeviceRanges.
// Past that, ranges are merged into wider ones (damage.Map.Coarsen): a
// crafted archive (a terabyte device listing every other cluster) must not
// make the memory or damage.json grow with what its maps claim.
const (
	maxDamageRanges = 1 << 17
	minDeviceRanges = 1 << 10
	maxDeviceRanges = 1 << 15
)

// NewReader reads the main header from r and returns a Reader positioned at
// the first extent. If r is a codec.Reader, its damage spans are used. In
// strict mode (opt.Salvage false) any problem is an error; in salvage mode
// only an input that is not a VMA stream at all is.
func NewReader(r io.Reader, opt Options) (*Reader, error) {
	vr := newReader(r, opt)
	if err := vr.readHeader(); err != nil {
		return nil, err
	}
	return vr, nil
}

// newReader returns a Reader of r at stream offset 0 that has read
// nothing yet (NewReader reads the header, Resume sets the state).
func newReader(r io.Reader, opt Options) *Reader {
	if opt.MaxProblems <= 0 {
		opt.MaxProblems = 1000
	}
	vr := &Reader{src: r, opt: opt, aligned: true, confirmed: map[int64]bool{}, resizeTried: map[int64]bool{}, rsBad: math.MaxInt64}
	if cr, ok := r.(codec.Reader); ok {
		vr.cr = cr
	}
	if foldCheck {
		vr.ref = &foldRef{seen: map[int64]bool{}, confirmed: map[int64]bool{}}
	}
	vr.buf = make([]byte, 0, 256<<10)
	return vr
}

// Header returns the archive's header. In headerless salvage it holds the
// devices learned so far.
func (r *Reader) Header() *Header { return r.hdr }

// Offset returns how far into the (decompressed) stream the reader has got.
func (r *Reader) Offset() int64 { return r.pos }

// Consumed returns how many stream bytes the reader has taken from its
// source so far: what it delivered depends on nothing after them.
func (r *Reader) Consumed() int64 { return r.bufEnd() }

func (r *Reader) problem(off int64, format string, args ...any) {
	r.problemKind(off, damage.Corrupt, format, args...)
}

func (r *Reader) problemKind(off int64, kind damage.Kind, format string, args ...any) {
	r.res.ProblemCount++
	if len(r.res.Problems) < r.opt.MaxProblems {
		r.res.Problems = append(r.res.Problems, damage.Problem{Layer: "vma", Offset: off, Message: fmt.Sprintf(format, args...), Kind: kind})
	}
}

// Next returns the next cluster in archive order. At the end it returns
// io.EOF (then Result is complete). In strict mode any problem is an error.
func (r *Reader) Next() (*Cluster, error) {
	for {
		if r.err != nil {
			return nil, r.err
		}
		if r.pendingAt < len(r.pending) {
			p := &r.pending[r.pendingAt]
			r.pendingAt++
			if c := r.deliver(p); c != nil {
				return c, nil
			}
			continue
		}
		if r.done {
			return nil, io.EOF
		}
		r.pending = r.pending[:0]
		r.pendingAt = 0
		if err := r.step(); err != nil {
			r.err = err
			r.passAll()
		}
	}
}

// DataKept reports whether the next call to Next leaves the Data of the
// cluster returned last in place and unchanged (it then delivers another
// cluster of the same extent from the stream buffer without reading):
// a writer may hold it until then, to write the clusters that follow
// each other in the buffer and on the device at once.
func (r *Reader) DataKept() bool {
	return r.err == nil && !r.inScratch && r.pendingAt < len(r.pending)
}

// fatal turns a problem into an error in strict mode.
func (r *Reader) fatal(off int64, err error) error {
	if r.opt.Salvage {
		r.problem(off, "%v", err)
		return nil
	}
	return fmt.Errorf("%w (stream offset %d)", err, off)
}

// step reads the next extent (or scans for one) and queues its clusters.
func (r *Reader) step() error {
	r.keepFrom = r.pos
	r.pass(r.pos)
	r.maybeSnapshot()
	if !r.aligned {
		if !r.scan() {
			return r.finish()
		}
	}
	r.fill(r.pos + ExtentHeaderSize)
	hb := r.at(r.pos, ExtentHeaderSize)
	if len(hb) == 0 {
		return r.finish()
	}
	if len(hb) < ExtentHeaderSize {
		err := fmt.Errorf("read short extent (%d bytes)", len(hb))
		if !r.opt.Salvage {
			return fmt.Errorf("%w (stream offset %d)", err, r.pos)
		}
		r.problemKind(r.pos, damage.Truncated, "%v", err)
		return r.finish()
	}
	if sp, ok := r.resyncIn(r.pos, r.pos+ExtentHeaderSize); ok {
		if err := r.fatal(r.pos, fmt.Errorf("data of unknown length lost at stream offset %d", sp.Off)); err != nil {
			return err
		}
		r.pos = max(sp.End(), r.pos+1)
		r.aligned = false
		return nil
	}
	eh, err := ParseExtentHeader(hb, r.hdr.UUID)
	if err == nil && r.copiedAcrossLoss(r.pos, eh) {
		err = errors.New("extent header copied across a loss of unknown length from an earlier one")
	} else if err != nil && r.opt.Salvage {
		if rh, ok := r.repairHeader(hb, r.pos); ok && !r.copiedAcrossLoss(r.pos, rh) {
			r.problem(r.pos, "extent header repaired (%v; the rebuilt header matches its MD5)", err)
			eh, err = rh, nil
		}
	}
	if err != nil {
		if err := r.fatal(r.pos, err); err != nil {
			return err
		}
		r.pos += ExtentHeaderSize
		r.aligned = false
		return nil
	}
	return r.readExtentData(eh)
}

// damageUnit is the granularity of device damage: ranges are widened to
// whole 512-byte sectors. No filesystem keeps two files' data in one
// sector, so what a file is found to be does not change, and the taints of
// a cascade, a few bytes apart by the hundred per cluster, become a few
// ranges (memory).
const damageUnit = 512

// Result returns the account of the read. It is complete once Next has
// returned io.EOF.
func (r *Reader) Result() *Result { return &r.res }

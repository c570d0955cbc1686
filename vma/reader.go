package vma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"

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

	buf     []byte
	bufOff  int64 // stream offset of buf[0]
	eof     bool
	readErr error

	pos       int64 // next stream offset to parse
	aligned   bool  // pos is at a known extent boundary (false: scan for one)
	keepFrom  int64
	scratch   []byte
	pending   []pendingCluster
	pendingAt int
	ext       extentPlace
	cl        Cluster

	// confirmed holds the offsets of losses of unknown length whose true
	// length the extent arithmetic confirmed (or that were resized).
	confirmed   map[int64]bool
	resizeTried map[int64]bool
	resized     lossRange // the latest loss resized from the extent arithmetic
	rsOffs      []int64   // offsets of the Resync spans seen, in order
	rsScanned   int       // spans looked at for rsOffs

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
}

// StreamLimit returns how long h's decompressed stream may be before the
// Reader takes it for a decompression bomb and stops: twice the longest
// stream a writer can make for its devices (the header, and every cluster
// stored whole with an extent header of its own), plus bombSlack. A
// stream that long can decode from a few megabytes (zstd blocks that
// repeat one byte decode 32768 times larger): without this bound it costs
// time in proportion to what it decodes to, not to what the archive holds.
func StreamLimit(h *Header) int64 {
	var clusters int64
	for _, d := range h.Devices {
		clusters += d.Clusters()
	}
	return 2*(int64(h.Size)+clusters*(ClusterSize+ExtentHeaderSize)) + bombSlack
}

// bombSlack is the stream StreamLimit allows beyond its bound, and what
// a headerless read may scan without finding clusters.
const bombSlack = 64 << 20

// headerlessLimit bounds the stream of a read without a main header, which
// has no device sizes: twice what the clusters seen so far can take, plus
// the bytes the codec reported damaged (a loss of known length decodes to
// placeholders), plus bombSlack.
func (r *Reader) headerlessLimit() int64 {
	var damaged int64
	for _, sp := range r.spans() {
		damaged += sp.Len
	}
	return 2*(r.seen*(ClusterSize+ExtentHeaderSize)+damaged) + bombSlack
}

type devState struct {
	dev     Device
	learned bool // headerless: size grows with the clusters seen
	m       clusterMap
	// dmg holds the exact damage of the clusters read (device offsets):
	// the bytes the codec reports tainted or lost, and stored blocks that
	// were not in the stream. prov holds bytes whose trust is provisional
	// (placed tails, Cond bytes): they count as tainted unless trusted at
	// the end. Both are collected as they come (clusters arrive out of
	// order) and sorted once at the end.
	dmg, prov []damage.Range
	merged    int // ranges merged away by compactDamage
}

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

// rangeLimit returns how many damage ranges each device may keep.
func (r *Reader) rangeLimit() int {
	n := len(r.hdr.Devices)
	if r.res.Headerless || n == 0 {
		n = MaxDevices
	}
	return min(max(maxDamageRanges/n, minDeviceRanges), maxDeviceRanges)
}

// compactDamage keeps a device's collected damage ranges within four times
// its limit by sorting and coarsening them.
func (r *Reader) compactDamage(d *devState) {
	limit := r.rangeLimit()
	for _, rs := range []*[]damage.Range{&d.dmg, &d.prov} {
		if len(*rs) > 4*limit {
			m := damage.FromRanges(*rs)
			d.merged += m.Coarsen(limit)
			*rs = append((*rs)[:0], m.Ranges()...)
		}
	}
}

// forget drops the damage recorded for [off, off+n) (a cluster read again).
func forget(rs []damage.Range, off, n int64) []damage.Range {
	m := damage.FromRanges(rs)
	m.Clear(off, n)
	return append(rs[:0], m.Ranges()...)
}

// extentPlace says where the blocks of the current extent are in the
// stream: blocks [0, kPre) from dataStart on, blocks [kTail, nBlocks) ending
// at tailEnd, anything between lost. Blocks placed by inference are
// provisional: the tail, and what follows provFrom (the end of a loss
// resized from the extent arithmetic, which a later header than the one
// assumed would have made wrong).
type extentPlace struct {
	dataStart int64
	kPre      int
	kTail     int
	nBlocks   int
	tailEnd   int64
	provFrom  int64
	// exactGap: the loss between kPre and kTail has its true length
	// (confirmed): the blocks in it are lost, but their place in the
	// stream is known (for Options.Place).
	exactGap bool
}

// provisional reports whether block k, at stream offset pos, was placed by
// inference.
func (e *extentPlace) provisional(k int, pos int64) bool {
	return k >= e.kTail || pos+BlockSize > e.provFrom
}

// lossRange is a loss's place in the stream.
type lossRange struct{ off, end int64 }

func (e *extentPlace) blockPos(k int) (int64, bool) {
	switch {
	case k < e.kPre:
		return e.dataStart + int64(k)*BlockSize, true
	case k >= e.kTail:
		return e.tailEnd - int64(e.nBlocks-k)*BlockSize, true
	}
	return 0, false
}

type pendingCluster struct {
	bi      BlockInfo
	k0      int // index of its first stored block in the extent
	rewrite bool
}

// NewReader reads the main header from r and returns a Reader positioned at
// the first extent. If r is a codec.Reader, its damage spans are used. In
// strict mode (opt.Salvage false) any problem is an error; in salvage mode
// only an input that is not a VMA stream at all is.
func NewReader(r io.Reader, opt Options) (*Reader, error) {
	if opt.MaxProblems <= 0 {
		opt.MaxProblems = 1000
	}
	vr := &Reader{src: r, opt: opt, aligned: true, confirmed: map[int64]bool{}, resizeTried: map[int64]bool{}}
	if cr, ok := r.(codec.Reader); ok {
		vr.cr = cr
	}
	vr.buf = make([]byte, 0, 256<<10)
	if err := vr.readHeader(); err != nil {
		return nil, err
	}
	return vr, nil
}

// Header returns the archive's header. In headerless salvage it holds the
// devices learned so far.
func (r *Reader) Header() *Header { return r.hdr }

// Offset returns how far into the (decompressed) stream the reader has got.
func (r *Reader) Offset() int64 { return r.pos }

func (r *Reader) problem(off int64, format string, args ...any) {
	r.problemKind(off, damage.Corrupt, format, args...)
}

func (r *Reader) problemKind(off int64, kind damage.Kind, format string, args ...any) {
	r.res.ProblemCount++
	if len(r.res.Problems) < r.opt.MaxProblems {
		r.res.Problems = append(r.res.Problems, damage.Problem{Layer: "vma", Offset: off, Message: fmt.Sprintf(format, args...), Kind: kind})
	}
}

// ---- buffer ----

// fill makes the stream buffered up to offset end, or to EOF.
func (r *Reader) fill(end int64) {
	if r.keepFrom > r.bufOff {
		drop := min(r.keepFrom-r.bufOff, int64(len(r.buf)))
		n := copy(r.buf, r.buf[drop:])
		r.buf = r.buf[:n]
		r.bufOff += drop
	}
	need := end - r.bufOff
	if need > int64(cap(r.buf)) {
		nb := make([]byte, len(r.buf), need+need/4)
		copy(nb, r.buf)
		r.buf = nb
	}
	for !r.eof && r.bufOff+int64(len(r.buf)) < end {
		chunk := r.buf[len(r.buf):cap(r.buf)]
		if len(chunk) > 1<<20 {
			chunk = chunk[:1<<20]
		}
		if r.overLimit() {
			r.eof = true
			r.res.Bomb = true
			break
		}
		n, err := r.src.Read(chunk)
		r.buf = r.buf[:len(r.buf)+n]
		if err != nil {
			r.eof = true
			if err != io.EOF {
				r.readErr = err
			}
		}
	}
}

// overLimit reports whether the stream read so far passes its limit.
func (r *Reader) overLimit() bool {
	end := r.bufEnd()
	switch {
	case r.limit > 0:
		return end >= r.limit
	case r.res.Headerless && end >= r.nextCheck:
		// the spans are summed each time: checked every 16 MiB
		if end >= r.headerlessLimit() {
			return true
		}
		r.nextCheck = end + 16<<20
	}
	return false
}

// bufEnd returns the stream offset just past the buffered bytes.
func (r *Reader) bufEnd() int64 { return r.bufOff + int64(len(r.buf)) }

// at returns buffered bytes [off, off+n) (fewer at the end of the stream).
func (r *Reader) at(off, n int64) []byte {
	lo := off - r.bufOff
	hi := min(lo+n, int64(len(r.buf)))
	if lo < 0 || lo > hi {
		return nil
	}
	return r.buf[lo:hi]
}

// ---- spans ----

func (r *Reader) spans() []codec.Span {
	if r.cr == nil {
		return nil
	}
	return r.cr.Spans()
}

// firstSpan returns the index of the first span that ends after off
// (spans are sorted and disjoint, so their ends are sorted too).
func firstSpan(sp []codec.Span, off int64) int {
	return sort.Search(len(sp), func(i int) bool { return sp[i].End() > off })
}

// resyncIn returns the first Resync span that starts within [lo, hi).
func (r *Reader) resyncIn(lo, hi int64) (codec.Span, bool) {
	sp := r.spans()
	for i := firstSpan(sp, lo); i < len(sp) && sp[i].Off < hi; i++ {
		if sp[i].Resync {
			return sp[i], true
		}
	}
	return codec.Span{}, false
}

// worst returns the worst span state within [lo, hi), and whether Cond
// bytes (right if every earlier loss of unknown length was sized right)
// lie there. Cond spans do not count in the state.
func (r *Reader) worst(lo, hi int64) (st damage.State, cond bool) {
	sp := r.spans()
	for i := firstSpan(sp, lo); i < len(sp) && sp[i].Off < hi; i++ {
		if sp[i].Cond && sp[i].State == damage.Tainted {
			cond = true
		} else if sp[i].State > st {
			st = sp[i].State
		}
	}
	return st, cond
}

// acceptHeader returns the extent header at the start of b (at stream
// offset p) if it is one the scans may resynchronise on: valid, or rebuilt
// by repairHeader, and not a copy of an earlier one (copiedAcrossLoss).
func (r *Reader) acceptHeader(b []byte, p int64) (*ExtentHeader, bool) {
	eh, err := ParseExtentHeader(b, r.hdr.UUID)
	if err != nil {
		var ok bool
		if eh, ok = r.repairHeader(b, p); !ok {
			return nil, false
		}
	}
	return eh, !r.copiedAcrossLoss(p, eh)
}

// copiedAcrossLoss reports whether the extent header eh at stream offset p
// may be a copy of an earlier one: it holds Cond bytes that cannot be
// trusted yet (copied from before a loss of unknown length at an assumed
// distance; with a wrong estimate such a copy can reproduce an earlier,
// real header at the wrong place: seen, a header of an extent of zero
// clusters copied whole), and it lists a cluster already read.
func (r *Reader) copiedAcrossLoss(p int64, eh *ExtentHeader) bool {
	if _, cond := r.worst(p, p+ExtentHeaderSize); !cond || r.condTrusted(p) {
		return false
	}
	for _, e := range eh.Entries {
		if d := r.devs[e.Dev()]; d != nil && d.m.get(e.Cluster()) != cUnseen {
			return true
		}
	}
	return false
}

// repairHeader rebuilds a damaged extent header at the start of b when its
// MD5 allows (see RepairExtentHeader).
func (r *Reader) repairHeader(b []byte, at int64) (*ExtentHeader, bool) {
	if len(b) < ExtentHeaderSize || string(b[:4]) != extentMagic ||
		!bytes.Equal(b[extOffUUID:extOffUUID+16], r.hdr.UUID[:]) {
		return nil, false
	}
	devs := make([]uint8, 0, len(r.hdr.Devices))
	for _, d := range r.hdr.Devices {
		devs = append(devs, d.ID)
	}
	var suspect []bool
	if r.cr != nil {
		suspect = make([]bool, ExtentHeaderSize)
		for j := range suspect {
			st, cond := r.worst(at+int64(j), at+int64(j)+1)
			suspect[j] = st != damage.OK || cond
		}
	}
	return RepairExtentHeader(b, r.hdr.UUID, devs, suspect)
}

// ---- header ----

func (r *Reader) readHeader() error {
	r.fill(HeaderFixedSize)
	fixed := r.at(0, HeaderFixedSize)
	hs, err := HeaderSize(fixed)
	hst, _ := r.worst(0, HeaderFixedSize)
	damaged := hst != damage.OK
	if err != nil {
		if !r.opt.Salvage || !damaged {
			if r.readErr != nil {
				return r.readErr
			}
			if len(fixed) < 64 && string(fixed[:min(4, len(fixed))]) == headerMagic[:min(4, len(fixed))] && len(fixed) > 0 {
				return fmt.Errorf("%w: stream ends after %d bytes", ErrHeaderSize, len(fixed))
			}
			return err
		}
		return r.startHeaderless(fmt.Sprintf("main header unreadable (%v)", err))
	}
	r.fill(int64(hs))
	b := r.at(0, int64(hs))
	h, err := ParseHeader(b)
	switch {
	case err == nil:
	case errors.Is(err, ErrHeaderChecksum) && h != nil && r.opt.Salvage:
		r.problem(0, "%v: header used as it is", err)
	case r.opt.Salvage && len(b) == hs:
		return r.startHeaderless(fmt.Sprintf("main header unusable (%v)", err))
	default:
		if len(b) < hs {
			return fmt.Errorf("%w: stream ends after %d of %d header bytes", ErrHeaderSize, len(b), hs)
		}
		return err
	}
	r.hdr = h
	r.limit = StreamLimit(h)
	for _, d := range h.Devices {
		r.devs[d.ID] = &devState{dev: d}
	}
	r.pos = int64(hs)
	r.keepFrom = r.pos
	return nil
}

// startHeaderless prepares to salvage an archive whose main header is lost:
// the uuid comes from the first self-consistent extent header.
func (r *Reader) startHeaderless(why string) error {
	r.problem(0, "%s", why)
	r.res.Headerless = true
	r.hdr = &Header{}
	// find the first extent header whose MD5 matches, at a 512-byte boundary
	for off := int64(512); ; off += 512 {
		r.keepFrom = off
		r.fill(off + ExtentHeaderSize)
		b := r.at(off, ExtentHeaderSize)
		if len(b) < ExtentHeaderSize {
			return fmt.Errorf("%w: no extent header found either", ErrNotVMA)
		}
		if string(b[:4]) == extentMagic {
			var u [16]byte
			copy(u[:], b[extOffUUID:])
			if IsExtentHeader(b, u) {
				r.hdr.UUID = u
				r.pos = off
				return nil
			}
		}
	}
}

// ---- extents ----

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
		}
	}
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

// scan moves pos forward to the next good extent header at any offset
// (after a loss of unknown length, or a length wrongly resized, stream
// offsets need not be multiples of 512 any more),
// dropping what it passes. It returns false at the end of the stream.
func (r *Reader) scan() bool {
	start := r.pos
	for {
		r.keepFrom = r.pos
		r.fill(r.pos + 1<<20 + ExtentHeaderSize)
		win := r.at(r.pos, 1<<20+ExtentHeaderSize)
		if len(win) < ExtentHeaderSize {
			r.pos = r.bufEnd()
			r.done = true
			if r.pos > start {
				r.problem(start, "%d bytes skipped: no further extent header", r.pos-start)
			}
			return false
		}
		if i := r.findIn(win, r.pos); i >= 0 {
			r.pos += int64(i)
			r.aligned = true
			if r.pos > start {
				r.problem(start, "%d bytes skipped to the next extent header", r.pos-start)
			}
			return true
		}
		r.pos += int64(len(win) - ExtentHeaderSize + 1)
	}
}

// findIn returns the offset of the first good (or repairable) extent
// header in win (at stream offset base) with room for the whole header, or
// -1.
func (r *Reader) findIn(win []byte, base int64) int {
	last := len(win) - ExtentHeaderSize
	for i := 0; i <= last; {
		j := bytes.Index(win[i:last+4], []byte(extentMagic))
		if j < 0 {
			return -1
		}
		if _, ok := r.acceptHeader(win[i+j:], base+int64(i+j)); ok {
			return i + j
		}
		i += j + 1
	}
	return -1
}

// readExtentData queues the clusters of the extent whose header eh is at pos.
func (r *Reader) readExtentData(eh *ExtentHeader) error {
	hdrOff := r.pos
	dataStart := r.pos + ExtentHeaderSize
	size := eh.DataSize()
	end := dataStart + size
	r.fill(end)
	r.res.Extents++
	nb := eh.BlockCount
	place := extentPlace{dataStart: dataStart, kPre: nb, kTail: nb, nBlocks: nb, tailEnd: end, provFrom: math.MaxInt64}
	if rz := r.resized; rz.end > dataStart && rz.off < end {
		place.provFrom = rz.end
	}
	next, nextAligned := end, true
	if sp, ok := r.resyncIn(dataStart, min(end, r.bufEnd())); ok {
		place.kPre = int(max(sp.Off-dataStart, 0) / BlockSize)
		r.problem(hdrOff, "extent broken by a loss of unknown length at stream offset %d", sp.Off)
		room := int64(nb-place.kPre) * BlockSize
		from := sp.End()
		// the tail ends at most room bytes after the last loss before it:
		// widen the search past later losses (and what was decoded between)
		end := from + room + ExtentHeaderSize
		for i := 0; i < 64; i++ {
			r.fill(end)
			last, _, _ := r.resyncsIn(sp.Off, end)
			if last+room+ExtentHeaderSize <= end {
				break
			}
			end = last + room + ExtentHeaderSize
		}
		win := r.at(from, end-from)
		if i, valid := r.findBoundary(win, from); i >= 0 {
			q := from + int64(i)
			next = q
			if !valid {
				// the next extent's header is damaged but in place: it ends
				// this extent; scan on from after it
				r.problem(q, "extent header damaged (magic and uuid in place)")
				next, nextAligned = q+ExtentHeaderSize, false
			}
			if t, implied, single, ok := r.tailFits(sp, dataStart, size, q, place.kPre, nb); ok {
				if single && implied == sp.Len {
					r.confirmed[sp.Off] = true
					place.exactGap = true
					r.res.Losses = append(r.res.Losses, codec.Span{Off: sp.Off, Len: sp.Len})
				} else if single && r.resize(sp, implied) {
					// decoded again at the right distances: read the extent again
					r.res.Extents--
					return nil
				}
				place.kTail = nb - t
				place.tailEnd = q
				r.res.TailsPlaced++
			} else {
				r.problem(q, "tail of the extent at stream offset %d cannot be placed", hdrOff)
			}
		} else {
			next = from + int64(max(len(win)-ExtentHeaderSize+1, 0))
			nextAligned = false
		}
	} else if r.bufEnd() < end {
		place.kPre = int((r.bufEnd() - dataStart) / BlockSize)
		if err := r.fatal(hdrOff, fmt.Errorf("%w (%d < %d)", ErrShortExtent, r.bufEnd()-hdrOff, end-hdrOff)); err != nil {
			return err
		}
		next = r.bufEnd()
	}
	r.ext = place
	if err := r.queue(eh, hdrOff); err != nil {
		return err
	}
	r.pos = next
	r.aligned = nextAligned
	return nil
}

// findBoundary looks in win (at stream offset base) for where the next
// extent starts: the first good extent header, or the first place that
// holds an extent's magic and the archive's uuid as clean bytes (a header
// whose other bytes are damaged still marks the boundary). It returns -1
// if there is none, and whether the header is good.
func (r *Reader) findBoundary(win []byte, base int64) (int, bool) {
	last := len(win) - ExtentHeaderSize
	for i := 0; i <= last; {
		j := bytes.Index(win[i:last+4], []byte(extentMagic))
		if j < 0 {
			return -1, false
		}
		i += j
		b := win[i:]
		if _, ok := r.acceptHeader(b, base+int64(i)); ok {
			return i, true
		}
		if b[4] == 0 && b[5] == 0 && bytes.Equal(b[extOffUUID:extOffUUID+16], r.hdr.UUID[:]) {
			// Tainted bytes may stand here: what they hold comes from
			// placeholders (zeros) or from copies at the true distance, and
			// neither forms the archive's uuid by chance. Cond bytes may
			// have been copied from the wrong distance, from another header.
			if _, cond := r.worst(base+int64(i), base+int64(i)+extOffMD5); !cond {
				return i, false
			}
		}
		i++
	}
	return -1, false
}

// tailFits decides whether the bytes between the last loss of unknown
// length and the next header q can be the tail of the extent whose data
// starts at dataStart: they must fit in the blocks after the ones read
// before the loss, and the length the loss must then have had must be one
// the codec says is possible. It returns the number of tail blocks.
func (r *Reader) tailFits(first codec.Span, dataStart, size, q int64, kPre, nb int) (t int, implied int64, single, ok bool) {
	lastEnd, maxSum, sumLen := r.resyncsIn(first.Off, q)
	single = lastEnd == first.End()
	tailLen := q - lastEnd
	t = int(tailLen / BlockSize)
	if tailLen < 0 || nb-t < kPre {
		return 0, 0, false, false
	}
	// bytes the stream must really have had between the loss and the tail
	implied = size - (first.Off - dataStart) - tailLen
	if implied < 0 {
		return 0, 0, false, false
	}
	if maxSum >= 0 {
		between := (lastEnd - first.Off) - sumLen // decoded bytes between several losses
		if implied > maxSum+between {
			return 0, 0, false, false
		}
	}
	return t, implied, single, true
}

// resize asks the codec to decode again after the loss sp with its true
// length, once per loss. On success the buffered stream from the loss on is
// dropped (the codec delivers it again) and the loss counts as confirmed.
func (r *Reader) resize(sp codec.Span, trueLen int64) bool {
	rz, ok := r.src.(codec.Resizer)
	if !ok || r.resizeTried[sp.Off] {
		return false
	}
	r.resizeTried[sp.Off] = true
	if rz.Resize(sp.Off, trueLen) != nil {
		return false
	}
	r.confirmed[sp.Off] = true
	for len(r.res.Losses) > 0 && r.res.Losses[len(r.res.Losses)-1].Off >= sp.Off {
		r.res.Losses = r.res.Losses[:len(r.res.Losses)-1]
	}
	r.res.Losses = append(r.res.Losses, codec.Span{Off: sp.Off, Len: trueLen})
	r.resized = lossRange{sp.Off, sp.Off + trueLen}
	r.res.Resized++
	r.rsScanned, r.rsOffs = 0, r.rsOffs[:0]
	r.buf = r.buf[:sp.Off-r.bufOff]
	r.eof, r.readErr = false, nil
	return true
}

// resyncsIn returns, for the Resync spans in [lo, hi): the end of the last,
// the sum of their MaxLen (-1 if any is unbounded) and the sum of their Len.
func (r *Reader) resyncsIn(lo, hi int64) (lastEnd, maxSum, sumLen int64) {
	sp := r.spans()
	lastEnd = lo
	for i := firstSpan(sp, lo); i < len(sp) && sp[i].Off < hi; i++ {
		if !sp[i].Resync || sp[i].End() <= lo {
			continue
		}
		lastEnd = sp[i].End()
		sumLen += sp[i].Len
		if sp[i].MaxLen < 0 || maxSum < 0 {
			maxSum = -1
		} else {
			maxSum += sp[i].MaxLen
		}
	}
	return
}

// device returns the state of device id, learning it in headerless mode.
func (r *Reader) device(id uint8) *devState {
	d := r.devs[id]
	if d == nil && r.res.Headerless && id != 0 {
		d = &devState{dev: Device{ID: id, Name: fmt.Sprintf("dev%d", id)}, learned: true}
		r.devs[id] = d
	}
	return d
}

// queue checks the entries of an extent and queues its clusters.
func (r *Reader) queue(eh *ExtentHeader, hdrOff int64) error {
	k := 0
	for _, bi := range eh.Entries {
		k0 := k
		k += bi.Blocks()
		d := r.device(bi.Dev())
		if d == nil {
			if err := r.fatal(hdrOff, fmt.Errorf("%w %d", ErrDevID, bi.Dev())); err != nil {
				return err
			}
			continue
		}
		c := int64(bi.Cluster())
		if d.learned {
			if sz := (c + 1) * ClusterSize; sz > d.dev.Size {
				d.dev.Size = sz
			}
		} else {
			last := 15 - bits.LeadingZeros16(bi.Mask())
			if c >= d.dev.Clusters() || (bi.Mask() != 0 && c*ClusterSize+int64(last)*BlockSize >= d.dev.Size) {
				if err := r.fatal(hdrOff, fmt.Errorf("%w (%s)", ErrBeyondEnd, bi)); err != nil {
					return err
				}
				continue
			}
		}
		st := r.clusterState(bi, k0)
		old := d.m.get(uint32(c))
		rewrite := false
		if old != cUnseen {
			if err := r.fatal(hdrOff, fmt.Errorf("%w %d for stream %s", ErrDuplicate, c, d.dev.Name)); err != nil {
				return err
			}
			if st.rank() >= old.rank() {
				continue
			}
			rewrite = true
		}
		if err := d.m.set(uint32(c), st, &r.budget); err != nil {
			return err
		}
		if old == cUnseen {
			r.seen++
		}
		r.recordDamage(d, bi, k0, rewrite)
		r.compactDamage(d)
		r.pending = append(r.pending, pendingCluster{bi: bi, k0: k0, rewrite: rewrite})
	}
	return nil
}

// recordDamage adds the exact damage of a cluster about to be delivered to
// its device's maps: stored blocks not in the stream are lost, bytes the
// codec reports are tainted or lost, tail blocks and Cond bytes are
// provisional. A rewritten cluster forgets its earlier copy's damage.
func (r *Reader) recordDamage(d *devState, bi BlockInfo, k0 int, rewrite bool) {
	base := int64(bi.Cluster()) * ClusterSize
	if rewrite {
		d.dmg = forget(d.dmg, base, ClusterSize)
		d.prov = forget(d.prov, base, ClusterSize)
	}
	k := k0
	sp := r.spans()
	for j := 0; j < BlocksPerCluster; j++ {
		if bi.Mask()&(1<<j) == 0 {
			continue
		}
		dev := base + int64(j)*BlockSize
		pos, ok := r.ext.blockPos(k)
		tail := ok && r.ext.provisional(k, pos)
		k++
		if !ok {
			d.dmg = addRange(d.dmg, dev, BlockSize, damage.Lost)
			if r.opt.Place != nil && r.ext.exactGap {
				r.opt.Place(r.ext.dataStart+int64(k-1)*BlockSize, d.dev.ID, dev)
			}
			continue
		}
		if tail {
			d.prov = addRange(d.prov, dev, BlockSize, damage.Tainted)
		}
		if i := firstSpan(sp, pos); r.opt.Place != nil && i < len(sp) && sp[i].Off < pos+BlockSize {
			r.opt.Place(pos, d.dev.ID, dev)
		}
		for i := firstSpan(sp, pos); i < len(sp) && sp[i].Off < pos+BlockSize; i++ {
			lo, hi := max(sp[i].Off, pos), min(sp[i].End(), pos+BlockSize)
			switch {
			case sp[i].Cond && sp[i].State == damage.Tainted && r.condTrusted(pos):
				d.prov = addRange(d.prov, dev+lo-pos, hi-lo, damage.Tainted)
			case sp[i].Cond && sp[i].State == damage.Tainted:
				d.dmg = addRange(d.dmg, dev+lo-pos, hi-lo, damage.Tainted)
			default:
				d.dmg = addRange(d.dmg, dev+lo-pos, hi-lo, sp[i].State)
			}
		}
	}
}

// damageUnit is the granularity of device damage: ranges are widened to
// whole 512-byte sectors. No filesystem keeps two files' data in one
// sector, so what a file is found to be does not change, and the taints of
// a cascade, a few bytes apart by the hundred per cluster, become a few
// ranges (memory).
const damageUnit = 512

// addRange appends a range widened to whole sectors, merging it into the
// last one when they touch or overlap with the same state.
func addRange(rs []damage.Range, off, n int64, st damage.State) []damage.Range {
	end := (off + n + damageUnit - 1) &^ (damageUnit - 1)
	off &^= damageUnit - 1
	if k := len(rs); k > 0 && rs[k-1].State == st && off >= rs[k-1].Off && off <= rs[k-1].End() {
		rs[k-1].Len = max(rs[k-1].End(), end) - rs[k-1].Off
		return rs
	}
	return append(rs, damage.Range{Off: off, Len: end - off, State: st})
}

// clusterState judges a cluster from where its blocks are and what the
// codec says of their bytes.
func (r *Reader) clusterState(bi BlockInfo, k0 int) cstate {
	n := bi.Blocks()
	if n == 0 {
		return cZero
	}
	lost, bad, provisional := 0, 0, false
	for k := k0; k < k0+n; k++ {
		p, ok := r.ext.blockPos(k)
		if !ok {
			lost++
			continue
		}
		if r.ext.provisional(k, p) {
			provisional = true
		}
		st, cond := r.worst(p, p+BlockSize)
		switch {
		case st == damage.Lost:
			lost++
		case st == damage.Tainted:
			bad++
		case cond && !r.condTrusted(p):
			bad++
		case cond:
			provisional = true
		}
	}
	switch {
	case lost == n:
		return cLost
	case lost+bad > 0:
		return cTainted
	case provisional:
		return cProvisional
	}
	return cOK
}

// condTrusted reports whether Cond bytes at stream offset p can be trusted
// provisionally: every loss of unknown length before p was sized from the
// extent arithmetic (confirmed or resized). The trust becomes final at the
// end, like that of placed tails.
func (r *Reader) condTrusted(p int64) bool {
	for _, off := range r.resyncsBefore(p) {
		if !r.confirmed[off] {
			return false
		}
	}
	return true
}

// resyncsBefore returns the offsets of the Resync spans that start before
// p. It keeps an index of them, rebuilt when a Resize shrinks the spans.
func (r *Reader) resyncsBefore(p int64) []int64 {
	sp := r.spans()
	if len(sp) < r.rsScanned {
		r.rsScanned, r.rsOffs = 0, r.rsOffs[:0]
	}
	for ; r.rsScanned < len(sp); r.rsScanned++ {
		if sp[r.rsScanned].Resync {
			r.rsOffs = append(r.rsOffs, sp[r.rsScanned].Off)
		}
	}
	i := sort.Search(len(r.rsOffs), func(i int) bool { return r.rsOffs[i] >= p })
	return r.rsOffs[:i]
}

// deliver assembles a queued cluster.
func (r *Reader) deliver(p *pendingCluster) *Cluster {
	bi := p.bi
	n := bi.Blocks()
	c := &r.cl
	*c = Cluster{Dev: bi.Dev(), Num: bi.Cluster(), Mask: bi.Mask(), Rewrite: p.rewrite}
	if n == 0 {
		return c
	}
	first, ok1 := r.ext.blockPos(p.k0)
	last, ok2 := r.ext.blockPos(p.k0 + n - 1)
	if ok1 && ok2 && last-first == int64(n-1)*BlockSize {
		c.Data = r.at(first, int64(n)*BlockSize)
		if len(c.Data) == n*BlockSize {
			return c
		}
	}
	if cap(r.scratch) < ClusterSize {
		r.scratch = make([]byte, ClusterSize)
	}
	c.Data = r.scratch[:n*BlockSize]
	for i := 0; i < n; i++ {
		dst := c.Data[i*BlockSize : (i+1)*BlockSize]
		clear(dst)
		if pos, ok := r.ext.blockPos(p.k0 + i); ok {
			copy(dst, r.at(pos, BlockSize))
		}
	}
	return c
}

// finish ends the read: checks for missing clusters and builds the Result.
func (r *Reader) finish() error {
	r.done = true
	if r.res.Bomb {
		err := fmt.Errorf("decompressed stream goes on past %d bytes, far more than its devices can hold: a decompression bomb (or not this archive's stream); reading stopped there", r.bufEnd())
		if !r.opt.Salvage {
			return err
		}
		r.problemKind(r.bufEnd(), damage.Bomb, "%v", err)
	}
	if r.readErr != nil {
		if !r.opt.Salvage {
			return r.readErr
		}
		r.problemKind(r.bufEnd(), damage.ReadError, "read error: %v", r.readErr)
	}
	trust := !r.res.Headerless
	for id := range r.devs {
		d := r.devs[id]
		if d == nil {
			continue
		}
		if u := d.m.firstUnseen(d.dev.Clusters()); u >= 0 {
			trust = false
			err := fmt.Errorf("%w %d for stream %s", ErrMissing, u, d.dev.Name)
			if !r.opt.Salvage {
				return err
			}
			r.problemKind(r.pos, damage.Missing, "%v", err)
		}
	}
	r.res.TailsTrusted = trust
	r.res.Devices = r.res.Devices[:0]
	for id := range r.devs {
		d := r.devs[id]
		if d == nil {
			continue
		}
		cs, dm, merged := d.m.summarize(d.dev.Clusters(), d.dev.Size, d.dmg, d.prov, trust, r.rangeLimit())
		r.res.Devices = append(r.res.Devices, DeviceResult{Device: d.dev, Clusters: cs, Damage: dm, DamageMerged: merged + d.merged})
		if r.res.Headerless {
			r.hdr.Devices = append(r.hdr.Devices, d.dev)
		}
	}
	return nil
}

// Result returns the account of the read. It is complete once Next has
// returned io.EOF.
func (r *Reader) Result() *Result { return &r.res }

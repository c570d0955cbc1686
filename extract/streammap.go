package extract

import (
	"sort"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/vma"
)

// StreamMap is what a read learned of where the damaged bytes of the
// decompressed stream belong (Options.Map): the device place of every
// stored block that met a damaged span, the final spans, and the losses of
// unknown length with what the VMA extent arithmetic established of them.
// A second pass with a donor is built from it.
type StreamMap struct {
	// blocks are the placed blocks, by stream offset (BlockSize bytes
	// each), 16 bytes each.
	blocks []placed
	// Spans are the codec's final spans, as the VMA reader passed them
	// (vma.Options.Spans), at most maxMapSpans: past that, neighbours are
	// merged (coarsen), never making a byte look less damaged.
	Spans []codec.Span
	// Losses are the codec's losses of unknown length (with the input
	// offset where it resumed), when it lists them.
	Losses []codec.Loss
	// Known are the losses whose true length the extent arithmetic
	// established (stream offset and length); Trusted says whether that is
	// final (vma.Result.TailsTrusted).
	Known   []codec.Span
	Trusted bool
	// Full: more blocks met damage than a map holds; the rest are not
	// placed.
	Full bool
}

// PlacedBlock is a stored block: its stream offset, device and device
// offset.
type PlacedBlock struct {
	Off    int64
	Dev    uint8
	DevOff int64
}

// placed is a PlacedBlock as a StreamMap keeps it: the device and the
// device block number in one word.
type placed struct {
	off int64
	at  uint64 // dev<<56 | devOff/BlockSize
}

func (p placed) block() PlacedBlock {
	return PlacedBlock{Off: p.off, Dev: uint8(p.at >> 56), DevOff: int64(p.at&(1<<56-1)) * vma.BlockSize}
}

// maxPlaced bounds the blocks a StreamMap holds (8 GiB of damaged stream,
// 32 MiB).
const maxPlaced = 1 << 21

func (m *StreamMap) place(off int64, dev uint8, devOff int64) {
	if len(m.blocks) >= maxPlaced || devOff < 0 || devOff%vma.BlockSize != 0 {
		m.Full = true
		return
	}
	m.blocks = append(m.blocks, placed{off, uint64(dev)<<56 | uint64(devOff/vma.BlockSize)})
}

// finish sorts the blocks (a cluster read again after a resize replaces
// its earlier places) and takes the codec's and the VMA reader's account.
func (m *StreamMap) finish(dec codec.Reader, raw codec.Reader, vres *vma.Result) {
	sort.SliceStable(m.blocks, func(i, j int) bool { return m.blocks[i].off < m.blocks[j].off })
	out := m.blocks[:0]
	for _, b := range m.blocks {
		if n := len(out); n > 0 && out[n-1].off == b.off {
			out[n-1] = b
			continue
		}
		out = append(out, b)
	}
	m.blocks = out
	if ll, ok := raw.(codec.LossLister); ok {
		m.Losses = ll.Losses()
	}
	m.Known = vres.Losses
	m.Trusted = vres.TailsTrusted
}

// maxMapSpans bounds the spans a StreamMap keeps (32 bytes each).
const maxMapSpans = 1 << 16

// addSpan keeps a span the VMA reader passed (in order).
func (m *StreamMap) addSpan(s codec.Span) {
	m.Spans = append(m.Spans, s)
	if len(m.Spans) > 2*maxMapSpans {
		m.Spans = coarsen(m.Spans, maxMapSpans)
	}
}

// coarsen merges neighbouring spans (ordered, disjoint) until at most max
// remain: first those less than 512 bytes apart, then 1 KiB, doubling, as
// damage.Map.Coarsen. A merged span covers its parts and the gaps between
// them in the worst of their states; it is a Donor span only if all its
// parts were and no gap lies between them (the donor's bytes are never
// claimed for a byte that was not), and never Cond (plainly tainted).
func coarsen(sp []codec.Span, max int) []codec.Span {
	for gap := int64(512); len(sp) > max; gap *= 2 {
		w := 0
		for _, s := range sp {
			if w > 0 && s.Off-sp[w-1].End() < gap {
				last := &sp[w-1]
				donor := last.Donor && s.Donor && !last.Resync && !s.Resync && s.Off == last.End()
				last.Len = s.End() - last.Off
				last.State = max2(last.State, s.State)
				last.Donor, last.Cond = donor, false
				if !donor {
					last.State = max2(last.State, damage.Tainted)
				}
				last.Resync = last.Resync || s.Resync
				last.MaxLen = -1
				continue
			}
			sp[w] = s
			w++
		}
		sp = sp[:w]
	}
	return sp
}

func max2(a, b damage.State) damage.State {
	if a > b {
		return a
	}
	return b
}

// Placed calls f for every placed block, in stream order.
func (m *StreamMap) Placed(f func(PlacedBlock)) {
	for _, b := range m.blocks {
		f(b.block())
	}
}

// First returns the lowest stream offset the map says anything of: its
// first span, loss or placed block (-1: none). The output before it had
// no damage.
func (m *StreamMap) First() int64 {
	first := int64(-1)
	low := func(o int64) {
		if first < 0 || o < first {
			first = o
		}
	}
	for _, s := range m.Spans {
		low(s.Off)
	}
	for _, l := range m.Losses {
		low(l.Off)
	}
	for _, k := range m.Known {
		low(k.Off)
	}
	if len(m.blocks) > 0 {
		low(m.blocks[0].off)
	}
	return first
}

// Block returns the placed block holding stream offset off. When there is
// none, next is the stream offset of the next placed block (-1: none).
func (m *StreamMap) Block(off int64) (b PlacedBlock, ok bool) {
	b, ok, _ = m.find(off)
	return b, ok
}

// Next returns the stream offset of the first placed block after off that
// does not hold it, or -1.
func (m *StreamMap) Next(off int64) int64 {
	_, _, next := m.find(off)
	return next
}

func (m *StreamMap) find(off int64) (PlacedBlock, bool, int64) {
	bs := m.blocks
	i := sort.Search(len(bs), func(i int) bool { return bs[i].off+vma.BlockSize > off })
	if i < len(bs) && bs[i].off <= off {
		next := int64(-1)
		if i+1 < len(bs) {
			next = bs[i+1].off
		}
		return bs[i].block(), true, next
	}
	if i < len(bs) {
		return PlacedBlock{}, false, bs[i].off
	}
	return PlacedBlock{}, false, -1
}

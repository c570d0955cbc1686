package extract

import (
	"sort"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/vma"
)

// StreamMap is what a read learned of where the damaged bytes of the
// decompressed stream belong (Options.Map): the device place of every
// stored block that met a damaged span, the final spans, and the losses of
// unknown length with what the VMA extent arithmetic established of them.
// A second pass with a donor is built from it.
type StreamMap struct {
	// Blocks are the placed blocks, by stream offset (BlockSize bytes
	// each).
	Blocks []PlacedBlock
	// Spans are the codec's final spans.
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

// maxPlaced bounds the blocks a StreamMap holds (8 GiB of damaged stream).
const maxPlaced = 1 << 21

func (m *StreamMap) place(off int64, dev uint8, devOff int64) {
	if len(m.Blocks) >= maxPlaced {
		m.Full = true
		return
	}
	m.Blocks = append(m.Blocks, PlacedBlock{off, dev, devOff})
}

// finish sorts the blocks (a cluster read again after a resize replaces
// its earlier places) and takes the codec's and the VMA reader's account.
func (m *StreamMap) finish(dec codec.Reader, raw codec.Reader, vres *vma.Result) {
	sort.SliceStable(m.Blocks, func(i, j int) bool { return m.Blocks[i].Off < m.Blocks[j].Off })
	out := m.Blocks[:0]
	for _, b := range m.Blocks {
		if n := len(out); n > 0 && out[n-1].Off == b.Off {
			out[n-1] = b
			continue
		}
		out = append(out, b)
	}
	m.Blocks = out
	m.Spans = dec.Spans()
	if ll, ok := raw.(codec.LossLister); ok {
		m.Losses = ll.Losses()
	}
	m.Known = vres.Losses
	m.Trusted = vres.TailsTrusted
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
	i := sort.Search(len(m.Blocks), func(i int) bool { return m.Blocks[i].Off+vma.BlockSize > off })
	if i < len(m.Blocks) && m.Blocks[i].Off <= off {
		next := int64(-1)
		if i+1 < len(m.Blocks) {
			next = m.Blocks[i+1].Off
		}
		return m.Blocks[i], true, next
	}
	if i < len(m.Blocks) {
		return PlacedBlock{}, false, m.Blocks[i].Off
	}
	return PlacedBlock{}, false, -1
}

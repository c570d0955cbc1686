package ctar

import (
	"strconv"

	"github.com/vzsalvage/vzsalvage/damage"
)

// Fragment is a run of stream bytes inside a gap (where headers could not
// be read after the decoder reported damage) of which the decoder vouches
// for every byte: none is lost or tainted.
//
// After a zstd loss, each tar header copies the one before it, so the
// headers that follow copy the lost bytes: their checksums fail, and
// their size fields are tainted too (on the 4,000-file test tree, of the
// 276-1499 members per damaged position whose content decodes right, the
// size field of 0-19), while the files' contents, mostly new bytes,
// decode right. A fragment is then most often one member's content,
// but nothing verifies that: where the member began and ended is inferred
// from where the damage stops and starts again, so a fragment may be part
// of a file, or a file with bytes of its neighbours (the tar padding after
// it, when that decoded untainted, is left out: up to 511 zero bytes at
// its end, which may also have been the file's own). Its name, size,
// owner, mode and times are unknown. Each of its bytes is right where the
// stream holds it; as a file, it is unverified.
type Fragment struct {
	Off  int64 // stream offset of its first byte
	Size int64 // its bytes
	// Trimmed counts the zero bytes after Size (still untainted) left out
	// as tar padding.
	Trimmed int64
}

// Path returns where a fragment is restored in a container's tree: the
// root's lost+found, named after its stream offset.
func (fr Fragment) Path() string { return "/" + lostFound + "/" + fr.Name() }

// Name returns a fragment's file name in lost+found: "@" and its stream
// offset.
func (fr Fragment) Name() string { return "@" + strconv.FormatInt(fr.Off, 10) }

const lostFound = "lost+found"

const (
	// minFragment is the shortest run kept: shorter ones are mostly the
	// literal pieces of damaged headers (names, sizes, times), not content
	// (on the test tree's damaged .tar.zst, runs of 128 bytes and more are
	// a file's whole content for 80-93 %).
	minFragment = 128
	// maxPadding bounds the zero bytes left out at a fragment's end.
	maxPadding = BlockSize - 1
	// maxFragments bounds the fragments of one archive (the index is in
	// memory).
	maxFragments = 1 << 20
)

// fragRun is the run of vouched-for bytes being collected in a gap.
type fragRun struct {
	on      bool  // the gap follows decoder damage: collect
	open    bool  // a run is open
	start   int64 // its first byte
	end     int64 // just past its bytes seen so far
	zeros   int64 // trailing zero bytes among them
	head    []byte
	emitted bool // the hook has its first bytes
	err     error
}

// fragStart begins a gap at pos: fragments are collected when the
// decoder reported damage there (a damaged stream whose headers fail
// because they copy the damage), not when a header fails among bytes the
// decoder vouches for (an uncompressed archive, where garbage is not
// damage the decoder can tell).
func (sc *scanner) fragStart(pos int64, afterResync bool) {
	sc.fr.on = afterResync || sc.s.damaged(pos, BlockSize)
}

// frag takes the gap's stream bytes b at off (in order, each once): the
// parts the decoder vouches for extend or start runs; damaged ones end
// them. ahead holds the bytes after b, if the caller has them (a look at
// the next byte).
func (sc *scanner) frag(off int64, b, ahead []byte) {
	if !sc.fr.on || len(b) == 0 || sc.fr.err != nil {
		return
	}
	p := off
	for _, r := range sc.s.dmg.Overlaps(off, int64(len(b))) {
		if r.State < damage.Tainted {
			continue
		}
		if r.Off > p {
			sc.fragBytes(p, b[p-off:r.Off-off], nil)
		}
		sc.fragEnd()
		p = max(p, r.End())
	}
	if end := off + int64(len(b)); p < end {
		sc.fragBytes(p, b[p-off:], ahead)
	}
}

// fragBytes adds vouched-for bytes c at off to the open run, or starts
// one; it ends the run before what looks like the next member's header
// (splitHeader).
func (sc *scanner) fragBytes(off int64, c, ahead []byte) {
	for len(c) > 0 {
		k := sc.splitHeader(off, c, ahead)
		sc.fragRun(off, c[:k])
		if k == len(c) {
			return
		}
		sc.fragEnd()
		off, c = off+int64(k), c[k:]
		sc.fragRun(off, c[:1]) // the next run starts there
		off, c = off+1, c[1:]
	}
}

// splitHeader returns how many of the bytes c at off belong to the open
// run (or the one they start): all, unless a header seems to start among
// them, at a whole number of blocks from the run's start (a member's
// content starts at a block), after a zero byte (padding or a header's
// end) and with "./" (how vzdump's GNU tar starts every name): when the
// padding after a content and the next header's name decoded untainted,
// the run would otherwise take them in.
func (sc *scanner) splitHeader(off int64, c, ahead []byte) int {
	fr := &sc.fr
	start := off
	if fr.open && fr.end == off {
		start = fr.start
	}
	q := start + (off-start+BlockSize-1)/BlockSize*BlockSize
	if q == start {
		q += BlockSize
	}
	for ; q < off+int64(len(c)); q += BlockSize {
		i := q - off
		prevZero := i > 0 && c[i-1] == 0 || i == 0 && fr.open && fr.end == off && fr.zeros > 0
		var next byte
		switch {
		case i+1 < int64(len(c)):
			next = c[i+1]
		case len(ahead) > 0:
			next = ahead[0]
		}
		if prevZero && c[i] == '.' && next == '/' {
			return int(i)
		}
	}
	return len(c)
}

// fragRun adds c at off to the open run, or starts one.
func (sc *scanner) fragRun(off int64, c []byte) {
	fr := &sc.fr
	if fr.open && fr.end != off {
		sc.fragEnd()
	}
	if !fr.open {
		if len(sc.x.Fragments) >= maxFragments {
			return
		}
		fr.open, fr.start, fr.end, fr.zeros, fr.emitted = true, off, off, 0, false
		fr.head = fr.head[:0]
	}
	n := int64(len(c))
	if k := trailingZeros(c); k == len(c) {
		fr.zeros += n
	} else {
		fr.zeros = int64(k)
	}
	fr.end += n
	switch {
	case fr.emitted:
		fr.err = sc.fragData(fr.start, c, off-fr.start)
	case fr.end-fr.start >= minFragment:
		fr.head = append(fr.head, c...)
		fr.emitted = true
		fr.err = sc.fragData(fr.start, fr.head, 0)
	default:
		fr.head = append(fr.head, c...)
	}
}

func (sc *scanner) fragData(start int64, p []byte, off int64) error {
	if sc.opt.Fragment == nil {
		return nil
	}
	return sc.opt.Fragment(start, p, off)
}

// fragEnd closes the open run: it becomes a fragment when it is long
// enough and not all zeros once its padding is left out.
func (sc *scanner) fragEnd() {
	fr := &sc.fr
	if !fr.open {
		return
	}
	fr.open = false
	if !fr.emitted || fr.err != nil {
		return
	}
	n := fr.end - fr.start
	f := Fragment{Off: fr.start, Trimmed: min(fr.zeros, maxPadding)}
	f.Size = n - f.Trimmed
	keep := f.Size >= minFragment && fr.zeros < n
	if keep {
		sc.x.Fragments = append(sc.x.Fragments, f)
	}
	if sc.opt.FragmentEnd != nil {
		fr.err = sc.opt.FragmentEnd(f, keep)
	}
}

// recheckFragments drops the fragments that the stream's final damage
// account touches (a decoder that reported damage after the bytes it
// covers; none should): the account at the end decides.
func (sc *scanner) recheckFragments() {
	k := 0
	for _, fr := range sc.x.Fragments {
		if sc.s.dmg.Any(fr.Off, fr.Size, damage.Tainted) {
			sc.problem(fr.Off, "content found without its headers dropped: damage was reported in it after it was read")
			continue
		}
		sc.x.Fragments[k] = fr
		k++
	}
	sc.x.Fragments = sc.x.Fragments[:k]
}

// trailingZeros counts the zero bytes at the end of b.
func trailingZeros(b []byte) int {
	i := len(b)
	for i > 0 && b[i-1] == 0 {
		i--
	}
	return len(b) - i
}

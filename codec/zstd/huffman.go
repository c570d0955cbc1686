package zstd

import (
	"errors"
	"math/bits"
)

var errHuffman = errors.New("zstd: corrupt Huffman literals")

const maxHufBits = 11

// hufTable decodes literals: entry = symbol<<8 | code length, indexed by
// the next maxBits bits of the stream.
type hufTable struct {
	dt      [1 << maxHufBits]uint16
	maxBits uint8
	valid   bool // false: unknown (defined by a block that was lost)
}

// readHuffman reads a Huffman_Tree_Description from the start of b into t
// and returns its size. scratch is used for the FSE-compressed weights.
func (t *hufTable) read(b []byte, wt *fseTable) (int, error) {
	t.valid = false
	if len(b) < 1 {
		return 0, errHuffman
	}
	var w [256]uint8
	nw := 0
	hb := int(b[0])
	size := 0
	if hb >= 128 {
		nw = hb - 127
		size = 1 + (nw+1)/2
		if size > len(b) {
			return 0, errHuffman
		}
		for i := 0; i < nw; i++ {
			v := b[1+i/2]
			if i&1 == 0 {
				w[i] = v >> 4
			} else {
				w[i] = v & 15
			}
		}
	} else {
		size = 1 + hb
		if size > len(b) || hb == 0 {
			return 0, errHuffman
		}
		var err error
		nw, err = decodeWeights(b[1:size], &w, wt)
		if err != nil {
			return 0, err
		}
	}
	// The last weight is implied: it completes a power of two.
	var total uint32
	for i := 0; i < nw; i++ {
		if w[i] > maxHufBits {
			return 0, errHuffman
		}
		if w[i] > 0 {
			total += 1 << (w[i] - 1)
		}
	}
	if total == 0 || nw >= 256 {
		return 0, errHuffman
	}
	maxBits := uint8(bits.Len32(total))
	if maxBits > maxHufBits {
		return 0, errHuffman
	}
	rest := uint32(1)<<maxBits - total
	if rest&(rest-1) != 0 {
		return 0, errHuffman
	}
	w[nw] = uint8(bits.Len32(rest))
	nw++
	// Fill the table: lowest weights (longest codes) first, by symbol.
	var rankCount [maxHufBits + 2]uint32
	for i := 0; i < nw; i++ {
		rankCount[w[i]]++
	}
	var rankStart [maxHufBits + 2]uint32
	pos := uint32(0)
	for wi := 1; wi <= int(maxHufBits)+1; wi++ {
		rankStart[wi] = pos
		pos += rankCount[wi] << (wi - 1)
	}
	if pos != 1<<maxBits {
		return 0, errHuffman
	}
	for s := 0; s < nw; s++ {
		wi := w[s]
		if wi == 0 {
			continue
		}
		nb := maxBits + 1 - wi
		e := uint16(s)<<8 | uint16(nb)
		start := rankStart[wi]
		n := uint32(1) << (wi - 1)
		for j := start; j < start+n; j++ {
			t.dt[j] = e
		}
		rankStart[wi] = start + n
	}
	t.maxBits = maxBits
	t.valid = true
	return size, nil
}

// decodeWeights decodes FSE-compressed Huffman weights.
func decodeWeights(b []byte, w *[256]uint8, wt *fseTable) (int, error) {
	var norm [maxFSESymbols]int16
	nsym, log, n, err := readNCount(b, &norm, 255, 6)
	if err != nil {
		return 0, err
	}
	if err := wt.build(norm[:nsym], log, nil, nil); err != nil {
		return 0, err
	}
	var br bitReader
	if err := br.init(b[n:]); err != nil {
		return 0, errHuffman
	}
	s1 := uint32(br.get(log))
	s2 := uint32(br.get(log))
	br.reload()
	out := 0
	tt := wt.t
	for {
		if out >= 254 {
			return 0, errHuffman
		}
		e := tt[s1]
		w[out] = uint8(e.base)
		out++
		s1 = uint32(e.next) + br.get(e.nbBits)
		br.reload()
		if br.overflowed() {
			w[out] = uint8(tt[s2].base)
			out++
			break
		}
		e = tt[s2]
		w[out] = uint8(e.base)
		out++
		s2 = uint32(e.next) + br.get(e.nbBits)
		br.reload()
		if br.overflowed() {
			w[out] = uint8(tt[s1].base)
			out++
			break
		}
	}
	return out, nil
}

// decodeLiterals decodes the Huffman streams of src (after the tree
// description) into dst, whose length is the regenerated size.
func (t *hufTable) decodeLiterals(dst, src []byte, streams int) error {
	if streams == 1 {
		return t.decodeStream(dst, src)
	}
	if len(src) < 10 {
		return errHuffman
	}
	s1, s2, s3 := int(le16(src)), int(le16(src[2:])), int(le16(src[4:]))
	src = src[6:]
	if s1+s2+s3 >= len(src) {
		return errHuffman
	}
	seg := (len(dst) + 3) / 4
	if 3*seg > len(dst) {
		return errHuffman
	}
	if err := t.decodeStream(dst[:seg], src[:s1]); err != nil {
		return err
	}
	if err := t.decodeStream(dst[seg:2*seg], src[s1:s1+s2]); err != nil {
		return err
	}
	if err := t.decodeStream(dst[2*seg:3*seg], src[s1+s2:s1+s2+s3]); err != nil {
		return err
	}
	return t.decodeStream(dst[3*seg:], src[s1+s2+s3:])
}

func (t *hufTable) decodeStream(dst, src []byte) error {
	var br bitReader
	if err := br.init(src); err != nil {
		return errHuffman
	}
	dt := &t.dt
	shift := 64 - uint(t.maxBits)
	i, n := 0, len(dst)
	for ; i+4 <= n; i += 4 {
		br.reload()
		e := dt[(br.value<<br.consumed)>>shift&(1<<maxHufBits-1)]
		br.consumed += uint(e & 0xff)
		e2 := dt[(br.value<<br.consumed)>>shift&(1<<maxHufBits-1)]
		br.consumed += uint(e2 & 0xff)
		e3 := dt[(br.value<<br.consumed)>>shift&(1<<maxHufBits-1)]
		br.consumed += uint(e3 & 0xff)
		e4 := dt[(br.value<<br.consumed)>>shift&(1<<maxHufBits-1)]
		br.consumed += uint(e4 & 0xff)
		d := dst[i : i+4 : i+4]
		d[0], d[1], d[2], d[3] = byte(e>>8), byte(e2>>8), byte(e3>>8), byte(e4>>8)
	}
	for ; i < n; i++ {
		br.reload()
		e := dt[(br.value<<br.consumed)>>shift&(1<<maxHufBits-1)]
		br.consumed += uint(e & 0xff)
		dst[i] = byte(e >> 8)
	}
	if !br.finished() {
		return errHuffman
	}
	return nil
}

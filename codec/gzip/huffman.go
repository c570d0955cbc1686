package gzip

import "errors"

// Deflate (RFC 1951) Huffman decoding tables. A table maps the next
// primary bits of the stream (least significant bit first) to an entry;
// codes longer than primary continue in a subtable the entry points to.
//
// An entry is a uint32:
//
//	bits 0-4   n: bits consumed by this lookup
//	bits 5-7   kind (kLiteral, kLength, kEnd, kSub, kBad; kDist in distance tables)
//	bits 8-12  extra bits to read after the code (kSub: the subtable's index bits)
//	bits 16-31 value: literal, base length or distance, subtable offset
const (
	kLiteral = 0 << 5
	kLength  = 1 << 5
	kDist    = 1 << 5
	kEnd     = 2 << 5
	kSub     = 3 << 5
	kBad     = 4 << 5
	kindMask = 7 << 5
)

const (
	litBits  = 10 // primary bits of the literal/length table
	distBits = 8  // primary bits of the distance table
	maxCode  = 15 // longest code deflate allows
	// maxSymbols: 288 literal/length codes in the fixed code (286 in a
	// dynamic one), 32 distance codes
	maxSymbols = 288
	// litTableSize and distTableSize bound a table with its subtables
	// (zlib's "enough" program: 1332 and 402 for these primary bits).
	litTableSize  = 1 << 11
	distTableSize = 1 << 10
)

var (
	errOversubscribed = errors.New("over-subscribed Huffman code")
	errIncomplete     = errors.New("incomplete Huffman code")
	errNoEnd          = errors.New("no end-of-block code")
)

// Length and distance bases and extra bits (RFC 1951, 3.2.5).
var (
	lengthBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
		35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
		3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
		257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
		7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// symEntry returns the entry (without its length) for symbol s of a
// literal/length table (lit true) or a distance table.
func symEntry(s int, lit bool) uint32 {
	switch {
	case !lit && s < 30:
		return kDist | uint32(distExtra[s])<<8 | uint32(distBase[s])<<16
	case !lit:
		return kBad
	case s < 256:
		return kLiteral | uint32(s)<<16
	case s == 256:
		return kEnd
	case s < 286:
		return kLength | uint32(lengthExtra[s-257])<<8 | uint32(lengthBase[s-257])<<16
	}
	return kBad
}

// buildTable fills t (primary bits, then subtables) for the code lengths
// lens. lit says whether this is a literal/length table. As zlib, it
// accepts an incomplete code only when it has a single code of length 1
// (one distance code), and a distance code with no code at all.
func buildTable(t []uint32, lens []uint8, primary uint, lit bool) error {
	var count [maxCode + 1]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	maxLen := 0
	left := 1
	for l := 1; l <= maxCode; l++ {
		left <<= 1
		left -= count[l]
		if left < 0 {
			return errOversubscribed
		}
		if count[l] > 0 {
			maxLen = l
		}
	}
	size := 1 << primary
	bad := kBad | uint32(primary)
	for i := range t[:size] {
		t[i] = bad
	}
	if maxLen == 0 {
		if lit {
			return errNoEnd
		}
		return nil // no distance code: every match is an error
	}
	if left > 0 && maxLen != 1 {
		return errIncomplete
	}
	if lit && lens[256] == 0 {
		return errNoEnd
	}
	// first canonical code of each length
	var next [maxCode + 2]int
	code := 0
	for l := 1; l <= maxCode; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	// the longest code behind each primary prefix sizes its subtable
	var subLen [1 << litBits]uint8
	var codes [maxSymbols]uint16 // reversed codes
	for s, l := range lens {
		if l == 0 {
			continue
		}
		r := reverse(next[l], int(l))
		next[l]++
		codes[s] = uint16(r)
		if uint(l) > primary {
			p := r & (size - 1)
			subLen[p] = max(subLen[p], l-uint8(primary))
		}
	}
	end := size
	for p := 0; p < size; p++ {
		if subLen[p] == 0 {
			continue
		}
		n := 1 << subLen[p]
		if end+n > len(t) {
			return errOversubscribed // cannot happen for a valid code
		}
		t[p] = kSub | uint32(subLen[p])<<8 | uint32(end)<<16 | uint32(primary)
		for i := range t[end : end+n] {
			t[end+i] = kBad | uint32(subLen[p])
		}
		end += n
	}
	for s, l := range lens {
		if l == 0 {
			continue
		}
		r := int(codes[s])
		e := symEntry(s, lit)
		if uint(l) <= primary {
			for i := r; i < size; i += 1 << l {
				t[i] = e | uint32(l)
			}
			continue
		}
		sub := t[r&(size-1)]
		sbits := uint(sub>>8) & 31
		off := int(sub >> 16)
		rest := uint(l) - primary
		for i := r >> primary; i < 1<<sbits; i += 1 << rest {
			t[off+i] = e | uint32(rest)
		}
	}
	return nil
}

// reverse returns the n low bits of c in reverse order.
func reverse(c, n int) int {
	r := 0
	for range n {
		r = r<<1 | c&1
		c >>= 1
	}
	return r
}

// fixedLit and fixedDist are the tables of the fixed Huffman codes.
var fixedLit, fixedDist = func() ([litTableSize]uint32, [distTableSize]uint32) {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	var lt [litTableSize]uint32
	var dt [distTableSize]uint32
	if err := buildTable(lt[:], lens[:], litBits, true); err != nil {
		panic(err)
	}
	// 32 five-bit codes; 30 and 31 exist but are invalid
	var dl [32]uint8
	for i := range dl {
		dl[i] = 5
	}
	if err := buildTable(dt[:], dl[:], distBits, false); err != nil {
		panic(err)
	}
	return lt, dt
}()

package zstd

import (
	"errors"
	"math/bits"
)

var errFSE = errors.New("zstd: corrupt FSE table")

// fseEntry is one decoding state: the value it emits (a symbol for Huffman
// weights; a baseline and a count of extra bits for sequence codes) and how
// to reach the next state.
type fseEntry struct {
	base    uint32 // symbol, or baseline value of the decoded code
	next    uint16 // Baseline of the next state
	nbBits  uint8  // bits read to pick the next state
	addBits uint8  // extra bits of the value (sequences)
}

// fseTable is a decoding table of 1<<log entries.
type fseTable struct {
	log   uint8
	valid bool // false: unknown (defined by a block that was lost)
	t     []fseEntry
}

const maxFSESymbols = 256

// readNCount reads an FSE table description from the start of b into norm
// (at most maxSym+1 symbols, accuracy log at most maxLog). It returns the
// number of symbols, the accuracy log and the bytes consumed.
func readNCount(b []byte, norm *[maxFSESymbols]int16, maxSym int, maxLog uint8) (nsym int, log uint8, n int, err error) {
	if len(b) < 1 {
		return 0, 0, 0, errFSE
	}
	f := fwdBits{in: b}
	log = uint8(f.get(4)) + 5
	f.pos = 4
	if log > maxLog {
		return 0, 0, 0, errFSE
	}
	limit := uint(len(b)) * 8
	remaining := int32(1)<<log + 1
	threshold := int32(1) << log
	nbBits := uint(log) + 1
	sym := 0
	for remaining > 1 && sym <= maxSym {
		if f.pos >= limit {
			return 0, 0, 0, errFSE
		}
		max := 2*threshold - 1 - remaining
		v := int32(f.get(nbBits))
		var count int32
		if v&(threshold-1) < max {
			count = v & (threshold - 1)
			f.pos += nbBits - 1
		} else {
			count = v & (2*threshold - 1)
			if count >= threshold {
				count -= max
			}
			f.pos += nbBits
		}
		count-- // 0 means "less than 1" (-1), 1 means probability 0
		if count < 0 {
			remaining += count
		} else {
			remaining -= count
		}
		if remaining < 1 {
			return 0, 0, 0, errFSE
		}
		norm[sym] = int16(count)
		sym++
		if count == 0 {
			// A zero probability is followed by 2-bit repeat flags.
			for f.pos < limit {
				rep := int(f.get(2))
				f.pos += 2
				if sym+rep > maxSym+1 {
					return 0, 0, 0, errFSE
				}
				for i := 0; i < rep; i++ {
					norm[sym] = 0
					sym++
				}
				if rep != 3 {
					break
				}
			}
		}
		for remaining < threshold {
			nbBits--
			threshold >>= 1
		}
	}
	if remaining != 1 || f.pos > limit {
		return 0, 0, 0, errFSE
	}
	return sym, log, int(f.pos+7) >> 3, nil
}

// build fills t from a normalized distribution. baseOf and bitsOf map a
// symbol to its value baseline and extra bits (nil for Huffman weights,
// where the value is the symbol itself).
func (t *fseTable) build(norm []int16, log uint8, baseOf []uint32, bitsOf []uint8) error {
	size := 1 << log
	if cap(t.t) < size {
		t.t = make([]fseEntry, size, 512)
	}
	t.t = t.t[:size]
	t.log = log
	t.valid = false
	var next [maxFSESymbols]uint16
	high := size - 1
	for s, c := range norm {
		if c == -1 {
			if high < 0 {
				return errFSE
			}
			t.t[high].base = uint32(s)
			high--
			next[s] = 1
		} else if c >= 0 {
			next[s] = uint16(c)
		}
	}
	step := size>>1 + size>>3 + 3
	mask := size - 1
	pos := 0
	for s, c := range norm {
		for i := 0; i < int(c); i++ {
			t.t[pos].base = uint32(s)
			pos = (pos + step) & mask
			for pos > high {
				pos = (pos + step) & mask
			}
		}
	}
	if pos != 0 {
		return errFSE
	}
	for i := range t.t {
		s := t.t[i].base
		ns := next[s]
		next[s]++
		if ns == 0 {
			return errFSE
		}
		nb := uint8(int(log) - (bits.Len16(ns) - 1))
		t.t[i].nbBits = nb
		t.t[i].next = uint16(int(ns)<<nb - size)
		if baseOf != nil {
			if int(s) >= len(baseOf) {
				return errFSE
			}
			t.t[i].base = baseOf[s]
			t.t[i].addBits = bitsOf[s]
		}
	}
	t.valid = true
	return nil
}

// buildRLE makes a one-state table that always emits symbol s.
func (t *fseTable) buildRLE(s uint8, baseOf []uint32, bitsOf []uint8) error {
	if int(s) >= len(baseOf) {
		return errFSE
	}
	if cap(t.t) < 1 {
		t.t = make([]fseEntry, 1, 512)
	}
	t.t = t.t[:1]
	t.log = 0
	t.t[0] = fseEntry{base: baseOf[s], addBits: bitsOf[s]}
	t.valid = true
	return nil
}

// Sequence code tables (RFC 8878 section 3.1.1.3.2.1.1).
var (
	llBase = [36]uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096,
		8192, 16384, 32768, 65536}
	llBits = [36]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	mlBase = [53]uint32{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
		19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
		35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
		4099, 8195, 16387, 32771, 65539}
	mlBits = [53]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	ofBase [32]uint32
	ofBits [32]uint8
)

// Predefined distributions (RFC 8878 section 3.1.1.3.2.2).
var (
	llDefault = []int16{4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
		2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1}
	mlDefault = []int16{1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1}
	ofDefault = []int16{1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1}

	llPredef, mlPredef, ofPredef fseTable
)

func init() {
	for i := range ofBase {
		ofBase[i] = 1 << i
		ofBits[i] = uint8(i)
	}
	if llPredef.build(llDefault, 6, llBase[:], llBits[:]) != nil ||
		mlPredef.build(mlDefault, 6, mlBase[:], mlBits[:]) != nil ||
		ofPredef.build(ofDefault, 5, ofBase[:], ofBits[:]) != nil {
		panic("zstd: bad predefined tables")
	}
}

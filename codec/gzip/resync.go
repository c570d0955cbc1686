package gzip

import "encoding/binary"

const (
	// trialBlocks: a place to resume must decode this many blocks (its
	// own and those after it) without error, or end the member.
	trialBlocks = 3
	// trialOut, trialIn: or decode this much output, or this much input,
	// without error.
	trialOut = 1 << 20
	trialIn  = 1 << 20
	// maxPadding is the longest run of zeros taken as padding after a
	// member.
	maxPadding = 1 << 20
)

// candKind says what a place to resume is.
type candKind uint8

const (
	candBlock  candKind = iota // a block header
	candStored                 // the data of a stored block (its header lies before)
	candMember                 // a member header
)

func (k candKind) String() string {
	switch k {
	case candStored:
		return "a stored block"
	case candMember:
		return "a member header"
	}
	return "a block header"
}

// candidate is a place to resume: its bit offset (of the header; of the
// data for a stored block) and, for a stored block, its length.
type candidate struct {
	kind   candKind
	bit    int64
	stored int
}

// search returns the first place at or after bit offset from where decoding
// can resume: a member header, the data of a stored block (its length
// field and complement in place: the empty stored blocks that gzip and
// pigz --rsyncable write are such places), or a dynamic block header, that
// passes trial decoding. Fixed-code blocks have no header to check and are
// not looked for.
func (z *Reader) search(from int64) (candidate, bool) {
	if from < z.in.off*8 {
		from = z.in.off * 8 // what was kept of the input
	}
	for p, j0 := from/8, uint(from%8); ; p, j0 = p+1, 0 {
		z.in.keep = p
		b := z.in.at(p, 11)
		if len(b) < 4 {
			return candidate{}, false
		}
		if j0 == 0 {
			if b[0] == id1 && b[1] == id2 && b[2] == cmDeflate && z.tryMember(p) {
				return candidate{kind: candMember, bit: p * 8}, true
			}
			if n := binary.LittleEndian.Uint16(b); n == ^binary.LittleEndian.Uint16(b[2:]) {
				c := candidate{kind: candStored, bit: (p + 4) * 8, stored: int(n)}
				if z.try(c) {
					return c, true
				}
				b = z.in.at(p, 11)
			}
		}
		if len(b) < 11 {
			continue
		}
		for j := j0; j < 8; j++ {
			if dynamicStart(b, j) {
				c := candidate{kind: candBlock, bit: p*8 + int64(j)}
				if z.try(c) {
					return c, true
				}
				b = z.in.at(p, 11)
			}
		}
	}
}

// dynamicStart reports whether a dynamic block header can start at bit j
// of b (11 bytes): the block type, the code counts, and a complete code
// length code.
func dynamicStart(b []byte, j uint) bool {
	v := binary.LittleEndian.Uint64(b) >> j
	if v>>1&3 != 2 || v>>3&31 > 29 || v>>8&31 > 29 {
		return false
	}
	n := int(v>>13&15) + 4
	// the code length code lengths, from bit 17 on
	pv := binary.LittleEndian.Uint64(b[2:])>>(j+1) | uint64(b[10])<<(63-j)
	var count [8]int
	for i := range n {
		count[pv>>(3*i)&7]++
	}
	left := 1
	for l := 1; l <= 7; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return false
		}
	}
	return left == 0
}

// tryMember reports whether a member header at input offset p starts a
// member whose data passes trial decoding.
func (z *Reader) tryMember(p int64) bool {
	b := z.in.at(p, maxHeaderLen)
	if !plausibleStart(b) {
		return false
	}
	h, err := parseHeader(b)
	if err != nil {
		return false
	}
	return z.try(candidate{kind: candMember, bit: (p + int64(h.len)) * 8})
}

// try decodes from c, a block header, the data of a stored block, or
// (kind candMember) the first block of a member, with the window before
// it unknown (empty for a member): it must decode
// trialBlocks blocks or trialOut bytes without error, or end the member
// where a trailer is followed by the end of the input, padding or another
// member.
func (z *Reader) try(c candidate) bool {
	if z.th == nil {
		z.th = newHistory(1 << 20)
		z.trial.in, z.trial.h = &z.in, z.th
	}
	z.th.reset(0)
	t := &z.trial
	t.low = noLimit
	if c.kind == candMember {
		t.low = 0
	}
	if c.kind == candStored {
		t.startStored(c.bit/8, c.stored)
	} else if t.startAt(c.bit) != nil {
		return false
	}
	blocks := 0
	for {
		z.th.r = z.th.w
		z.th.reserve(chunk + maxMatch)
		ev, err := t.step(z.th.pos() + chunk)
		if err != nil {
			// a run cut by the end of the input proves little
			return isTruncation(err) && blocks >= trialBlocks-1
		}
		switch ev {
		case evBlock:
			if blocks++; blocks >= trialBlocks {
				return true
			}
		case evEnd:
			return z.membersEnd(t.ip)
		}
		if z.th.pos() >= trialOut || t.ip-c.bit/8 >= trialIn {
			return true
		}
	}
}

// membersEnd reports whether a member's trailer at input offset p is
// followed by the end of the input or another member, after zero padding
// if any.
func (z *Reader) membersEnd(p int64) bool {
	p += trailerLen
	if len(z.in.at(p-1, 1)) == 0 {
		return false // the trailer is cut short
	}
	for limit := p + maxPadding; p < limit; {
		b := z.in.at(p, 2)
		switch {
		case len(b) == 0:
			return true
		case b[0] != 0:
			return len(b) >= 2 && b[0] == id1 && b[1] == id2
		}
		for len(b) > 0 && b[0] == 0 && p < limit {
			b, p = b[1:], p+1
		}
	}
	return false
}

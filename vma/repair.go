package vma

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// repairBudget caps the candidate headers RepairExtentHeader checksums in
// each of its two ways; maxSearchSlots is how many suspect slots it
// searches combination by combination.
const (
	repairBudget   = 1 << 15
	maxSearchSlots = 4
)

// RepairExtentHeader tries to rebuild an extent header whose checksum does
// not match, as a decompressor leaves it when some of its bytes were copied
// from data that was lost: the magic and the uuid read right, but entries
// hold zeros where a device id, a mask or part of a cluster number should
// be. suspect, when not nil, says which of the header's bytes may be wrong
// (the decompressor's damage); the others are taken as read. With nil any
// byte may be.
//
// Candidates come from what the format fixes: the magic, zero reserved
// bytes, the archive's uuid, entries filling a prefix of the slots, device
// ids the archive has (devs), full or empty masks, clusters in runs (one
// more than the slot before), the block count the masks add up to. A
// candidate is accepted only when its MD5 equals the checksum stored in the
// header, so a header accepted here is the one the writer wrote; where no
// candidate matches, there is no repair. (A damaged checksum matches no
// candidate; a suspect one may still be right: spans are coarser than
// bytes.) At most 2 × repairBudget candidates are tried.
func RepairExtentHeader(b []byte, uuid [16]byte, devs []uint8, suspect []bool) (*ExtentHeader, bool) {
	if len(b) < ExtentHeaderSize || string(b[:4]) != extentMagic ||
		!bytes.Equal(b[extOffUUID:extOffUUID+16], uuid[:]) || len(devs) == 0 {
		return nil, false
	}
	if suspect != nil && len(suspect) < ExtentHeaderSize {
		suspect = nil
	}
	rp := repairer{uuid: uuid, devs: devs, budget: repairBudget}
	copy(rp.want[:], b[extOffMD5:])
	for i := range rp.read {
		rp.read[i] = BlockInfo(binary.BigEndian.Uint64(b[extOffInfo+8*i:]))
		if rp.read[i] != 0 {
			rp.used = i + 1
		}
		for k := range 8 {
			rp.sus[i][k] = suspect == nil || suspect[extOffInfo+8*i+k]
		}
	}
	rp.count = int(binary.BigEndian.Uint16(b[extOffBlockCount:]))
	rp.countSuspect = suspect == nil || suspect[extOffBlockCount] || suspect[extOffBlockCount+1]
	if eh := rp.policies(suspect != nil); eh != nil {
		return eh, true
	}
	nsus := 0
	for i := range rp.sus {
		if rp.sus[i] != [8]bool{} {
			nsus++
		}
	}
	if suspect != nil && nsus <= maxSearchSlots {
		rp.budget = repairBudget
		if eh := rp.search(); eh != nil {
			return eh, true
		}
	}
	return nil, false
}

type repairer struct {
	uuid         [16]byte
	devs         []uint8
	want         [16]byte
	read         [EntriesPerExtent]BlockInfo
	sus          [EntriesPerExtent][8]bool // per slot, which bytes may be wrong
	used         int                       // slots up to the last one with a byte set
	count        int
	countSuspect bool
	budget       int
	cand         [ExtentHeaderSize]byte
	chosen       [EntriesPerExtent]BlockInfo
}

func (rp *repairer) known(d uint8) bool { return bytes.IndexByte(rp.devs, d) >= 0 }

// check builds the header from the first n chosen entries and returns it
// if its MD5 is the one stored.
func (rp *repairer) check(n int) *ExtentHeader {
	if rp.budget <= 0 {
		return nil
	}
	b := rp.cand[:]
	clear(b)
	copy(b, extentMagic)
	copy(b[extOffUUID:], rp.uuid[:])
	blocks := 0
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(b[extOffInfo+8*i:], uint64(rp.chosen[i]))
		blocks += rp.chosen[i].Blocks()
	}
	counts := []int{rp.count, blocks}
	if !rp.countSuspect {
		counts = counts[:1]
	}
	for _, c := range counts {
		rp.budget--
		binary.BigEndian.PutUint16(b[extOffBlockCount:], uint16(c))
		if extentMD5(b) != rp.want {
			continue
		}
		copy(b[extOffMD5:], rp.want[:])
		eh, err := parseExtentBody(b)
		if err != nil {
			return nil
		}
		copy(eh.UUID[:], rp.uuid[:])
		return eh
	}
	return nil
}

// agrees reports whether v holds the bytes read at the positions of slot
// i that are not suspect.
func (rp *repairer) agrees(i int, v BlockInfo) bool {
	for k := range 8 {
		sh := uint(56 - 8*k)
		if !rp.sus[i][k] && byte(v>>sh) != byte(rp.read[i]>>sh) {
			return false
		}
	}
	return true
}

// slotCandidates lists the values slot i may have held, given the value
// chosen for the slot before it.
func (rp *repairer) slotCandidates(i int) []BlockInfo {
	r := rp.read[i]
	if rp.sus[i] == [8]bool{} {
		return []BlockInfo{r}
	}
	var prev, next BlockInfo
	if i > 0 {
		prev = rp.chosen[i-1]
	}
	if i+1 < EntriesPerExtent {
		next = rp.read[i+1]
	}
	masks := []uint16{r.Mask(), 0xFFFF, 0}
	devs := []uint8{r.Dev(), prev.Dev(), next.Dev()}
	devs = append(devs, rp.devs...)
	clusters := []uint32{r.Cluster(), prev.Cluster() + 1, next.Cluster() - 1}
	out := []BlockInfo{0}
	for _, m := range masks {
		for _, d := range devs {
			if !rp.known(d) {
				continue
			}
			for _, c := range clusters {
				v := MakeBlockInfo(m, d, c)
				if !slices.Contains(out, v) && rp.agrees(i, v) {
					out = append(out, v)
				}
			}
		}
	}
	if !rp.agrees(i, 0) {
		out = out[1:]
	}
	return out
}

// search tries, slot by slot, every combination of candidates for the
// suspect slots (within the budget).
func (rp *repairer) search() *ExtentHeader {
	var dfs func(i int) *ExtentHeader
	dfs = func(i int) *ExtentHeader {
		if rp.budget <= 0 {
			return nil
		}
		if i == EntriesPerExtent {
			n := 0
			for j, e := range rp.chosen {
				if e != 0 {
					n = j + 1
				}
			}
			return rp.check(n)
		}
		for _, v := range rp.slotCandidates(i) {
			if v != 0 && i > 0 && rp.chosen[i-1] == 0 {
				continue // filled slots are a prefix
			}
			rp.chosen[i] = v
			if eh := dfs(i + 1); eh != nil {
				return eh
			}
		}
		return nil
	}
	return dfs(0)
}

// policies tries the same rule on every suspect slot at once: full masks
// or as read, device ids as read or inherited from the slot before or one
// device for all, cluster numbers as read or bridging a run. It serves
// where too many slots are suspect for search.
func (rp *repairer) policies(onlySuspect bool) *ExtentHeader {
	counts := []int{rp.used}
	if n := rp.count / BlocksPerCluster; rp.count%BlocksPerCluster == 0 && n != rp.used && n <= EntriesPerExtent {
		counts = append(counts, n)
	}
	devChoices := []uint8{0} // 0: as read if known, else inherited
	devChoices = append(devChoices, rp.devs...)
	for _, n := range counts {
		for _, dc := range devChoices {
			for _, fullMasks := range []bool{false, true} {
				for _, bridge := range []bool{false, true} {
					rp.applyPolicy(n, dc, fullMasks, bridge, onlySuspect)
					if eh := rp.check(n); eh != nil {
						return eh
					}
				}
			}
		}
	}
	return nil
}

func (rp *repairer) applyPolicy(n int, dev uint8, fullMasks, bridge, onlySuspect bool) {
	clear(rp.chosen[:])
	first := uint8(0)
	for _, e := range rp.read[:n] {
		if rp.known(e.Dev()) {
			first = e.Dev()
			break
		}
	}
	for i := 0; i < n; i++ {
		r := rp.read[i]
		if onlySuspect && rp.sus[i] == [8]bool{} {
			rp.chosen[i] = r
			continue
		}
		m, d, c := r.Mask(), r.Dev(), r.Cluster()
		if fullMasks {
			m = 0xFFFF
		}
		switch {
		case dev != 0:
			d = dev
		case rp.known(d):
		case i > 0:
			d = rp.chosen[i-1].Dev()
		default:
			d = first
		}
		// A cluster number between two of a run continues the run.
		if bridge && i > 0 && i+1 < n {
			if p := rp.chosen[i-1].Cluster(); c != p+1 && rp.read[i+1].Cluster() == p+2 {
				c = p + 1
			}
		}
		rp.chosen[i] = MakeBlockInfo(m, d, c)
	}
}

package zstd

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
)

// The section oracle: a finer bound than oracleConfig's, for what decoding
// the intact parts of a touched block (issue 14, partial blocks) could at
// most give back.
//
// Like the whole-block oracle it decodes the clean stream and knows every
// piece of decoder state (block boundaries and headers, entropy tables,
// repeat offsets); it does not know the bytes the garbage replaced. Unlike
// it, a touched block loses only what the replaced bytes encode, at the
// granularity of the block's sections:
//
//   - a raw block: exactly the bytes replaced; an RLE block: all of it if
//     its byte is replaced; a block's 3-byte header: nothing (known).
//   - a compressed block whose sequences section (its header, FSE table
//     descriptions or bitstream) is touched: the whole block, as the
//     whole-block oracle. Where the literals go depends on every literal
//     length, so known literals are not placed.
//   - a compressed block whose sequences section is intact and whose
//     literals section is touched: the literals the replaced bytes encode
//     (raw literals: exactly those; Huffman-coded with four streams: the
//     quarter of the literals a touched stream decodes; the literals
//     header, tree description or jump table touched, or one stream: all
//     the block's literals). Match bytes are kept, except where they copy
//     lost bytes.
//   - every copy of a lost byte is lost (as the decoder's taints).
//
// What it leaves on the table (so it is not the last word): sequences
// read before the damage in a touched bitstream (the bitstream is read from
// its end: the first sequences of a block whose bitstream is hit near its
// start decode), literals decoded before the damage inside a touched
// Huffman stream, and known literals whose place is unknown.
//
// With edges set it is the edge oracle, a loose upper bound on what any
// partial decoding of touched blocks could give: a compressed block the
// garbage covers wholly is lost; one it covers in part loses only the raw
// literal bytes replaced (and their copies): its sequences and its
// Huffman-coded literals are assumed decoded, though some of their bits
// are gone; raw and RLE blocks as above.
//
// With locate set it is the locatable oracle: the section oracle, except
// that a raw block or a raw literals section the garbage touches is lost
// whole. Nothing in random garbage over incompressible bytes says where
// it starts or ends inside a run of raw bytes (both look random), so no
// decoder without a record of the original (a sidecar) can keep the
// untouched part of such a run; the section oracle does. What the
// locatable oracle keeps beyond the whole-block oracle is what a partial-
// block decoder could give back at most: the untouched Huffman streams of
// a block whose sequences are intact, and the matches placed by them.
func sectionOracleConfig(lo, hi int64, seen []byte, edges bool, locate ...bool) config {
	loc := len(locate) > 0 && locate[0]
	return config{salvageOnly: true, decoded: func(z *Reader, b *block) {
		cIn := b.rec.In + 3
		cEnd := cIn + int64(b.bh.clen)
		if cEnd <= lo || cIn >= hi {
			return // only the header (or nothing) touched
		}
		h := &z.h
		n := h.w - b.w0
		lost := make([]bool, n)
		all := func() {
			for i := range lost {
				lost[i] = true
			}
		}
		switch b.bh.typ {
		case blockRaw:
			if loc {
				all()
				break
			}
			for i := max(lo, cIn); i < min(hi, cEnd); i++ {
				lost[i-cIn] = true
			}
		case blockRLE:
			all()
		case blockCompressed:
			if edges && lo <= cIn && cEnd <= hi {
				all()
				break
			}
			lh, err := parseLitHeader(b.content)
			if err != nil {
				all()
				break
			}
			litLen := lh.csize
			switch lh.typ {
			case litRaw:
				litLen = lh.regen
			case litRLE:
				litLen = 1
			}
			litEnd := cIn + int64(lh.hsize+litLen)
			if hi > litEnd && !edges { // the sequences section is touched
				all()
				break
			}
			// Which literals the replaced bytes encode.
			litLost := make([]bool, lh.regen)
			for i := range litLost {
				litLost[i] = true
			}
			data := cIn + int64(lh.hsize) // the literals' bytes
			switch {
			case lh.typ == litRaw && loc:
				// all lost: where the garbage starts in them is not known
			case lh.typ == litRaw:
				for i := range litLost {
					p := data + int64(i)
					litLost[i] = p >= lo && p < hi
				}
			case edges:
				clear(litLost) // Huffman-coded or RLE: assumed decoded
			case lh.typ == litRLE || lh.streams != 4:
				// all lost
			default:
				tree := int64(0)
				if lh.typ == litCompressed {
					hb := int64(b.content[lh.hsize])
					if hb < 128 {
						tree = 1 + hb
					} else {
						tree = 1 + (hb-127+1)/2
					}
				}
				jt := data + tree
				if lo < jt+6 {
					break // header, tree or jump table: all lost
				}
				c := b.content[jt-cIn:]
				sz := []int64{int64(c[0]) | int64(c[1])<<8, int64(c[2]) | int64(c[3])<<8, int64(c[4]) | int64(c[5])<<8}
				sz = append(sz, int64(lh.csize)-tree-6-sz[0]-sz[1]-sz[2])
				seg := (lh.regen + 3) / 4
				s0 := jt + 6
				for k := range 4 {
					touched := lo < s0+sz[k] && hi > s0
					a, e := k*seg, min((k+1)*seg, lh.regen)
					if k == 3 {
						e = lh.regen
					}
					for i := a; i < e; i++ {
						litLost[i] = touched
					}
					s0 += sz[k]
				}
			}
			// Walk the block's sequences: literals lost where litLost,
			// matches where they copy lost bytes (in the block, or before
			// it as the history's taints say).
			w, lp := 0, 0
			copyLost := func(src, dst int) bool {
				if src >= 0 {
					return lost[src]
				}
				return !h.clean(b.start+int64(src), 1)
			}
			for _, s := range z.d.seqs {
				for range int(s.ll) {
					lost[w] = litLost[lp]
					w, lp = w+1, lp+1
				}
				for range int(s.ml) {
					lost[w] = copyLost(w-int(s.off), w)
					w++
				}
			}
			for ; lp < len(litLost) && w < n; w, lp = w+1, lp+1 {
				lost[w] = litLost[lp]
			}
		}
		// The block's taints anew: those the decoder gave it from
		// earlier taints are the copies above (raw and RLE blocks have
		// none), then the lost bytes cleared.
		if debugSect {
			k := 0
			for _, l := range lost {
				if l {
					k++
				}
			}
			fmt.Printf("block in %d typ %d n %d lost %d\n", b.rec.In, b.bh.typ, n, k)
		}
		h.truncateTaints(b.start)
		for i := 0; i < n; {
			if !lost[i] {
				i++
				continue
			}
			j := i
			for j < n && lost[j] {
				j++
			}
			clear(h.buf[b.w0+i : b.w0+j])
			if b.bh.typ == blockRaw {
				copy(h.buf[b.w0+i:b.w0+j], seen[cIn+int64(i):])
			}
			h.addTaint(b.start+int64(i), b.start+int64(j), lvLost)
			i = j
		}
	}}
}

// TestOracleSections: on the pinned archive and with
// VZSALVAGE_ORACLE_ARCHIVE (at VZSALVAGE_ORACLE_AT, as TestOracleBound),
// 64 KiB of garbage read by salvage, by the whole-block oracle, the
// section oracle and the edge oracle; each oracle never loses more than
// the one before. With -v it prints the three counts.
func TestOracleSections(t *testing.T) {
	clean := archive(t)
	at := []float64{20, 35, 50, 65, 80}
	if path := os.Getenv("VZSALVAGE_ORACLE_ARCHIVE"); path != "" {
		var err error
		if clean, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		at = at[:0]
		for _, s := range strings.Split(os.Getenv("VZSALVAGE_ORACLE_AT"), ",") {
			pct, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				t.Fatalf("VZSALVAGE_ORACLE_AT: %v", err)
			}
			at = append(at, pct)
		}
	} else if testing.Short() {
		t.Skip("reads of a 9.6 MiB archive")
	}
	for i, pct := range at {
		off := int64(float64(len(clean)) * pct / 100)
		n := int64(64 << 10)
		z, ours, block := oracleCompare(t, clean, off, n, uint64(i), false)
		bad := garbage(clean, off, n, uint64(i))
		sect := readVMA(t, newReader(bytes.NewReader(clean), codec.Options{}, sectionOracleConfig(off, off+n, bad, false)), false)
		edge := readVMA(t, newReader(bytes.NewReader(clean), codec.Options{}, sectionOracleConfig(off, off+n, bad, true)), false)
		loc := readVMA(t, newReader(bytes.NewReader(clean), codec.Options{}, sectionOracleConfig(off, off+n, bad, false, true)), false)
		// The section oracle's gain over the whole-block oracle, split: the
		// locatable oracle loses a superset of the section oracle's bytes and
		// a subset of the whole-block oracle's, so the clusters between the
		// whole-block and locatable counts come from compressed sections
		// (Huffman streams, matches), those between the locatable and
		// section counts from raw or RLE bytes no decoder can locate.
		line := fmt.Sprintf("garbage at %g%%: ours %v; whole-block oracle %v; locatable oracle %v; section oracle %v; edge oracle %v; section gain %d clusters (compressed %d, raw/RLE %d); checksum %s",
			pct, ours.count, block.count, loc.count, sect.count, edge.count,
			block.count.damaged-sect.count.damaged, block.count.damaged-loc.count.damaged, loc.count.damaged-sect.count.damaged, z.Checksum())
		t.Log(line)
		if os.Getenv("VZSALVAGE_ORACLE_ARCHIVE") != "" {
			fmt.Println(line)
		}
		if edge.count.damaged > sect.count.damaged {
			t.Errorf("garbage at %g%%: the edge oracle loses %d clusters, more than the section oracle's %d", pct, edge.count.damaged, sect.count.damaged)
		}
		if sect.count.damaged > loc.count.damaged || loc.count.damaged > block.count.damaged {
			t.Errorf("garbage at %g%%: the locatable oracle loses %d clusters, not between the section oracle's %d and the whole-block oracle's %d", pct, loc.count.damaged, sect.count.damaged, block.count.damaged)
		}
		if sect.count.damaged > block.count.damaged {
			t.Errorf("garbage at %g%%: the section oracle loses %d clusters, more than the whole-block oracle's %d", pct, sect.count.damaged, block.count.damaged)
		}
	}
}

var debugSect = false

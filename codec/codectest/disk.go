package codectest

import "math/rand/v2"

// Disk returns n bytes of a guest disk's content generated from seed: runs
// of text, machine-code-like binary, incompressible data and free space
// (zeros), in 4 KiB-aligned extents of 4 KiB to 2 MiB. The same seed and
// size give the same bytes on any machine, so tests need no file of this
// one. (scripts/mkdisk makes such disks for the measurement scripts.)
func Disk(seed uint64, n int) []byte {
	b := make([]byte, 0, n)
	g := newDiskGen(seed)
	for len(b) < n {
		b = g.extent(b, n-len(b))
	}
	return b
}

// diskGen generates a disk's extents.
type diskGen struct {
	rng   *rand.Rand
	words [][]byte // a vocabulary, most frequent first
	ops   [][]byte // instruction-like byte patterns, most frequent first
	lines [][]byte // lines written lately, repeated as logs and configs do
	addr  uint32
	clock uint64
}

func newDiskGen(seed uint64) *diskGen {
	g := &diskGen{rng: rand.New(rand.NewPCG(seed, 0x5eed)), addr: 0x401000, clock: 1700000000}
	syll := []string{"a", "e", "i", "o", "u", "ka", "ne", "ti", "so", "ru", "mon", "ter", "al", "in", "con",
		"sta", "ble", "tion", "er", "re", "de", "lo", "pa", "ch", "th", "str", "ing", "ed", "ly", "ux", "sys", "lib"}
	for range 4096 {
		var w []byte
		for k := 1 + g.rng.IntN(4); k > 0; k-- {
			w = append(w, syll[g.rng.IntN(len(syll))]...)
		}
		g.words = append(g.words, w)
	}
	for range 512 {
		op := make([]byte, 1+g.rng.IntN(7))
		for i := range op {
			op[i] = byte(g.rng.Uint32())
		}
		g.ops = append(g.ops, op)
	}
	return g
}

// zipf returns an index below n, small ones far more often.
func (g *diskGen) zipf(n int) int {
	u := g.rng.Float64()
	return int(float64(n) * u * u * u)
}

// extent appends one extent of at most max bytes to b.
func (g *diskGen) extent(b []byte, max int) []byte {
	// 4 KiB to 2 MiB, log-uniform, whole 4 KiB blocks
	n := 4096 << g.rng.IntN(10)
	n = min((n+g.rng.IntN(n))&^4095, max)
	if n <= 0 {
		n = max
	}
	end := len(b) + n
	switch k := g.rng.IntN(100); {
	case k < 30:
		b = append(b, make([]byte, n)...)
	case k < 65:
		for len(b) < end {
			b = g.line(b)
		}
	case k < 90:
		for len(b) < end {
			b = g.code(b)
		}
	default:
		for len(b) < end {
			v := g.rng.Uint64()
			b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
		}
	}
	return b[:end]
}

// line appends a line of text: prose, a setting or a log entry, or one
// written lately again.
func (g *diskGen) line(b []byte) []byte {
	start := len(b)
	switch k := g.rng.IntN(10); {
	case k < 2 && len(g.lines) > 0:
		return append(b, g.lines[g.rng.IntN(len(g.lines))]...)
	case k < 4:
		b = append(b, g.words[g.zipf(256)]...)
		b = append(b, " = "...)
		b = appendUint(b, uint64(g.zipf(100000)))
	case k < 6:
		g.clock += uint64(g.rng.IntN(5))
		b = appendUint(b, g.clock)
		b = append(b, " host "...)
		b = append(b, g.words[g.zipf(64)]...)
		b = append(b, '[', "0123456789"[g.rng.IntN(10)], ']', ':', ' ')
		fallthrough
	default:
		for k := 3 + g.rng.IntN(12); k > 0; k-- {
			b = append(b, g.words[g.zipf(len(g.words))]...)
			b = append(b, ' ')
		}
	}
	b = append(b, '\n')
	switch {
	case len(g.lines) < 256:
		g.lines = append(g.lines, append([]byte(nil), b[start:]...))
	case g.rng.IntN(8) == 0:
		i := g.rng.IntN(len(g.lines))
		g.lines[i] = append(g.lines[i][:0], b[start:]...)
	}
	return b
}

// code appends a few instruction-like patterns and an address.
func (g *diskGen) code(b []byte) []byte {
	for k := 1 + g.rng.IntN(6); k > 0; k-- {
		b = append(b, g.ops[g.zipf(len(g.ops))]...)
	}
	g.addr += uint32(g.rng.IntN(64))
	return append(b, byte(g.addr), byte(g.addr>>8), byte(g.addr>>16), 0)
}

func appendUint(b []byte, v uint64) []byte {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

// Garbage overwrites b[at:at+n] (as much of it as b holds) with random
// bytes from seed, as a failing disk or a stray write does.
func Garbage(b []byte, at, n int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x6a))
	for i := at; i < min(at+n, len(b)); i++ {
		b[i] = byte(r.Uint32())
	}
}

// RandomDamage damages b once as r says: a garbage run of 1 B to 96 KiB,
// a zeroed 4 KiB page, or a bit flip. It returns where the damage starts.
func RandomDamage(b []byte, r *rand.Rand) int {
	at := r.IntN(len(b))
	switch r.IntN(3) {
	case 0:
		Garbage(b, at, 1+r.IntN(96<<10), r.Uint64())
	case 1:
		at &^= 4095
		clear(b[at:min(at+4096, len(b))])
	default:
		b[at] ^= 1 << r.IntN(8)
	}
	return at
}

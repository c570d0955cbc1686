package testimg

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Deterministic disk-like data.
//
// Tests whose verdict depends on exact bytes need the same bytes on every
// machine, so the data is generated here from a seed by our own generator
// (splitmix64: no library's random stream, which may change between
// versions). It mimics what a VM disk holds, in 4 KiB-aligned files:
// prose and documentation, logs, configuration and source code, ELF-like
// binaries (instruction streams, string and symbol tables), filesystem
// metadata (inode tables, directory blocks), already compressed files
// (high entropy behind a real format's header), random data, runs of
// zeros (free space) and copies of earlier files.

// DiskData returns n bytes of disk-like data generated from seed.
func DiskData(n int, seed uint64) []byte {
	g := newGen(seed)
	out := make([]byte, 0, n+1<<20)
	for len(out) < n {
		out = g.file(out)
		if pad := len(out) % 4096; pad != 0 { // files start on 4 KiB blocks
			out = append(out, make([]byte, 4096-pad)...)
		}
	}
	return out[:n]
}

// prng is splitmix64.
type prng struct{ s uint64 }

func (r *prng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a number in [0, n) (n > 0).
func (r *prng) intn(n int) int { return int(r.next() % uint64(n)) }

// between returns a number in [lo, hi].
func (r *prng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// fill fills b with random bytes.
func (r *prng) fill(b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.next())
	}
	for v := r.next(); i < len(b); i, v = i+1, v>>8 {
		b[i] = byte(v)
	}
}

// gen is the generator's state: its random stream, a vocabulary with
// Zipf-like word frequencies and the files made so far (for copies).
type gen struct {
	r     prng
	words []string
	cum   []float64 // cumulative word probabilities
	files [][2]int  // offset and length of earlier files in out
	clock int64     // a timestamp that moves forward
}

func newGen(seed uint64) *gen {
	g := &gen{r: prng{seed*0x2545f4914f6cdd1d + 1}, clock: 1765767603}
	syll := []string{"ba", "con", "de", "fi", "ge", "ka", "lo", "man", "ne", "or", "pre", "qui", "ra", "sto",
		"ter", "un", "ver", "wa", "xi", "yo", "ze", "al", "en", "ing", "ion", "ment", "st", "th", "er", "ly"}
	seen := map[string]bool{}
	for len(g.words) < 3000 {
		var b strings.Builder
		for k := g.r.between(1, 4); k > 0; k-- {
			b.WriteString(syll[g.r.intn(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			g.words = append(g.words, w)
		}
	}
	// Common English words first, so that text has their frequencies.
	g.words = append([]string{"the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "on", "with",
		"as", "be", "this", "by", "backup", "disk", "file", "data", "server", "volume", "cluster", "config"}, g.words...)
	sum := 0.0
	for i := range g.words {
		sum += 1 / math.Pow(float64(i+1), 1.07)
		g.cum = append(g.cum, sum)
	}
	for i := range g.cum {
		g.cum[i] /= sum
	}
	return g
}

// word returns a word drawn with Zipf-like frequency.
func (g *gen) word() string {
	u := float64(g.r.next()>>11) / (1 << 53)
	lo, hi := 0, len(g.cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if g.cum[m] < u {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return g.words[lo]
}

// fileSize returns a file size: mostly small, sometimes large.
func (g *gen) fileSize() int {
	switch v := g.r.intn(100); {
	case v < 40:
		return g.r.between(64, 4096)
	case v < 80:
		return g.r.between(4096, 48<<10)
	case v < 96:
		return g.r.between(48<<10, 256<<10)
	}
	return g.r.between(256<<10, 1200<<10)
}

// file appends one file (or free space) to out.
func (g *gen) file(out []byte) []byte {
	start := len(out)
	size := g.fileSize()
	kinds := [...]struct {
		below int // drawn from 100, kinds take the numbers below this
		add   func([]byte, int) []byte
	}{{12, g.prose}, {20, g.log}, {26, g.source}, {38, g.binary}, {44, g.metadata}, {66, g.compressed}, {70, g.random}}
	v := g.r.intn(100)
	k := 0
	for k < len(kinds) && v >= kinds[k].below {
		k++
	}
	switch {
	case k < len(kinds):
		out = kinds[k].add(out, size)
	case v < 76:
		// Free space: zeros, 16 KiB to 512 KiB.
		return append(out, make([]byte, g.r.between(4, 128)*4096)...)
	case len(g.files) == 0:
		return g.prose(out, size)
	default:
		// A copy of an earlier file, mostly of a recent one, maybe
		// slightly changed (another version, a backup copy).
		f := g.files[g.r.intn(len(g.files))]
		if n := len(g.files); g.r.intn(10) < 7 {
			f = g.files[n-1-g.r.intn(min(n, 12))]
		}
		out = append(out, out[f[0]:f[0]+f[1]]...)
		if g.r.intn(2) == 0 {
			for k := g.r.between(1, 8); k > 0; k-- {
				p := start + g.r.intn(f[1])
				out[p] ^= byte(1 + g.r.intn(255))
			}
		}
	}
	g.files = append(g.files, [2]int{start, len(out) - start})
	return out
}

// prose appends documentation-like text: paragraphs of sentences wrapped
// at about 72 columns, with headings.
func (g *gen) prose(out []byte, size int) []byte {
	end := len(out) + size
	col := 0
	for len(out) < end {
		if g.r.intn(12) == 0 {
			h := strings.ToUpper(g.word()) + " " + g.word()
			out = append(out, "\n"+h+"\n"+strings.Repeat("=", len(h))+"\n\n"...)
			col = 0
		}
		for s := g.r.between(2, 7); s > 0; s-- {
			n := g.r.between(4, 18)
			for i := 0; i < n; i++ {
				w := g.word()
				if i == 0 {
					w = strings.ToUpper(w[:1]) + w[1:]
				}
				switch {
				case i == n-1 && g.r.intn(10) == 0:
					w += "?"
				case i == n-1:
					w += "."
				case g.r.intn(9) == 0:
					w += ","
				}
				if col+len(w) > 72 {
					out = append(out, '\n')
					col = 0
				} else if col > 0 {
					out = append(out, ' ')
					col++
				}
				out = append(out, w...)
				col += len(w)
			}
		}
		out = append(out, "\n\n"...)
		col = 0
	}
	return out[:end]
}

// log appends syslog-like lines: a few daemons with their own pids,
// repeated messages with changing numbers.
func (g *gen) log(out []byte, size int) []byte {
	end := len(out) + size
	daemons := []string{"sshd", "systemd", "kernel", "cron", "pvedaemon", "pveproxy", "postfix/smtpd", "nginx"}
	pids := make([]int, len(daemons))
	for i := range pids {
		pids[i] = 300 + g.r.intn(30000)
	}
	users := []string{g.word(), g.word(), "root"}
	for len(out) < end {
		g.clock += int64(g.r.intn(40))
		k := g.r.intn(len(daemons))
		var msg string
		switch g.r.intn(5) {
		case 0:
			msg = fmt.Sprintf("Accepted publickey for %s from 10.0.%d.%d port %d ssh2", users[g.r.intn(3)], g.r.intn(2), 10+g.r.intn(5), 40000+g.r.intn(2000))
		case 1:
			msg = fmt.Sprintf("Started %s.service - %s daily %s.", daemons[g.r.intn(len(daemons))], g.word(), g.word())
		case 2:
			msg = fmt.Sprintf("worker %d finished: %d bytes in %d.%03d s", g.r.intn(8), g.r.intn(1<<16), g.r.intn(10), g.r.intn(1000))
		case 3:
			msg = fmt.Sprintf("pam_unix(cron:session): session %s for user %s", []string{"opened", "closed"}[g.r.intn(2)], users[g.r.intn(3)])
		default:
			msg = fmt.Sprintf("GET /api2/json/nodes/pve/%s HTTP/1.1 200 %d", g.word(), 100+g.r.intn(900))
		}
		h, m, s := g.clock/3600%24, g.clock/60%60, g.clock%60
		out = fmt.Appendf(out, "Dec %2d %02d:%02d:%02d pve %s[%d]: %s\n", 1+g.clock/86400%28, h, m, s, daemons[k], pids[k], msg)
	}
	return out[:end]
}

// source appends configuration files and C-like source code.
func (g *gen) source(out []byte, size int) []byte {
	end := len(out) + size
	if g.r.intn(2) == 0 {
		for len(out) < end {
			switch g.r.intn(6) {
			case 0:
				out = fmt.Appendf(out, "\n[%s]\n", g.word())
			case 1:
				out = fmt.Appendf(out, "# %s %s %s\n", g.word(), g.word(), g.word())
			default:
				out = fmt.Appendf(out, "%s_%s = %s\n", g.word(), g.word(), []string{g.word(), fmt.Sprint(g.r.intn(65536)), "yes", "no", "/var/lib/" + g.word()}[g.r.intn(5)])
			}
		}
		return out[:end]
	}
	depth := 0
	for len(out) < end {
		ind := strings.Repeat("\t", depth)
		switch v := g.r.intn(10); {
		case depth == 0 || v == 0 && depth < 4:
			out = fmt.Appendf(out, "%sstatic int %s_%s(struct %s *%s, int %s)\n%s{\n", ind, g.word(), g.word(), g.word(), g.word()[:1], g.word(), ind)
			depth++
		case v == 1 && depth > 1:
			depth--
			out = fmt.Appendf(out, "%s}\n", strings.Repeat("\t", depth))
		case v == 2:
			out = fmt.Appendf(out, "%sif (%s->%s %s %d) {\n", ind, g.word()[:1], g.word(), []string{"==", "!=", "<", ">="}[g.r.intn(4)], g.r.intn(256))
			depth++
		case v == 3:
			out = fmt.Appendf(out, "%sreturn -E%s;\n", ind, strings.ToUpper(g.word()))
		case v == 4 && depth == 1:
			depth--
			out = append(out, "}\n\n"...)
		default:
			out = fmt.Appendf(out, "%s%s = %s(%s, %s + %d);\n", ind, g.word(), g.word(), g.word(), g.word(), g.r.intn(64))
		}
	}
	return out[:end]
}

// binary appends an ELF-like executable: a header, functions made of
// common x86-64 encodings (calls to a fixed set of functions, small
// displacements, padding between functions), a string table and a symbol
// table.
func (g *gen) binary(out []byte, size int) []byte {
	end := len(out) + size
	out = append(out, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x3e, 0, 1, 0, 0, 0)
	out = binary.LittleEndian.AppendUint64(out, uint64(0x1000+g.r.intn(1<<16)))
	out = append(out, make([]byte, 64-len(out)%64)...)
	code := len(out) + size*6/10
	ops := [][]byte{
		{0x48, 0x89, 0xe5}, {0x48, 0x83, 0xec}, {0x48, 0x8b, 0x45}, {0x48, 0x89, 0x45},
		{0x8b, 0x45}, {0x89, 0x45}, {0xe8}, {0xe8}, {0x74}, {0x75}, {0x0f, 0x84}, {0x48, 0x8d, 0x3d},
		{0x31, 0xc0}, {0x48, 0x85, 0xc0}, {0x85, 0xc0}, {0x48, 0x8b, 0x7d}, {0x41, 0x54}, {0x41, 0x5c},
		{0xb8}, {0xbf}, {0x48, 0x89, 0xdf}, {0x4c, 0x89, 0xe6}, {0x48, 0x8b, 0x03},
	}
	// A skewed choice of instructions and call targets, per binary.
	weights := make([]int, len(ops))
	total := 0
	for i := range weights {
		weights[i] = 1 + g.r.intn(20)
		total += weights[i]
	}
	targets := make([]uint32, 64)
	for i := range targets {
		targets[i] = uint32(g.r.intn(1 << 20))
	}
	for len(out) < code {
		out = append(out, 0xf3, 0x0f, 0x1e, 0xfa, 0x55) // endbr64; push rbp
		for n := g.r.between(8, 60); n > 0; n-- {
			k, v := 0, g.r.intn(total)
			for v >= weights[k] {
				v -= weights[k]
				k++
			}
			out = append(out, ops[k]...)
			switch ops[k][len(ops[k])-1] {
			case 0xe8: // call rel32: to a known function
				out = binary.LittleEndian.AppendUint32(out, targets[g.r.intn(len(targets))]-uint32(len(out)))
			case 0x84, 0x3d, 0xb8, 0xbf: // rel32 / imm32
				out = binary.LittleEndian.AppendUint32(out, uint32(g.r.intn(512)))
			case 0x74, 0x75, 0xec, 0x45, 0x7d: // rel8 / disp8
				out = append(out, byte(g.r.intn(8)*8))
			}
		}
		out = append(out, 0x5d, 0xc3) // pop rbp; ret
		for len(out)%16 != 0 {
			out = append(out, 0xcc)
		}
	}
	// .rodata / .dynstr: NUL-terminated strings.
	strs := len(out) + (end-len(out))/2
	for len(out) < strs {
		out = fmt.Appendf(out, "%s_%s\x00", g.word(), g.word())
		if g.r.intn(4) == 0 {
			out = fmt.Appendf(out, "%s %s: %%s (%%d)\n\x00", g.word(), g.word())
		}
	}
	// .symtab: 24-byte entries with rising addresses.
	addr, name := uint64(0x401000), uint32(1)
	for len(out) < end {
		out = binary.LittleEndian.AppendUint32(out, name)
		out = append(out, 0x12, 0, byte(14+g.r.intn(3)), 0)
		out = binary.LittleEndian.AppendUint64(out, addr)
		sz := uint64(16 * (1 + g.r.intn(40)))
		out = binary.LittleEndian.AppendUint64(out, sz)
		addr += sz
		name += uint32(8 + g.r.intn(24))
	}
	return out[:end]
}

// metadata appends filesystem metadata: an inode table (256-byte inodes
// with rising numbers and nearby times) or directory blocks.
func (g *gen) metadata(out []byte, size int) []byte {
	end := len(out) + size
	if g.r.intn(2) == 0 {
		ino := uint32(g.r.intn(1 << 20))
		for len(out) < end {
			var b [256]byte
			if g.r.intn(5) > 0 { // in use
				binary.LittleEndian.PutUint16(b[0:], []uint16{0o100644, 0o100755, 0o40755, 0o120777}[g.r.intn(4)])
				binary.LittleEndian.PutUint32(b[4:], uint32(g.r.intn(1<<20)))
				g.clock += int64(g.r.intn(3))
				for _, o := range []int{8, 12, 16} {
					binary.LittleEndian.PutUint32(b[o:], uint32(g.clock))
				}
				binary.LittleEndian.PutUint16(b[26:], 1)
				binary.LittleEndian.PutUint32(b[40:], 0xf30a) // extent header magic
				binary.LittleEndian.PutUint32(b[60:], ino*8+uint32(g.r.intn(8)))
				binary.LittleEndian.PutUint32(b[100:], uint32(g.r.next()))
				binary.LittleEndian.PutUint16(b[128:], 32)
			}
			out = append(out, b[:]...)
			ino++
		}
		return out[:end]
	}
	ino := uint32(g.r.intn(1 << 20))
	for len(out) < end {
		blk := len(out)
		for len(out)-blk < 4096-64 {
			name := g.word()
			if g.r.intn(3) == 0 {
				name += "." + []string{"conf", "so", "h", "txt", "gz", "py"}[g.r.intn(6)]
			}
			rec := (8 + len(name) + 3) &^ 3
			out = binary.LittleEndian.AppendUint32(out, ino)
			out = binary.LittleEndian.AppendUint16(out, uint16(rec))
			out = append(out, byte(len(name)), byte(1+g.r.intn(2)))
			out = append(out, name...)
			out = append(out, make([]byte, rec-8-len(name))...)
			ino += uint32(1 + g.r.intn(3))
		}
		out = append(out, make([]byte, 4096-(len(out)-blk))...)
	}
	return out[:end]
}

// compressed appends an already compressed file: a real format's header
// and data with no redundancy left.
func (g *gen) compressed(out []byte, size int) []byte {
	start := len(out)
	switch g.r.intn(3) {
	case 0:
		out = append(out, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3)
	case 1:
		out = append(out, 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R')
	default:
		out = append(out, 0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0)
	}
	hdr := len(out) - start
	out = append(out, make([]byte, size-hdr)...)
	g.r.fill(out[start+hdr:])
	return out
}

// random appends random data (encrypted files, swap).
func (g *gen) random(out []byte, size int) []byte {
	out = append(out, make([]byte, size)...)
	g.r.fill(out[len(out)-size:])
	return out
}

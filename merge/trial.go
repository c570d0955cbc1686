package merge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"sort"

	"github.com/vzsalvage/vzsalvage/archive"
	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// Choosing by trial decoding.
//
// A trial decodes the archive a choice of variants makes, with the
// salvaging decoder, to its end: every problem it finds is located in the
// compressed file, and the stream's own checksum says whether the whole is
// right. A problem is blamed on the group of regions just before it (the
// decoders report it at most reach.ahead before the damage that caused
// it, and at most reach.behind after): that group's choice is wrong, and
// the next trial takes its next combination of variants. Groups that no
// problem touches keep their choice. When nothing is located but the
// checksum fails (damage inside stored or raw data decodes without an
// error), the untried combinations are tried one group at a time, then
// two at a time, until the checksum matches or the trials run out.

// reach is how far from the damage that causes it a decoder reports a
// problem: up to ahead before (zstd and lzop report a block at its
// header) and up to behind after (deflate notices corrupt data late; a
// resync is reported where decoding resumes).
type reach struct{ ahead, behind int64 }

var reaches = map[codec.Kind]reach{
	codec.Zstd: {ahead: 132 << 10, behind: 512 << 10},
	codec.Lzo:  {ahead: 260 << 10, behind: 260 << 10},
	codec.Gzip: {ahead: 64 << 10, behind: 1 << 20},
	codec.None: {},
}

const (
	// maxGroupRegions bounds the regions decided together.
	maxGroupRegions = 4
	// maxCombos bounds the combinations of variants a group tries.
	maxCombos = 64
)

// How a region's choice was made (Region.How).
const (
	HowOnly       = "only"       // one variant: only some copies hold bytes there, and they agree
	HowVotes      = "votes"      // the variant most copies hold (ties: the first copy's), never blamed
	HowDecoding   = "decoding"   // the choices tried before it failed to decode
	HowChecksum   = "checksum"   // chosen because the stream's checksum then matched
	HowUnresolved = "unresolved" // no choice decodes: every copy is damaged there
)

// group is regions close enough that a problem cannot be blamed on one of
// them: they are decided together.
type group struct {
	regs     []int
	off, end int64
	combos   [][]int     // variant per region, best first
	fails    map[int]int // combination → problems blamed on it
	cur      int
	how      string
}

// outcome is what one trial found.
type outcome struct {
	located  []damage.Problem // problems with a place (not the checksum's)
	checksum codec.Checksum
}

func (o *outcome) verified() bool {
	return o != nil && len(o.located) == 0 && o.checksum == codec.ChecksumOK
}

type merger struct {
	ctx       context.Context
	kind      codec.Kind
	cs        []*copyFile
	regs      []region
	groups    []*group
	reach     reach
	trials    int
	maxTrials int
	progress  func(done, total int64)
	buf       []byte
	limit     int64 // the most output a trial decodes (a decompression bomb stops there)
}

// makeGroups gathers the regions into groups and lists their combinations.
func (m *merger) makeGroups() {
	near := m.reach.ahead + m.reach.behind
	for i, r := range m.regs {
		k := len(m.groups) - 1
		if k >= 0 && r.off-m.groups[k].end < near && len(m.groups[k].regs) < maxGroupRegions {
			m.groups[k].regs = append(m.groups[k].regs, i)
			m.groups[k].end = r.end
			continue
		}
		m.groups = append(m.groups, &group{regs: []int{i}, off: r.off, end: r.end})
	}
	for _, g := range m.groups {
		g.combos = m.combos(g)
		g.fails = map[int]int{}
		g.how = HowVotes
		if len(g.combos) == 1 {
			g.how = HowOnly
		}
	}
}

// combos lists a group's combinations of variants, the most votes first
// (ties: fewer ends of the archive, then the earlier variants).
func (m *merger) combos(g *group) [][]int {
	all := [][]int{{}}
	for _, ri := range g.regs {
		var next [][]int
		for _, c := range all {
			for v := range m.regs[ri].variants {
				next = append(next, append(append([]int(nil), c...), v))
			}
		}
		all = next
	}
	score := func(c []int) (votes, ends int) {
		for k, v := range c {
			vr := m.regs[g.regs[k]].variants[v]
			votes += len(vr.holders)
			if vr.end {
				ends++
			}
		}
		return
	}
	sort.SliceStable(all, func(a, b int) bool {
		va, ea := score(all[a])
		vb, eb := score(all[b])
		if va != vb {
			return va > vb
		}
		return ea < eb
	})
	return all[:min(len(all), maxCombos)]
}

// choice returns the variant chosen in each region.
func (m *merger) choice() []int {
	ch := make([]int, len(m.regs))
	for _, g := range m.groups {
		for k, ri := range g.regs {
			ch[ri] = g.combos[g.cur][k]
		}
	}
	return ch
}

// trial decodes the archive the current choice makes.
func (m *merger) trial() (*outcome, error) {
	m.trials++
	v := newView(m.cs, m.regs, m.choice())
	src := &progressReader{r: io.NewSectionReader(v, 0, v.size), total: v.size, fn: m.progress, ctx: m.ctx}
	dec, err := archive.NewDecoder(m.kind, bufio.NewReaderSize(src, 1<<20), codec.Options{})
	if err != nil {
		if src.err != nil {
			return nil, src.err
		}
		// the stream's first bytes do not even start it
		return &outcome{located: []damage.Problem{{Offset: 0, Message: err.Error()}}, checksum: codec.ChecksumUnknown}, nil
	}
	if m.buf == nil {
		m.buf = make([]byte, 1<<20)
	}
	var out int64
	for out < m.limit {
		n, err := dec.Read(m.buf)
		out += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			if src.err != nil {
				return nil, src.err
			}
			// the decoder gave up: what it found is the outcome
			break
		}
	}
	o := &outcome{checksum: dec.Checksum()}
	if out >= m.limit {
		o.checksum = codec.ChecksumUnknown // stopped: a bomb, not an archive
	}
	for _, p := range dec.Problems() {
		if p.Kind != damage.ChecksumMismatch {
			o.located = append(o.located, p)
		}
	}
	if c, ok := dec.(io.Closer); ok {
		c.Close()
	}
	return o, nil
}

// blame sorts a trial's problems into those blamed on a group and those
// near no region (damage every copy holds).
func (m *merger) blame(ps []damage.Problem) (map[*group]int, []damage.Problem) {
	hit := map[*group]int{}
	var shared []damage.Problem
	for _, p := range ps {
		i := sort.Search(len(m.groups), func(i int) bool { return m.groups[i].off > p.Offset+m.reach.ahead }) - 1
		if i < 0 || p.Offset > m.groups[i].end+m.reach.behind {
			shared = append(shared, p)
			continue
		}
		hit[m.groups[i]]++
	}
	return hit, shared
}

// search decides every group; it returns the last trial's outcome (that of
// the final choice unless a group ended unresolved).
func (m *merger) search() (*outcome, error) {
	var o *outcome
	for m.trials < m.maxTrials {
		var err error
		if o, err = m.trial(); err != nil {
			return nil, err
		}
		if o.verified() {
			return o, nil
		}
		hit, shared := m.blame(o.located)
		if len(hit) == 0 {
			if len(shared) == 0 && o.checksum == codec.ChecksumMismatch {
				return m.silent(o)
			}
			return o, nil
		}
		changed := false
		for g, n := range hit {
			g.fails[g.cur] = n
			if next := g.untried(); next >= 0 {
				g.cur, g.how, changed = next, HowDecoding, true
				continue
			}
			g.cur, g.how = g.fewest(), HowUnresolved
		}
		if !changed {
			return o, nil
		}
	}
	return o, nil
}

// untried returns the first combination not tried yet, or -1.
func (g *group) untried() int {
	for c := range g.combos {
		if _, tried := g.fails[c]; !tried {
			return c
		}
	}
	return -1
}

// fewest returns the combination tried with the fewest problems (the
// earliest of those).
func (g *group) fewest() int {
	best := 0
	for c := range g.combos {
		if g.fails[c] < g.fails[best] {
			best = c
		}
	}
	return best
}

// silent tries, when nothing is located but the checksum fails, the
// untried combinations of one group, then of two groups at once, until
// the checksum matches.
func (m *merger) silent(o *outcome) (*outcome, error) {
	type alt struct {
		g *group
		c int
	}
	var alts []alt
	for _, g := range m.groups {
		g.fails[g.cur] = 0 // decodes: only the checksum can tell
		for c := range g.combos {
			if _, tried := g.fails[c]; !tried {
				alts = append(alts, alt{g, c})
			}
		}
	}
	try := func(set ...alt) (bool, error) {
		prev := make([]int, len(set))
		for i, a := range set {
			prev[i] = a.g.cur
			a.g.cur = a.c
		}
		o2, err := m.trial()
		if err != nil {
			return false, err
		}
		if o2.verified() {
			for _, a := range set {
				a.g.how = HowChecksum
			}
			o = o2
			return true, nil
		}
		hit, _ := m.blame(o2.located)
		for i, a := range set {
			if n := hit[a.g]; n > 0 {
				a.g.fails[a.c] = n
			}
			a.g.cur = prev[i]
		}
		return false, nil
	}
	for i := 0; i < len(alts) && m.trials < m.maxTrials; i++ {
		if ok, err := try(alts[i]); ok || err != nil {
			return o, err
		}
	}
	for i := 0; i < len(alts); i++ {
		for j := i + 1; j < len(alts) && m.trials < m.maxTrials; j++ {
			if alts[i].g == alts[j].g || alts[i].g.fails[alts[i].c] > 0 || alts[j].g.fails[alts[j].c] > 0 {
				continue
			}
			if ok, err := try(alts[i], alts[j]); ok || err != nil {
				return o, err
			}
		}
	}
	return o, nil
}

// progressReader reports the bytes read and stops when ctx is done; err
// keeps its own errors apart from the decoder's.
type progressReader struct {
	r     io.Reader
	n     int64
	total int64
	fn    func(done, total int64)
	ctx   context.Context
	err   error
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		p.err = err
		return 0, err
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.fn != nil {
		p.fn(p.n, p.total)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		p.err = err
	}
	return n, err
}

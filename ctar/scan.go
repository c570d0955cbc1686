package ctar

import (
	"bytes"

	"fmt"
	"github.com/cespare/xxhash/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
)

// Options control Scan.
type Options struct {
	// Data, if set, receives every member's stored bytes as they stream by,
	// at file offsets (bytes in damage too: zeros where lost). An error
	// ends the scan.
	// i is the index the member will have in Index.Members.
	Data func(i int, m *Member, p []byte, off int64) error
	// Begin and End, if set, see every member as the scan reads it: Begin
	// once its headers are read and where its content lies is known
	// (before its content goes to Data), End once it is complete (it is
	// then Index.Members[i]). An error ends the scan.
	Begin, End func(i int, m *Member) error
	// Strict stops at the first problem.
	Strict bool
	// Hash computes, for every member, the xxh64 of its header blocks and
	// of its content (Index.Hashes): what a protect record keeps, to tell
	// later which members are the original's.
	Hash bool
	// ConfigsOnly stops after vzdump's config files, at the first member
	// of the guest's tree (what inspect needs).
	ConfigsOnly bool
	// Fragment and FragmentEnd, if set, receive the fragments
	// (Index.Fragments) as the scan finds them: Fragment the bytes p at
	// offset off of the one that starts at stream offset start, in order,
	// from when it is long enough to be kept; FragmentEnd once it is
	// complete (keep false: it is not kept after all, being all zeros or
	// too short once its padding is left out). An error ends the scan.
	Fragment    func(start int64, p []byte, off int64) error
	FragmentEnd func(fr Fragment, keep bool) error
}

// maxProblems bounds the problems an Index lists.
const maxProblems = 1000

// maxMembers bounds the members of one archive (the index is in memory).
const maxMembers = 50_000_000

// Scan reads a tar stream to its end and indexes its members. It never
// fails on damaged input: what it finds wrong is in the Index's Problems
// and Damage. The error is a failure to read (or Options.Data's error).
func Scan(r codec.Reader, opt Options) (*Index, error) {
	sc := &scanner{s: newStream(r), opt: opt, x: &Index{}}
	if opt.Hash {
		sc.hh, sc.hd = xxhash.New(), xxhash.New()
	}
	err := sc.run()
	sc.s.sync()
	for i := range sc.x.Gaps {
		// the member before a gap is the last whose header precedes it
		g := &sc.x.Gaps[i]
		g.After = sort.Search(len(sc.x.Members), func(k int) bool { return sc.x.Members[k].HeaderOff >= g.Off }) - 1
	}
	sc.x.Size = sc.s.end()
	sc.x.Damage = &sc.s.dmg
	sc.recheckFragments()
	if err == nil && sc.s.err != nil {
		err = sc.s.err
	}
	return sc.x, err
}

type scanner struct {
	s   *stream
	opt Options
	x   *Index

	pend      *ext
	pax       bool // some member had a pax header
	resynced  bool // the next header was found by resynchronising
	strictErr error
	// last is the member read last, and next where its successor's header
	// must start; a header found there confirms last's size.
	last *Member
	next int64
	cur  *Member // the member whose data is being read
	// hh and hd hash the current member's header blocks and content
	// (Options.Hash).
	hh, hd *xxhash.Digest
	fr     fragRun // the fragment being collected in a gap
	// pool holds the members not yet used of the chunk they are
	// allocated from; names holds member names (see intern); owns the
	// owner names met, shared by the members that have them.
	pool  []Member
	names *strings.Builder
	owns  map[owners]*owners
}

// Bounds of the allocation chunks of members and names, and of the
// owner names shared.
const (
	memberChunk = 1024     // 96 KiB
	nameChunk   = 64 << 10 // bytes
	maxNameIn   = 1 << 10  // a longer name keeps its own allocation
	maxOwners   = 1 << 12  // distinct owner names shared
)

// newMember returns a zero member allocated from a chunk of members: an
// index of millions costs no per-object overhead. (A member not added to
// the index leaves its slot unused.)
func (sc *scanner) newMember() *Member {
	if len(sc.pool) == 0 {
		sc.pool = make([]Member, min(memberChunk, max(16, len(sc.x.Members)/4)))
	}
	m := &sc.pool[0]
	sc.pool = sc.pool[1:]
	return m
}

// intern returns name copied into a shared arena of names (a string in
// chunks of nameChunk bytes, written once): a name costs its bytes, not a
// rounded allocation of its own.
func (sc *scanner) intern(name string) string {
	if len(name) > maxNameIn || name == "" {
		return name
	}
	if sc.names == nil || sc.names.Cap()-sc.names.Len() < len(name) {
		sc.names = new(strings.Builder)
		sc.names.Grow(min(nameChunk, max(1<<10, len(sc.x.Members)*len(name)/4)))
	}
	start := sc.names.Len()
	sc.names.WriteString(name) // within its capacity: the bytes before stay where they are
	return sc.names.String()[start:]
}

// shareOwners returns the shared value of o (nil for no names).
func (sc *scanner) shareOwners(o owners) *owners {
	if o == (owners{}) {
		return nil
	}
	if p := sc.owns[o]; p != nil {
		return p
	}
	p := &o
	if len(sc.owns) < maxOwners {
		if sc.owns == nil {
			sc.owns = map[owners]*owners{}
		}
		sc.owns[o] = p
	}
	return p
}

// hashHeader adds header bytes of the current member to its hash.
func (sc *scanner) hashHeader(b []byte, restart bool) {
	if sc.hh == nil {
		return
	}
	if restart {
		sc.hh.Reset()
	}
	sc.hh.Write(b)
}

// lastName names the member read last (the one being read, if a loss
// cut it), for messages.
func (sc *scanner) lastName() string {
	switch k := len(sc.x.Members); {
	case sc.cur != nil:
		return sc.cur.Name
	case k > 0:
		return sc.x.Members[k-1].Name
	}
	return "the start"
}

// confirm notes that a valid header (or the end marker) starts at pos:
// if that is where the previous member said its successor starts, its
// size is confirmed, and a tainted header of it only leaves its metadata
// in doubt.
func (sc *scanner) confirm(pos int64) {
	if sc.last != nil && pos == sc.next {
		sc.last.set(flagConfirmed, true)
	}
	sc.last = nil
}

// ext holds the extended headers (pax, GNU long names) read before a
// member's own header.
type ext struct {
	start    int64
	recs     []paxRecord
	longName string
	longLink string
	hasLong  bool
	hasLink  bool
	tainted  bool     // an extended header lies in tainted bytes
	bad      []string // extended headers that could not be read
}

func (sc *scanner) problem(off int64, format string, a ...any) {
	sc.x.ProblemCount++
	if len(sc.x.Problems) < maxProblems {
		sc.x.Problems = append(sc.x.Problems, damage.Problem{Layer: "tar", Offset: off, Message: fmt.Sprintf(format, a...)})
	}
	if sc.opt.Strict && sc.strictErr == nil {
		sc.strictErr = fmt.Errorf("tar at %d: %s: %w", off, fmt.Sprintf(format, a...), ErrHeader)
	}
}

func pad(n int64) int64 { return (n + BlockSize - 1) / BlockSize * BlockSize }

func (sc *scanner) run() error {
	pos := int64(0)
	for {
		if sc.strictErr != nil {
			return sc.strictErr
		}
		if sc.fr.err != nil {
			return sc.fr.err
		}
		blk := sc.s.window(pos, BlockSize)
		sc.s.forgetResyncs(pos) // nothing before pos is asked about again
		if len(blk) < BlockSize {
			if sc.s.err != nil {
				return nil // the decoder failed (a strict read): its error says why
			}
			if len(blk) > 0 || pos == 0 || sc.pend != nil {
				sc.problem(pos, "the stream ends inside a header (truncated)")
			} else {
				sc.problem(pos, "the stream ends without the end-of-archive marker (truncated)")
			}
			return nil
		}
		if sc.s.lost(pos, BlockSize) {
			pos = sc.resync(pos, "a header was lost")
			continue
		}
		if isZero(blk) && !sc.s.damaged(pos, BlockSize) {
			next := sc.s.window(pos+BlockSize, BlockSize)
			if len(next) == 0 || isZero(next) && !sc.s.damaged(pos+BlockSize, BlockSize) {
				sc.confirm(pos)
				sc.x.Ended = true
				if sc.pend != nil {
					sc.problem(pos, "extended header without a member")
				}
				return nil
			}
			// a lone zero block: GNU tar's --ignore-zeros case; read on
			pos += BlockSize
			continue
		}
		h, err := parseHeader(blk)
		if err != nil {
			unexplained := !sc.s.damaged(pos, BlockSize)
			if unexplained && sc.last != nil && sc.next == pos {
				// nothing located this damage (an uncompressed archive, a
				// raw zstd block): what destroyed the header may have
				// reached back into the member before it
				sc.s.addDamage(sc.last.HeaderOff, pos-sc.last.HeaderOff, damage.Tainted)
			}
			next := sc.resync(pos, err.Error())
			if unexplained {
				sc.s.addDamage(pos, next-pos, damage.Tainted)
			}
			pos = next
			continue
		}
		sc.confirm(pos)
		h.tainted = sc.s.damaged(pos, BlockSize)
		next, err := sc.member(pos, h)
		if err != nil {
			return err
		}
		if sc.opt.ConfigsOnly && len(sc.x.Members) > len(sc.x.Configs) {
			return nil
		}
		pos = next
	}
}

// resync records that the header at pos could not be read and returns the
// offset of the next valid header (or the end of the stream). Headers are
// searched at block boundaries unless a Resync span lies between pos and
// the candidate (the decoder lost its place: any offset may hold one).
func (sc *scanner) resync(pos int64, why string) int64 { return sc.search(pos, why, false) }

// resyncAfter resynchronises after a Resync span that ended at pos: the
// stream's block alignment is lost, any offset may hold the next header.
func (sc *scanner) resyncAfter(pos int64, why string) int64 { return sc.search(pos, why, true) }

func (sc *scanner) search(pos int64, why string, anyAlign bool) int64 {
	sc.problem(pos, "%s; looking for the next header", why)
	sc.last = nil
	if sc.pend != nil {
		sc.pend = nil // the extended headers belonged to a lost member
	}
	cur := pos
	sc.fragStart(pos, anyAlign)
	defer sc.fragEnd()
	if !anyAlign {
		w := sc.s.window(pos, 2)
		sc.frag(pos, w[:min(1, len(w))], w[min(1, len(w)):])
		cur++
	}
	for {
		w := sc.s.window(cur, windowSize)
		if len(w) < BlockSize {
			sc.frag(cur, w, nil)
			sc.x.Gaps = append(sc.x.Gaps, Gap{Off: pos, End: sc.s.end()})
			after := sc.lastName()
			sc.problem(pos, "no valid header in the %d bytes to the end: members stored after %s are lost", sc.s.end()-pos, after)
			return sc.s.end()
		}
		i := bytes.Index(w[257:], []byte("ustar"))
		if i < 0 {
			adv := len(w) - 257 - 4
			sc.frag(cur, w[:adv], w[adv:])
			cur += int64(adv)
			continue
		}
		o := cur + int64(i)
		// the bytes from cur with the candidate block (a window at o would
		// drop those before it)
		w = sc.s.window(cur, int(o-cur)+BlockSize)
		at := int(o - cur)
		sc.frag(cur, w[:at], w[at:])
		_, misaligned := sc.s.resyncIn(pos, o)
		if (anyAlign || misaligned || (o-pos)%BlockSize == 0) && !sc.s.lost(o, BlockSize) {
			if blk := w[at:]; len(blk) == BlockSize {
				if _, err := parseHeader(blk); err == nil {
					after := sc.lastName()
					sc.x.Gaps = append(sc.x.Gaps, Gap{Off: pos, End: o})
					sc.problem(o, "resynchronised after %d bytes: members stored after %s and before this one are lost", o-pos, after)
					sc.resynced = true
					return o
				}
			}
		}
		sc.frag(o, w[at:at+1], w[at+1:])
		cur = o + 1
	}
}

// member handles the header h at pos and the data after it; it returns
// the offset of the next header.
func (sc *scanner) member(pos int64, h *header) (int64, error) {
	dataOff := pos + BlockSize
	switch h.typ {
	case TypePax, TypePaxGlob, TypeLongName, TypeLongLink:
		restart := sc.pend == nil || sc.resynced
		if sc.pend == nil {
			sc.pend = &ext{start: pos}
		}
		if sc.resynced {
			sc.pend.start = pos
		}
		sc.hashHeader(sc.s.window(pos, BlockSize), restart)
		return sc.extended(pos, h)
	}
	e := sc.pend
	sc.hashHeader(sc.s.window(pos, BlockSize), e == nil)
	sc.pend = nil
	resynced := sc.resynced
	sc.resynced = false
	if e == nil {
		e = &ext{start: pos}
	}
	m := sc.newMember()
	*m = Member{Name: h.name, Type: h.typ, Mode: uint32(h.mode), Size: h.size, HeaderOff: e.start, HeaderEnd: dataOff}
	m.set(flagResynced, resynced)
	m.set(flagHeaderTainted, h.tainted || e.tainted)
	m.setIDs(h.uid, h.gid)
	m.setTime(0, unix(h.mtime, 0))
	own := owners{h.uname, h.gname}
	if h.linkname != "" || h.devmajor != 0 || h.devminor != 0 {
		x := m.ext()
		x.link, x.devMajor, x.devMinor = h.linkname, h.devmajor, h.devminor
	}
	if h.atime > 0 {
		m.setTime(1, unix(h.atime, 0))
	}
	if h.ctime > 0 {
		m.setTime(2, unix(h.ctime, 0))
	}
	m.addProblem(e.bad...)
	if e.hasLong {
		m.Name = e.longName
	}
	if e.hasLink {
		m.ext().link = e.longLink
	}
	stored := h.size // bytes that follow the header
	var regions []region
	sparse10 := false
	if h.typ == TypeSparse {
		regions = h.sparse
		m.Sparse, m.Type, m.Size = true, TypeReg, h.realsize
	}
	if len(e.recs) > 0 {
		var err error
		regions, sparse10, err = sc.applyPax(m, &own, e.recs, regions, &stored)
		if err != nil {
			m.addProblem(err.Error())
		}
	} else if resynced && sc.pax {
		m.addProblem("found after damage without its pax header, which was lost: its name, times, attributes and sparse map may be wrong")
	}
	m.own = sc.shareOwners(own)
	m.Name = sc.intern(m.Name)
	if h.typ == TypeSparse && h.extended {
		// old GNU sparse: extension blocks follow the header
		for k := 0; k < maxSparseMap/21; k++ {
			blk := sc.s.window(dataOff, BlockSize)
			if len(blk) < BlockSize || sc.s.damaged(dataOff, BlockSize) {
				m.addProblem("sparse map extension lost")
				break
			}
			rs, more, err := parseSparseExt(blk)
			sc.hashHeader(blk, false)
			dataOff += BlockSize
			if err != nil {
				m.addProblem(err.Error())
				break
			}
			regions = append(regions, rs...)
			if !more {
				break
			}
		}
		m.HeaderEnd = dataOff
	}
	if len(sc.x.Members) >= maxMembers {
		sc.problem(pos, "more than %d members: the rest are not indexed", maxMembers)
		return sc.s.end(), nil
	}
	m.Config = sc.isConfig(m)
	switch {
	case hasData(m.Type):
		var cfg []byte
		if m.Config {
			cfg = make([]byte, m.Size)
		}
		sc.cur = m
		next, err := sc.data(m, dataOff, stored, regions, sparse10, cfg)
		sc.cur = nil
		if err != nil {
			return 0, err
		}
		if err := sc.add(m, cfg); err != nil {
			return 0, err
		}
		sc.last, sc.next = m, dataOff+pad(stored)
		return next, nil
	case m.Type == TypeVolume:
		return sc.skip(dataOff, stored, dataOff+pad(stored)), nil
	case m.Type == TypeMultiVol:
		sc.problem(pos, "%s: continued from another volume: not read", m.Name)
		return sc.skip(dataOff, stored, dataOff+pad(stored)), nil
	}
	m.Size = 0
	if err := sc.begin(m); err != nil {
		return 0, err
	}
	if err := sc.add(m, nil); err != nil {
		return 0, err
	}
	next := sc.skip(dataOff, stored, dataOff+pad(stored))
	sc.last, sc.next = m, dataOff+pad(stored)
	return next, nil
}

// hasData reports whether members of type t carry content.
func hasData(t byte) bool {
	return t == TypeReg || t == TypeRegOld || t == TypeCont
}

// isConfig reports whether m is one of vzdump's config files, which it
// stores before the guest's tree.
func (sc *scanner) isConfig(m *Member) bool {
	if len(sc.x.Members) != len(sc.x.Configs) || m.Resynced() || !hasData(m.Type) || m.Size > maxConfig {
		return false
	}
	name, ok := cleanName(m.Name)
	return ok && configNames[name]
}

// begin announces a member (Options.Begin) before its content.
func (sc *scanner) begin(m *Member) error {
	if sc.opt.Begin == nil {
		return nil
	}
	return sc.opt.Begin(len(sc.x.Members), m)
}

// add adds a complete member to the index (Options.End).
func (sc *scanner) add(m *Member, cfg []byte) error {
	if ps := m.Problems(); len(ps) > 0 {
		sc.problem(m.HeaderOff, "%s: %s", m.Name, strings.Join(ps, "; "))
	}
	sc.x.Members = append(sc.x.Members, m)
	if sc.hh != nil {
		sc.x.Hashes = append(sc.x.Hashes, MemberHash{Header: sc.hh.Sum64(), Data: sc.hd.Sum64()})
		sc.hh.Reset()
		sc.hd.Reset()
	}
	if m.Config {
		sc.x.Configs = append(sc.x.Configs, Config{Name: m.Name[strings.LastIndexByte(m.Name, '/')+1:], Data: cfg})
	}
	if sc.opt.End == nil {
		return nil
	}
	return sc.opt.End(len(sc.x.Members)-1, m)
}

// extended reads a pax header or GNU long name/link at pos.
func (sc *scanner) extended(pos int64, h *header) (int64, error) {
	dataOff := pos + BlockSize
	next := dataOff + pad(h.size)
	if h.size > maxExtSize {
		sc.pend.bad = append(sc.pend.bad, fmt.Sprintf("extended header of %d bytes ignored", h.size))
		return sc.skip(dataOff, h.size, next), nil
	}
	sc.pend.tainted = sc.pend.tainted || h.tainted
	// (hashed first: a window asked for later may move the bytes of b)
	sc.hashHeader(sc.s.window(dataOff, int(pad(h.size))), false)
	b := sc.s.window(dataOff, int(h.size))
	sc.pend.tainted = sc.pend.tainted || sc.s.damaged(dataOff, h.size)
	if int64(len(b)) < h.size || sc.s.lost(dataOff, h.size) {
		sc.pend.bad = append(sc.pend.bad, "an extended header was lost")
		if r, ok := sc.s.resyncIn(dataOff, next); ok {
			return sc.resyncAfter(r.End(), "the stream lost its place inside an extended header"), nil
		}
		return next, nil
	}
	switch h.typ {
	case TypeLongName, TypeLongLink:
		s := cstring(b)
		if h.typ == TypeLongName {
			sc.pend.longName, sc.pend.hasLong = s, true
		} else {
			sc.pend.longLink, sc.pend.hasLink = s, true
		}
	case TypePax:
		recs, err := parsePax(b)
		if err != nil {
			sc.pend.bad = append(sc.pend.bad, err.Error())
		}
		sc.pend.recs = append(sc.pend.recs, recs...)
		sc.pax = true
	case TypePaxGlob:
		// global headers set defaults GNU tar never writes; ignored
	}
	return next, nil
}

// skip passes over n bytes at off and returns next, unless the decoder lost
// its place in between: then it resynchronises.
func (sc *scanner) skip(off, n, next int64) int64 {
	if r, ok := sc.s.resyncIn(off, next); ok {
		return sc.resyncAfter(r.End(), "the stream lost its place inside a member")
	}
	return next
}

// applyPax applies pax records to m. It returns the sparse regions (pax
// formats 0.0 and 0.1) and whether the data starts with a GNU sparse 1.0
// map.
func (sc *scanner) applyPax(m *Member, own *owners, recs []paxRecord, regions []region, stored *int64) ([]region, bool, error) {
	var major, minor = -1, -1
	var sparseSize int64 = -1
	var offs []int64
	var firstErr error
	bad := func(k string) {
		if firstErr == nil {
			firstErr = fmt.Errorf("pax record %s: bad value", k)
		}
	}
	num := func(k, v string) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			bad(k)
			return -1
		}
		return n
	}
	for _, r := range recs {
		k, v := r.key, r.value
		switch {
		case k == "path":
			m.Name = v
		case k == "linkpath":
			m.ext().link = v
		case k == "size":
			if n := num(k, v); n >= 0 && n <= maxMemberSize {
				*stored, m.Size = n, n
			}
		case k == "uid":
			if n := num(k, v); n >= 0 {
				_, gid := m.IDs()
				m.setIDs(n, gid)
			}
		case k == "gid":
			if n := num(k, v); n >= 0 {
				uid, _ := m.IDs()
				m.setIDs(uid, n)
			}
		case k == "uname":
			own.uname = v
		case k == "gname":
			own.gname = v
		case k == "mtime" || k == "atime" || k == "ctime":
			s, ns, ok := parsePaxTime(v)
			if !ok {
				bad(k)
				continue
			}
			i := 0 // mtime
			switch k {
			case "atime":
				i = 1
			case "ctime":
				i = 2
			}
			m.setTime(i, unix(s, ns))
		case strings.HasPrefix(k, "SCHILY.xattr."):
			x := m.ext()
			if x.xattrs == nil {
				x.xattrs = map[string][]byte{}
			}
			x.xattrs[strings.TrimPrefix(k, "SCHILY.xattr.")] = []byte(v)
		case k == "SCHILY.acl.access" || k == "SCHILY.acl.default":
			x := m.ext()
			if x.acls == nil {
				x.acls = map[string]string{}
			}
			x.acls[strings.TrimPrefix(k, "SCHILY.acl.")] = v
		case k == "SCHILY.devmajor":
			m.ext().devMajor = num(k, v)
		case k == "SCHILY.devminor":
			m.ext().devMinor = num(k, v)
		case k == "GNU.sparse.major":
			major = int(num(k, v))
		case k == "GNU.sparse.minor":
			minor = int(num(k, v))
		case k == "GNU.sparse.name":
			m.Name = v
		case k == "GNU.sparse.realsize" || k == "GNU.sparse.size":
			sparseSize = num(k, v)
		case k == "GNU.sparse.numblocks":
			if num(k, v) > maxSparseMap {
				bad(k)
			}
		case k == "GNU.sparse.offset":
			offs = append(offs, num(k, v))
		case k == "GNU.sparse.numbytes":
			if len(offs) > 0 && len(regions) < maxSparseMap {
				regions = append(regions, region{offs[len(offs)-1], num(k, v)})
			}
		case k == "GNU.sparse.map":
			rs, err := parseSparseList(v)
			if err != nil {
				bad(k)
			}
			regions = rs
		}
	}
	isSparse := sparseSize >= 0 || major >= 0
	if !isSparse {
		return regions, false, firstErr
	}
	m.Sparse = true
	if sparseSize >= 0 {
		m.Size = sparseSize
	}
	return regions, major == 1 && minor == 0, firstErr
}

// data handles a member's stored bytes at [off, off+stored): it maps them
// to file offsets (a sparse map first, for GNU sparse 1.0), notes what
// damage cut, passes them to Options.Data, and returns the offset of the
// next header.
func (sc *scanner) data(m *Member, off, stored int64, regions []region, sparse10 bool, cfg []byte) (int64, error) {
	next := off + pad(stored)
	start := off
	if sparse10 {
		b := sc.s.window(off, int(min(stored, maxSparseText)))
		rs, used, ok, err := parseSparse10(b)
		if err == nil && (!ok || used > stored) {
			err = fmt.Errorf("%w: sparse map unreadable", ErrHeader)
		}
		if err == nil && sc.s.damaged(off, used) || err != nil && sc.s.damaged(off, int64(len(b))) {
			err = fmt.Errorf("its sparse map lies in damage")
		}
		if err != nil {
			return sc.unreadable(m, off, stored, next, err)
		}
		regions, start = rs, off+used
	}
	if regions == nil && !m.Sparse {
		regions = []region{{0, stored}}
		m.Size = stored
	}
	total, err := checkRegions(regions, m.Size)
	if err == nil && start+total > off+stored {
		err = fmt.Errorf("%w: sparse regions hold more than the member stores", ErrHeader)
	}
	if err != nil {
		return sc.unreadable(m, off, stored, next, err)
	}
	// where the decoder lost its place, the member is cut: what follows is
	// no longer at its offset
	cut := next
	var rs codec.Span
	resync := false
	if rs, resync = sc.s.resyncIn(off, next); resync {
		cut = rs.Off
	}
	phys := start
	var data, lost []fs.Extent
	for _, r := range regions {
		if r.n == 0 {
			continue
		}
		keep := max(0, min(r.n, cut-phys))
		if keep > 0 {
			data = append(data, fs.Extent{Logical: r.off, Physical: phys, Length: keep})
		}
		if keep < r.n {
			lost = append(lost, fs.Extent{Logical: r.off + keep, Physical: -1, Length: r.n - keep})
		}
		phys += r.n
	}
	if lost != nil {
		m.ext().lost = lost
	}
	m.setData(data)
	if err := sc.begin(m); err != nil {
		return 0, err
	}
	// read through the data (to pass it on, or just to get past it)
	for _, e := range data {
		for done := int64(0); done < e.Length; {
			k := int(min(e.Length-done, windowSize))
			b := sc.s.window(e.Physical+done, k)
			if sc.hd != nil {
				sc.hd.Write(b)
			}
			if cfg != nil {
				copy(cfg[e.Logical+done:], b)
			}
			if sc.opt.Data != nil && len(b) > 0 {
				if err := sc.opt.Data(len(sc.x.Members), m, b, e.Logical+done); err != nil {
					return 0, err
				}
			}
			if len(b) < k {
				// the stream ends inside the member
				sc.truncate(m, e.Physical+done+int64(len(b)))
				return sc.s.end(), nil
			}
			done += int64(k)
		}
	}
	if resync {
		sc.problem(rs.Off, "%s: cut by damage at byte %d of %d", m.Name, rs.Off-off, stored)
		return sc.resyncAfter(rs.End(), "the stream lost its place inside a member"), nil
	}
	return next, nil
}

// unreadable records a member whose content cannot be placed (its sparse
// map is damaged or inconsistent): all of it is lost.
func (sc *scanner) unreadable(m *Member, off, stored, next int64, err error) (int64, error) {
	m.addProblem(err.Error())
	m.ext().lost = []fs.Extent{{Logical: 0, Length: m.Size, Physical: -1}}
	m.setData(nil)
	if err := sc.begin(m); err != nil {
		return 0, err
	}
	return sc.skip(off, stored, next), nil
}

// truncate marks everything of m stored at or after stream offset end as
// lost (the stream ended there).
func (sc *scanner) truncate(m *Member, end int64) {
	sc.problem(end, "%s: the stream ends inside this member (truncated)", m.Name)
	var data, lost []fs.Extent
	for _, e := range m.Data() {
		keep := max(0, min(e.Length, end-e.Physical))
		if keep > 0 {
			data = append(data, fs.Extent{Logical: e.Logical, Physical: e.Physical, Length: keep})
		}
		if keep < e.Length {
			lost = append(lost, fs.Extent{Logical: e.Logical + keep, Physical: -1, Length: e.Length - keep})
		}
	}
	if lost != nil {
		m.ext().lost = append(m.ext().lost, lost...)
	}
	m.setData(data)
}

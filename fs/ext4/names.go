package ext4

import (
	"fmt"
	"sort"
	"time"

	"github.com/vzsalvage/vzsalvage/fs"
)

// Names for orphans from the journal's log.
//
// The journal logs every metadata block a transaction changes, directory
// blocks included, and its log keeps those copies until later transactions
// wrap around over them: long after they were checkpointed (and after a
// clean unmount). When a directory block is damaged, the files it named
// become orphans; an older copy of the block in the log names them again.
// A copy is used only when it is whole (the journal's own block checksum
// where it has one, and the directory block's checksum, which binds it to
// the directory's inode and generation, where metadata_csum is on), and
// the newest such copy is taken. An entry gives a name back only to an
// orphan (an in-use inode nothing else names) whose type is the entry's,
// whose name is free in the directory, and which was not created after
// the copy was committed (its creation time, where the inode has one).

// jcopy is a copy of a filesystem block in the journal's log.
type jcopy struct {
	off    int64 // volume offset of the copy
	seq    uint32
	escape bool
	csum   uint32
}

// maxLogCopies bounds the copies indexed.
const maxLogCopies = 1 << 20

// logCopies scans the whole log for descriptor blocks, whatever their
// transaction, and indexes the copies of blocks they describe, newest
// transaction first per block; with the commit time of each transaction
// found (Unix seconds).
func (f *FS) logCopies() (*journal, map[uint64][]jcopy, map[uint32]int64) {
	if f.sb.compat&compatHasJournal == 0 || f.sb.journalInum == 0 {
		return nil, nil, nil
	}
	j, _ := f.loadJournal()
	if j == nil {
		return nil, nil, nil
	}
	js := &j.sb
	copies := map[uint64][]jcopy{}
	commits := map[uint32]int64{}
	n := 0
	b := j.buf
	for at := js.first; at < js.last(); at++ {
		if j.read(at) != nil || be.Uint32(b) != jbdMagic {
			continue
		}
		seq := be.Uint32(b[8:])
		switch be.Uint32(b[4:]) {
		case jbdCommit:
			if !js.csum() || j.commitCsumOK(b) {
				commits[seq] = int64(be.Uint64(b[0x30:]))
			}
		case jbdDescriptor:
			if js.csum() && !j.blockCsumOK(b) {
				continue
			}
			next := at
			j.eachTag(b, func(tg jtag) bool {
				next++
				if next >= js.last() {
					next = js.first
				}
				p := j.pos(next)
				if p < 0 || tg.target >= f.sb.blocksCount || n >= maxLogCopies {
					return n < maxLogCopies
				}
				copies[tg.target] = append(copies[tg.target], jcopy{off: p, seq: seq, escape: tg.escape, csum: tg.csum})
				n++
				return true
			})
		}
	}
	for _, cs := range copies {
		// newest first (sequence numbers wrap: compare by difference)
		sort.SliceStable(cs, func(a, b int) bool { return int32(cs[a].seq-cs[b].seq) > 0 })
	}
	return j, copies, commits
}

// named is the name an orphan had, as a copy of its directory said.
type named struct {
	parent uint32
	name   string
	how    string
}

// OrphanName implements fs.Namer: the directory and name the journal's
// log gives an orphan.
func (f *FS) OrphanName(n fs.Node) (fs.OrphanName, bool) {
	f.namesOnce.Do(func() { f.names = f.findNames() })
	nm, ok := f.names[uint32(n)]
	if !ok {
		return fs.OrphanName{}, false
	}
	return fs.OrphanName{Parent: fs.Node(nm.parent), Name: nm.name, Source: nm.how}, true
}

// findNames gives orphans the names that copies of damaged directory
// blocks in the journal's log hold.
func (f *FS) findNames() map[uint32]named {
	orphans, _ := f.Orphans()
	if len(orphans) == 0 {
		return nil
	}
	isOrphan := make(map[uint32]bool, len(orphans))
	for _, o := range orphans {
		isOrphan[uint32(o)] = true
	}
	j, copies, commits := f.logCopies()
	if len(copies) == 0 {
		return nil
	}
	// every directory reached from the root or from an orphan directory
	reached := make(map[uint32]bool)
	f.reachWalk(rootIno, reached)
	for _, o := range orphans {
		f.reachWalk(uint32(o), reached)
	}
	dirs := make([]uint32, 0, len(reached))
	for ino := range reached {
		dirs = append(dirs, ino)
	}
	sort.Slice(dirs, func(a, b int) bool { return dirs[a] < dirs[b] })
	out := map[uint32]named{}
	buf := make([]byte, f.bs)
	for _, d := range dirs {
		in, err := f.readInode(d)
		if err != nil || in.typ() != sIFDIR || !f.hasBlockMap(in) {
			continue
		}
		p := &dirParser{bs: int(f.bs), filetype: f.filetype(), inodesCount: f.inodesCount, csum: f.metadataCsum,
			seed: f.inodeSeed(in.num, in.generation()), encrypted: in.flags&flagEncrypt != 0}
		var taken map[string]bool
		for _, r := range f.mapInode(in).Runs {
			if r.Kind != runData {
				continue
			}
			for i := uint64(0); i < r.N && r.Off+i < uint64(maxDirBytes)/uint64(f.bs); i++ {
				pb := r.Phys + i
				cs := copies[pb]
				if len(cs) == 0 || !f.dirBlockDamaged(p, buf, pb, r.Off+i == 0) {
					continue
				}
				c, ok := f.goodCopy(j, p, buf, cs, r.Off+i == 0)
				if !ok {
					continue
				}
				ents, _ := p.parseBlock(buf, r.Off+i == 0, nil)
				if taken == nil {
					taken = f.namesIn(in)
				}
				when := commits[c.seq]
				for _, e := range ents {
					if !isOrphan[e.ino] || taken[e.name] {
						continue
					}
					if _, done := out[e.ino]; done || !f.fitsEntry(e, when) {
						continue
					}
					how := fmt.Sprintf("the journal's copy of its directory's block %d (transaction %d", pb, c.seq)
					if when > 0 {
						how += ", " + time.Unix(when, 0).UTC().Format(time.RFC3339)
					}
					out[e.ino] = named{parent: d, name: e.name, how: how + ")"}
					taken[e.name] = true
				}
			}
		}
	}
	return out
}

// dirBlockDamaged reports whether directory block pb cannot be trusted:
// it lies in damage, cannot be read, or does not parse cleanly.
func (f *FS) dirBlockDamaged(p *dirParser, buf []byte, pb uint64, first bool) bool {
	if f.suspectBlock(pb) || f.readBlock(buf, pb) != nil {
		return true
	}
	_, problems := p.parseBlock(buf, first, nil)
	return len(problems) > 0
}

// goodCopy reads into buf the newest whole copy of a directory block
// among cs.
func (f *FS) goodCopy(j *journal, p *dirParser, buf []byte, cs []jcopy, first bool) (jcopy, bool) {
	for _, c := range cs {
		if f.suspect(c.off, f.bs) || f.readRaw(buf, c.off) != nil {
			continue
		}
		if c.escape {
			be.PutUint32(buf, jbdMagic)
		}
		if !j.copyCsumOK(buf, c.seq, c.csum) {
			continue
		}
		if _, problems := p.parseBlock(buf, first, nil); len(problems) == 0 {
			return c, true
		}
	}
	return jcopy{}, false
}

// namesIn returns the names a directory lists now.
func (f *FS) namesIn(in *inode) map[string]bool {
	ents, _ := f.dirents(in)
	out := make(map[string]bool, len(ents))
	for _, e := range ents {
		out[e.name] = true
	}
	return out
}

// fitsEntry reports whether the inode an entry names can be the file it
// named: the types agree and, where the inode records its creation, it was
// created no later than when (Unix seconds; 0: unknown).
func (f *FS) fitsEntry(e dirent, when int64) bool {
	in, err := f.readInode(e.ino)
	if err != nil || !in.validType() {
		return false
	}
	if t, ok := fs.DirentType(e.ft); f.filetype() && ok && t != typeMode(in.typ()) {
		return false
	}
	if when > 0 && in.has(0x98) {
		if crtime := in.time(0x90, 0x94); crtime.Unix() > when {
			return false
		}
	}
	return true
}

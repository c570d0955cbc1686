package ext4

import (
	"fmt"
	"sort"

	"github.com/vzsalvage/vzsalvage/fs/runmap"
)

// jbd2 constants (Linux include/linux/jbd2.h).
const (
	jbdMagic = 0xC03B3998

	jbdDescriptor = 1
	jbdCommit     = 2
	jbdSuperV1    = 3
	jbdSuperV2    = 4
	jbdRevoke     = 5

	jbdFlagEscape   = 1
	jbdFlagSameUUID = 2
	jbdFlagLastTag  = 8

	jbdIncompatRevoke     = 0x01
	jbdIncompat64Bit      = 0x02
	jbdIncompatCsumV2     = 0x08
	jbdIncompatCsumV3     = 0x10
	jbdIncompatFastCommit = 0x20

	jbdDefaultFCBlocks = 256
	jnlBackupBlocks    = 1 // s_jnl_backup_type: s_jnl_blocks holds i_block and size
)

// overlay maps filesystem blocks to the journal blocks replayed over them.
type overlay struct {
	m    map[uint64]jloc
	keys []uint64 // sorted keys of m
}

// jloc is where a replayed block's content lies on the volume.
type jloc struct {
	off    int64
	escape bool // the first four bytes must read as the jbd2 magic
}

// any reports whether any block of [pb, pb+n) is overlaid.
func (o *overlay) any(pb, n uint64) bool {
	i := sort.Search(len(o.keys), func(i int) bool { return o.keys[i] >= pb })
	return i < len(o.keys) && o.keys[i] < pb+n
}

// nextKey returns the first overlaid block at or after pb, or the largest
// uint64 if there is none.
func (o *overlay) nextKey(pb uint64) uint64 {
	i := sort.Search(len(o.keys), func(i int) bool { return o.keys[i] >= pb })
	if i == len(o.keys) {
		return ^uint64(0)
	}
	return o.keys[i]
}

// jsuper is a journal superblock.
type jsuper struct {
	blocksize, maxlen, first, sequence, start uint32
	compat, incompat                          uint32
	numFC                                     uint32
	seed                                      uint32
}

func (j *jsuper) csum() bool { return j.incompat&(jbdIncompatCsumV2|jbdIncompatCsumV3) != 0 }

// tagBytes is the size of a descriptor block tag (without the UUID).
func (j *jsuper) tagBytes() int {
	if j.incompat&jbdIncompatCsumV3 != 0 {
		return 16
	}
	n := 12
	if j.incompat&jbdIncompatCsumV2 != 0 {
		n += 2
	}
	if j.incompat&jbdIncompat64Bit == 0 {
		n -= 4
	}
	return n
}

// last returns one past the last block of the log ring.
func (j *jsuper) last() uint32 {
	if j.incompat&jbdIncompatFastCommit != 0 {
		fc := j.numFC
		if fc == 0 {
			fc = jbdDefaultFCBlocks
		}
		if fc < j.maxlen {
			return j.maxlen - fc
		}
	}
	return j.maxlen
}

// journal is an open internal journal: its superblock and where its blocks are.
type journal struct {
	f    *FS
	sb   jsuper
	runs runmap.Map
	buf  []byte
}

// pos returns the volume offset of journal block b, or -1.
func (j *journal) pos(b uint32) int64 {
	i, _ := j.runs.Find(uint64(b))
	if i < 0 || j.runs.Runs[i].Kind != runData {
		return -1
	}
	r := j.runs.Runs[i]
	return int64(r.Phys+uint64(b)-r.Off) * j.f.bs
}

// read reads journal block b into j.buf.
func (j *journal) read(b uint32) error {
	p := j.pos(b)
	if p < 0 {
		return fmt.Errorf("journal block %d not mapped", b)
	}
	return j.f.readRaw(j.buf, p)
}

// openJournal decides the view and, for the replayed one, builds f.jov.
func (f *FS) openJournal() (string, []string) {
	sb := f.sb
	needs := sb.incompat&incompatRecover != 0
	if sb.compat&compatHasJournal == 0 {
		if needs {
			return ViewOnDisk, []string{"needs_recovery set without a journal"}
		}
		return ViewOnDisk, nil
	}
	if sb.journalInum == 0 {
		if needs {
			return ViewOnDisk, []string{"journal needs recovery but is external: on-disk view"}
		}
		return ViewOnDisk, nil
	}
	if f.opt.Journal == OnDisk {
		if needs {
			return ViewOnDisk, []string{"journal needs recovery: reading the on-disk view (not replayed)"}
		}
		return ViewOnDisk, nil
	}
	j, problems := f.loadJournal()
	if j == nil {
		if needs {
			problems = append(problems, "journal needs recovery but cannot be read: on-disk view")
		}
		return ViewOnDisk, problems
	}
	if j.sb.start == 0 {
		if needs {
			problems = append(problems, "needs_recovery set but the journal is empty")
		}
		return ViewOnDisk, problems
	}
	switch {
	case f.sbBackup && !needs:
		// Backup superblocks never carry needs_recovery: the journal says.
		problems = append(problems, "superblock is a backup: the journal's own start decides recovery")
	case !needs && f.opt.Journal == Auto:
		return ViewOnDisk, append(problems, "journal holds transactions but needs_recovery is clear: not replayed")
	}
	ov, rp, clean := j.replay()
	problems = append(problems, rp...)
	if !clean && f.opt.Journal == Auto {
		return ViewOnDisk, append(problems, "journal does not replay cleanly: on-disk view")
	}
	if len(ov.m) == 0 {
		return ViewOnDisk, problems
	}
	f.jov = ov
	return ViewReplayed, problems
}

// loadJournal opens the journal inode (or, failing that, the superblock's
// backup of its block map) and reads the journal superblock.
func (f *FS) loadJournal() (*journal, []string) {
	var problems []string
	in, err := f.readInode(f.sb.journalInum)
	if err == nil && (in.mode == 0 || !in.csumOK || in.size < 2*f.bs) {
		err = fmt.Errorf("journal inode invalid")
	}
	if err != nil {
		problems = append(problems, fmt.Sprintf("journal inode: %v", err))
		if f.sb.jnlBackupType != jnlBackupBlocks {
			return nil, problems
		}
		in = &inode{num: f.sb.journalInum, b: make([]byte, max(f.inodeSize, 128))}
		for i := range 15 {
			le.PutUint32(in.b[0x28+4*i:], f.sb.jnlBlocks[i])
		}
		in.mode = sIFREG
		in.size = int64(f.sb.jnlBlocks[15])<<32 | int64(f.sb.jnlBlocks[16])
		if le.Uint16(in.iblock()) == extentMagic {
			in.flags = flagExtents
		}
		problems = append(problems, "using the superblock's backup of the journal block map")
	}
	m := f.mapInode(in)
	for _, p := range m.Problems {
		problems = append(problems, "journal: "+p)
	}
	j := &journal{f: f, runs: m.Map, buf: make([]byte, f.bs)}
	if err := j.read(0); err != nil {
		return nil, append(problems, fmt.Sprintf("journal superblock: %v", err))
	}
	b := j.buf
	if be.Uint32(b) != jbdMagic || (be.Uint32(b[4:]) != jbdSuperV1 && be.Uint32(b[4:]) != jbdSuperV2) {
		return nil, append(problems, "journal superblock: bad magic")
	}
	js := jsuper{
		blocksize: be.Uint32(b[0x0C:]),
		maxlen:    be.Uint32(b[0x10:]),
		first:     be.Uint32(b[0x14:]),
		sequence:  be.Uint32(b[0x18:]),
		start:     be.Uint32(b[0x1C:]),
	}
	if be.Uint32(b[4:]) == jbdSuperV2 {
		js.compat = be.Uint32(b[0x24:])
		js.incompat = be.Uint32(b[0x28:])
		js.numFC = be.Uint32(b[0x54:])
	}
	jblocks := uint64(in.size) / uint64(f.bs)
	switch {
	case int64(js.blocksize) != f.bs:
		return nil, append(problems, fmt.Sprintf("journal block size %d differs from the filesystem's", js.blocksize))
	case js.maxlen < 2 || uint64(js.maxlen) > jblocks:
		return nil, append(problems, fmt.Sprintf("journal length %d invalid", js.maxlen))
	case js.first == 0 || js.first >= js.last():
		return nil, append(problems, fmt.Sprintf("journal first block %d invalid", js.first))
	case js.start != 0 && (js.start < js.first || js.start >= js.last()):
		return nil, append(problems, fmt.Sprintf("journal start %d invalid", js.start))
	}
	if js.csum() {
		c := crc32c(^uint32(0), b[:0xFC])
		c = crc32c(c, []byte{0, 0, 0, 0})
		c = crc32c(c, b[0x100:0x400])
		if c != be.Uint32(b[0xFC:]) {
			return nil, append(problems, "journal superblock checksum mismatch")
		}
		js.seed = crc32c(^uint32(0), b[0x30:0x40])
	}
	j.sb = js
	return j, problems
}

// jtag is one block logged by a transaction.
type jtag struct {
	target uint64 // filesystem block
	log    uint32 // journal block holding its new content
	escape bool
	csum   uint32
}

// jtrans is one transaction found in the log.
type jtrans struct {
	seq     uint32
	tags    []jtag
	revokes []uint64
}

// blockCsumOK verifies a descriptor or revoke block's tail checksum.
func (j *journal) blockCsumOK(b []byte) bool {
	n := len(b)
	c := crc32c(j.sb.seed, b[:n-4])
	c = crc32c(c, []byte{0, 0, 0, 0})
	return c == be.Uint32(b[n-4:])
}

// commitCsumOK verifies a commit block's checksum (csum v2/v3).
func (j *journal) commitCsumOK(b []byte) bool {
	c := crc32c(j.sb.seed, b[:0x10])
	c = crc32c(c, []byte{0, 0, 0, 0})
	c = crc32c(c, b[0x14:])
	return c == be.Uint32(b[0x10:])
}

// eachTag calls fn with each tag of descriptor block b (log unset), in
// order, until fn returns false.
func (j *journal) eachTag(b []byte, fn func(jtag) bool) {
	js := &j.sb
	tagBytes := js.tagBytes()
	csumSize := 0
	if js.csum() {
		csumSize = 4
	}
	for p := 12; p+tagBytes <= len(b)-csumSize; {
		t := b[p:]
		var flags uint32
		var tg jtag
		tg.target = uint64(be.Uint32(t))
		if js.incompat&jbdIncompatCsumV3 != 0 {
			flags = be.Uint32(t[4:])
			tg.csum = be.Uint32(t[12:])
		} else {
			tg.csum = uint32(be.Uint16(t[4:]))
			flags = uint32(be.Uint16(t[6:]))
		}
		if js.incompat&jbdIncompat64Bit != 0 {
			tg.target |= uint64(be.Uint32(t[8:])) << 32
		}
		tg.escape = flags&jbdFlagEscape != 0
		if !fn(tg) {
			return
		}
		p += tagBytes
		if flags&jbdFlagSameUUID == 0 {
			p += 16
		}
		if flags&jbdFlagLastTag != 0 {
			return
		}
	}
}

// copyCsumOK verifies a logged block's tag checksum (csum v2/v3) for
// transaction seq; true when the journal has no checksums.
func (j *journal) copyCsumOK(b []byte, seq, want uint32) bool {
	if !j.sb.csum() {
		return true
	}
	var sq [4]byte
	be.PutUint32(sq[:], seq)
	c := crc32c(crc32c(j.sb.seed, sq[:]), b)
	if j.sb.incompat&jbdIncompatCsumV3 == 0 {
		c &= 0xFFFF
	}
	return c == want
}

// replay scans the log from its start, collects committed transactions and
// revoke records, and returns the overlay of the blocks to replay. clean is
// false when anything had to be skipped (a checksum mismatch, an
// unreadable block); an incomplete last transaction is normal and skipped
// silently, as the kernel does.
func (j *journal) replay() (*overlay, []string, bool) {
	js := &j.sb
	var problems []string
	clean := true
	fail := func(format string, args ...any) {
		problems = append(problems, "journal: "+fmt.Sprintf(format, args...))
		clean = false
	}
	ring := js.last() - js.first
	next := js.start
	advance := func() {
		next++
		if next >= js.last() {
			next = js.first
		}
	}
	seq := js.sequence
	var committed []jtrans
	cur := jtrans{seq: seq}
	csumSize := 0
	if js.csum() {
		csumSize = 4
	}
	b := j.buf
	steps := uint32(0)
scan:
	for steps < ring {
		at := next
		if err := j.read(at); err != nil {
			fail("block %d: %v", at, err)
			break
		}
		steps++
		advance()
		if be.Uint32(b) != jbdMagic || be.Uint32(b[8:]) != seq {
			break // the end of the log
		}
		switch be.Uint32(b[4:]) {
		case jbdDescriptor:
			if csumSize > 0 && !j.blockCsumOK(b) {
				fail("descriptor block %d checksum mismatch (transaction %d)", at, seq)
				break scan
			}
			past := false
			j.eachTag(b, func(tg jtag) bool {
				tg.log = next
				advance()
				steps++
				if steps > ring {
					past = true
					return false
				}
				cur.tags = append(cur.tags, tg)
				return true
			})
			if past {
				fail("transaction %d runs past the log", seq)
				break scan
			}
		case jbdCommit:
			if csumSize > 0 && !j.commitCsumOK(b) {
				fail("commit block %d checksum mismatch (transaction %d)", at, seq)
				break scan
			}
			committed = append(committed, cur)
			seq++
			cur = jtrans{seq: seq}
		case jbdRevoke:
			if csumSize > 0 && !j.blockCsumOK(b) {
				fail("revoke block %d checksum mismatch (transaction %d)", at, seq)
				break scan
			}
			rcount := int(be.Uint32(b[12:]))
			if rcount > len(b)-csumSize || rcount < 16 {
				fail("revoke block %d: bad record count %d", at, rcount)
				break scan
			}
			rl := 4
			if js.incompat&jbdIncompat64Bit != 0 {
				rl = 8
			}
			for p := 16; p+rl <= rcount; p += rl {
				if rl == 8 {
					cur.revokes = append(cur.revokes, be.Uint64(b[p:]))
				} else {
					cur.revokes = append(cur.revokes, uint64(be.Uint32(b[p:])))
				}
			}
		default:
			break scan
		}
	}
	if js.incompat&jbdIncompatFastCommit != 0 {
		problems = append(problems, "journal: fast-commit blocks are not replayed")
	}

	// Revoke records of committed transactions hide earlier copies of a block.
	revoked := make(map[uint64]uint32)
	for _, t := range committed {
		for _, r := range t.revokes {
			if old, ok := revoked[r]; !ok || int32(t.seq-old) > 0 {
				revoked[r] = t.seq
			}
		}
	}
	ov := &overlay{m: make(map[uint64]jloc)}
	for _, t := range committed {
		for _, tg := range t.tags {
			if r, ok := revoked[tg.target]; ok && int32(r-t.seq) >= 0 {
				continue
			}
			if tg.target >= j.f.sb.blocksCount {
				fail("transaction %d logs block %d, outside the filesystem", t.seq, tg.target)
				continue
			}
			p := j.pos(tg.log)
			if p < 0 {
				fail("journal block %d not mapped", tg.log)
				continue
			}
			if csumSize > 0 {
				if err := j.read(tg.log); err != nil {
					fail("block %d: %v", tg.log, err)
					continue
				}
				if !j.copyCsumOK(b, t.seq, tg.csum) {
					fail("transaction %d: checksum mismatch in the copy of block %d", t.seq, tg.target)
					continue
				}
			}
			if j.f.suspect(p, j.f.bs) {
				fail("transaction %d: the copy of block %d lies in a damaged range", t.seq, tg.target)
			}
			ov.m[tg.target] = jloc{off: p, escape: tg.escape}
		}
	}
	ov.keys = sortedKeys(ov.m)
	return ov, problems, clean
}

// replayedSuperblock returns the superblock as replayed from the journal,
// or nil when the journal holds no valid copy of it.
func (f *FS) replayedSuperblock() *superblock {
	blk := uint64(sbOffset / f.bs)
	if _, ok := f.jov.m[blk]; !ok {
		return nil
	}
	b := make([]byte, f.bs)
	if f.readBlock(b, blk) != nil {
		return nil
	}
	off := sbOffset % f.bs
	sb := parseSuperblock(b[off : off+sbSize])
	if sb.validate() != nil || !sb.csumOK || sb.uuid != f.sb.uuid {
		return nil
	}
	return sb
}

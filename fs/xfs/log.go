package xfs

import (
	"fmt"
	"hash/crc32"
)

// logMaxScan bounds the log read (the largest log XFS makes is 2 GiB).
const logMaxScan = 2 << 30

// openLog finds the internal log's head. A log that ends with an unmount
// record is clean: nothing to say. A dirty one is replayed in memory into
// f.ov as Options.Log says.
// It returns the view read (empty for a clean log) and the problems.
func (f *FS) openLog() (string, []string) {
	s := f.sb
	if s.logStart == 0 {
		return "", []string{"external log: its state is unknown"}
	}
	if !f.fsbOK(s.logStart, uint64(s.logBlocks)) || s.logBlocks == 0 {
		return "", []string{"log location invalid: its state is unknown"}
	}
	l := &logGeom{f: f, start: f.fsbPos(s.logStart), bbs: min(int64(s.logBlocks)*f.bs, logMaxScan) / logBB}
	head, err := l.findHead()
	if err != nil {
		return "", []string{err.Error() + ": its state is unknown"}
	}
	if head.numOps >= 1 && len(head.data) >= 12 && head.data[8] == logClientLog && head.data[9]&opUnmount != 0 {
		return "", nil
	}
	if f.opt.Log == LogOnDisk {
		return ViewOnDisk, []string{"log is dirty, not replayed (read as on disk, like mount -o norecovery): recent changes may be missing"}
	}
	// The overlay may hold 16 times the log's size and 64 MiB more, 1 GiB at most:
	// every replayed sector comes from the log (inode chunks from items
	// of a few bytes, hence the factor).
	p := &replayer{
		f:       f,
		ov:      newOverlay(int(min(16*l.bbs+(64<<20)/logBB, 2<<20))),
		cancel:  map[[2]int64]int{},
		pending: map[[2]int64]uint64{},
		intents: map[uint16]int{},
		blocks:  map[int64]bool{},
		// Reads and writes: 64 times the log's size and 1 GiB more (a
		// real log needs a fraction of it; a forged one may not stall).
		maxWork: 64*l.bbs*logBB + 1<<30,
	}
	p.pass = 1
	if _, err := l.walkLog(head, p.commit); err != nil && f.opt.Log == LogAuto {
		return ViewOnDisk, []string{fmt.Sprintf("log is dirty and damaged (%v): not replayed, read as on disk (a partial replay would pair older metadata with newer file data); recent changes may be missing", err)}
	}
	p.pass = 2
	f.ov = p.ov
	_, werr := l.walkLog(head, p.commit)
	if err := p.flush(); err != nil && werr == nil {
		werr = err
	}
	if werr != nil && f.opt.Log == LogAuto { // the overlay's bound
		f.ov = nil
		f.cache.Reset()
		return ViewOnDisk, []string{fmt.Sprintf("log is dirty (%v): not replayed, read as on disk; recent changes may be missing", werr)}
	}
	f.ov.seal()
	f.cache.Reset() // blocks read before the replay are stale
	if p.blocks[0] {
		f.replayedSuperblock()
	}
	blocks := map[int64]bool{}
	for d := range p.blocks {
		blocks[d*logBB/f.bs] = true
	}
	problems := []string{fmt.Sprintf("log replayed: %d transactions, %d blocks (in memory, as a mount would; the image is unchanged)", p.trans, len(blocks))}
	if werr != nil {
		problems = append(problems, fmt.Sprintf("log damaged (%v): replayed up to the last whole record before it, later changes are lost", werr))
	}
	if p.skipped > 0 {
		problems = append(problems, fmt.Sprintf("%d log items invalid, not replayed", p.skipped))
	}
	unfinished := 0
	for _, t := range []uint16{0x1236, 0x1240, 0x1242, 0x1244, 0x1246, 0x1248, 0x124a, 0x124c, 0x124e} {
		unfinished += max(0, p.intents[t]-p.intents[t+1])
	}
	if unfinished > 0 {
		problems = append(problems, fmt.Sprintf("%d unfinished intents (extent frees, mapping or attribute updates) not carried out: a mount would finish them", unfinished))
	}
	return ViewReplayed, problems
}

// replayedSuperblock takes the size of the filesystem (its block and AG
// counts, which growfs changes) from the primary superblock as replayed,
// when it is valid and has the same geometry.
func (f *FS) replayedSuperblock() {
	b := make([]byte, 512)
	if f.readAt(b, 0) != nil {
		return
	}
	n := parseSuperblock(b)
	o := f.sb
	if n.validate(be.Uint32(b)) != nil || n.blockSize != o.blockSize || n.agBlocks != o.agBlocks ||
		n.inodeSize != o.inodeSize || n.agBlkLog != o.agBlkLog || n.inoPBLog != o.inoPBLog || n.uuid != o.uuid {
		return
	}
	o.dblocks, o.agCount = n.dblocks, n.agCount
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

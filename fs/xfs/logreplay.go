package xfs

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// LogMode selects which view of a filesystem with a dirty log is read.
type LogMode int

const (
	// LogAuto (the default) replays the committed transactions of a
	// dirty log in memory, as a mount would, when the log reads whole
	// from its tail to its head (a torn last write is passed over, as
	// the kernel does). A log damaged before its head is not replayed:
	// the filesystem is read as on disk and the damage reported, since
	// replaying part of it would pair metadata of one moment with file
	// data written later (the kernel refuses to mount such a log).
	LogAuto LogMode = iota
	// LogReplay replays every committed transaction up to the damage of
	// a damaged log. Files changed after that point may read with data
	// their blocks received later: nothing checks it.
	LogReplay
	// LogOnDisk reads the filesystem as it is on disk, like
	// mount -o norecovery. The image is never written in any mode.
	LogOnDisk
)

// Views reported in fs.Info.View when the log is dirty.
const (
	ViewOnDisk   = "on-disk"
	ViewReplayed = "replayed"
)

// The log's on-disk format (the kernel's libxfs/xfs_log_format.h and the
// "XFS Algorithms & Data Structures" book, chapter "Journaling Log").
const (
	logBB            = 512       // log block ("basic block") size
	logCycleSize     = 32 << 10  // bytes of record data one header's cycle data covers
	logMaxRecord     = 256 << 10 // largest record (h_len, h_size)
	logRecHdrSize    = 328       // bytes of the record header under its checksum
	logRecHdrSizeOld = 324       // the same on i386
	logExtHdrCsum    = 260       // bytes of an extended header under the checksum
	logMaxTorn       = 64        // newest record headers tried for the head

	logClientTrans = 0x69
	logClientLog   = 0xaa

	opStart    = 0x01
	opCommit   = 0x02
	opContinue = 0x04
	opWasCont  = 0x08
	opEnd      = 0x10
	opUnmount  = 0x20

	transHeaderMagic = 0x5452414e // "TRAN", in the writer's byte order
	transHeaderSize  = 16
	maxItemRegions   = 257 // XLOG_MAX_REGIONS_IN_ITEM

	liEFI     = 0x1236
	liInode   = 0x123b
	liBuf     = 0x123c
	liIcreate = 0x123f
	liLast    = 0x124f // highest item type known
)

// logGeom locates the internal log on the volume.
type logGeom struct {
	f     *FS
	start int64 // volume byte offset of the log
	bbs   int64 // log size in 512-byte blocks
}

// read returns n log blocks from block blk on, wrapping at the log's end.
func (l *logGeom) read(blk, n int64) ([]byte, error) {
	if n < 0 || n > l.bbs {
		return nil, fmt.Errorf("%d blocks do not fit in the log", n)
	}
	b := make([]byte, n*logBB)
	for done := int64(0); done < n; {
		p := (blk + done) % l.bbs
		k := min(n-done, l.bbs-p)
		if err := l.f.readRaw(b[done*logBB:(done+k)*logBB], l.start+p*logBB); err != nil {
			return nil, err
		}
		done += k
	}
	return b, nil
}

// logRecord is one log record, its data with the cycle stamps undone.
type logRecord struct {
	blk     int64  // block of its header
	lsn     uint64 // cycle<<32 | blk
	tail    uint64 // h_tail_lsn
	hblks   int64  // header blocks (1 + extended headers)
	dataBBs int64  // data blocks
	numOps  int
	data    []byte
}

func lsnOf(cycle uint32, blk int64) uint64 { return uint64(cycle)<<32 | uint64(blk) }

// headerOK checks a candidate record header at log block blk: magic,
// version, an LSN naming this block and sane lengths.
func headerOK(h []byte, blk int64) bool {
	if be.Uint32(h) != logRecordMagic {
		return false
	}
	cycle, ver, n := be.Uint32(h[4:]), be.Uint32(h[8:]), be.Uint32(h[12:])
	lsn := be.Uint64(h[16:])
	return (ver == 1 || ver == 2) && cycle != 0 && lsn == lsnOf(cycle, blk) && n > 0 && n <= logMaxRecord &&
		be.Uint32(h[320:]) <= logMaxRecord
}

// readRecord reads and checks the record whose header is at blk, written
// in cycle: header, checksum, then undoes the cycle stamping.
func (l *logGeom) readRecord(blk int64, cycle uint32) (*logRecord, error) {
	h, err := l.read(blk, 1)
	if err != nil {
		return nil, err
	}
	if !headerOK(h, blk) || be.Uint32(h[4:]) != cycle {
		return nil, errors.New("no valid record header")
	}
	r := &logRecord{blk: blk, lsn: be.Uint64(h[16:]), tail: be.Uint64(h[24:]), hblks: 1}
	hlen := int64(be.Uint32(h[12:]))
	if sz := int64(be.Uint32(h[320:])); be.Uint32(h[8:]) == 2 && sz > logCycleSize {
		r.hblks = (sz + logCycleSize - 1) / logCycleSize
	}
	r.dataBBs = (hlen + logBB - 1) / logBB
	if r.hblks+r.dataBBs > l.bbs || (r.dataBBs+63)/64 > r.hblks {
		return nil, errors.New("record longer than the log or its headers")
	}
	hdrs := h
	if r.hblks > 1 {
		if hdrs, err = l.read(blk, r.hblks); err != nil {
			return nil, err
		}
	}
	data, err := l.read(blk+r.hblks, r.dataBBs)
	if err != nil {
		return nil, err
	}
	// (the cycle stamps are undone in whole blocks: hlen need not be a
	// multiple of a block)
	if !recordCRCOK(hdrs, data[:hlen]) {
		return nil, errors.New("record checksum mismatch (a torn or damaged write)")
	}
	for i := int64(0); i < r.dataBBs; i++ {
		j, k := i/64, i%64
		var saved []byte
		if j == 0 {
			saved = hdrs[44+4*k:]
		} else {
			saved = hdrs[j*logBB+4+4*k:]
		}
		if be.Uint32(data[i*logBB:]) != cycle && !(blk+r.hblks+i >= l.bbs && be.Uint32(data[i*logBB:]) == cycle+1) {
			return nil, fmt.Errorf("data block %d of the record is from another cycle", i)
		}
		copy(data[i*logBB:i*logBB+4], saved[:4])
	}
	r.data = data[:hlen]
	r.numOps = int(min(be.Uint32(h[40:]), uint32(hlen/12)))
	return r, nil
}

// recordCRCOK verifies a record's checksum (CRC32c over the header, the
// cycle data of the extended headers and the data as written). A zero
// checksum is accepted, as the kernel does: mkfs writes its unmount
// record without one.
func recordCRCOK(hdrs, data []byte) bool {
	want := le.Uint32(hdrs[32:])
	return want == 0 || recordCRC(hdrs, data, logRecHdrSize) == want || recordCRC(hdrs, data, logRecHdrSizeOld) == want
}

// recordCRC computes a record's checksum with a header of n bytes.
func recordCRC(hdrs, data []byte, n int) uint32 {
	xheads := (len(data) + logCycleSize - 1) / logCycleSize
	c := crc32.Update(0, castagnoli, hdrs[:32])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	c = crc32.Update(c, castagnoli, hdrs[36:n])
	for i := 1; i < xheads && (i+1)*logBB <= len(hdrs); i++ {
		c = crc32.Update(c, castagnoli, hdrs[i*logBB:i*logBB+logExtHdrCsum])
	}
	return crc32.Update(c, castagnoli, data)
}

// findHead returns the log's newest whole record: the valid header with
// the highest LSN whose record reads back with a good checksum (a torn
// last write is passed over, as the kernel does).
func (l *logGeom) findHead() (*logRecord, error) {
	type cand struct {
		lsn uint64
		blk int64
	}
	var cands []cand
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	size := l.bbs * logBB
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		if err := l.f.readRaw(buf[:n], l.start+off); err != nil {
			return nil, fmt.Errorf("log unreadable: %v", err)
		}
		for i := int64(0); i+logBB <= n; i += logBB {
			if blk := (off + i) / logBB; headerOK(buf[i:], blk) {
				cands = append(cands, cand{be.Uint64(buf[i+16:]), blk})
			}
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(b.lsn, a.lsn) })
	// Only the last few records can be torn (the kernel has at most 8
	// writes in flight); trying more would let a log full of bad headers
	// cost a read of up to 256 KiB each.
	for _, c := range cands[:min(len(cands), logMaxTorn)] {
		if r, err := l.readRecord(c.blk, uint32(c.lsn>>32)); err == nil {
			return r, nil
		}
	}
	return nil, errors.New("log holds no valid record")
}

// logTrans is a transaction being put together from its ops.
type logTrans struct {
	lsn    uint64 // LSN of the record holding its start
	order  binary.ByteOrder
	header []byte
	items  []*logItem
}

// logItem is one log item: its regions, the first being its format.
type logItem struct {
	regions [][]byte
	total   int
}

// typ returns the item's type, 0 if it has no format region yet.
func (it *logItem) typ(o binary.ByteOrder) uint16 {
	if len(it.regions) == 0 || len(it.regions[0]) < 4 {
		return 0
	}
	return o.Uint16(it.regions[0])
}

// walkLog reads the records from the tail to head and calls commit for
// each committed transaction, in log order. It returns the number of
// records read and an error describing where and why it stopped early.
func (l *logGeom) walkLog(head *logRecord, commit func(*logTrans) error) (int, error) {
	blk := int64(uint32(head.tail))
	cycle := uint32(head.tail >> 32)
	if blk >= l.bbs || head.tail > head.lsn {
		return 0, fmt.Errorf("the head record names an invalid tail (block %d)", blk)
	}
	open := map[uint32]*logTrans{}
	records := 0
	for walked := int64(0); ; {
		r, err := l.readRecord(blk, cycle)
		if err != nil {
			return records, fmt.Errorf("log block %d: %v", blk, err)
		}
		if r.lsn > head.lsn {
			return records, fmt.Errorf("log block %d: a record newer than the head", blk)
		}
		if err := processOps(r, open, commit); err != nil {
			return records, fmt.Errorf("log block %d: %v", blk, err)
		}
		records++
		if r.lsn == head.lsn {
			return records, nil
		}
		adv := r.hblks + r.dataBBs
		if walked += adv; walked >= l.bbs {
			return records, errors.New("the records from the tail do not reach the head")
		}
		if blk += adv; blk >= l.bbs {
			blk -= l.bbs
			cycle++
		}
	}
}

// processOps joins a record's ops to their transactions by transaction id
// and hands each committed one to commit.
func processOps(r *logRecord, open map[uint32]*logTrans, commit func(*logTrans) error) error {
	d := r.data
	off := 0
	for range r.numOps {
		if off+12 > len(d) {
			return errors.New("op header past the record's end")
		}
		tid, n := be.Uint32(d[off:]), int(be.Uint32(d[off+4:]))
		client, flags := d[off+8], d[off+9]
		off += 12
		if n < 0 || n > len(d)-off {
			return errors.New("op data past the record's end")
		}
		p := d[off : off+n]
		off += n
		if client != logClientTrans && client != logClientLog {
			return fmt.Errorf("op of unknown client 0x%x", client)
		}
		t := open[tid]
		if t == nil {
			if flags&opStart != 0 {
				if len(open) >= 1<<16 {
					return errors.New("too many open transactions")
				}
				open[tid] = &logTrans{lsn: r.lsn}
			}
			continue // ops of a transaction begun before the tail
		}
		fl := flags &^ opEnd
		if fl&opWasCont != 0 {
			fl &^= opContinue
		}
		var err error
		switch fl {
		case 0, opContinue:
			err = t.add(p)
		case opWasCont:
			err = t.addCont(p)
		case opCommit:
			delete(open, tid)
			err = commit(t)
		case opUnmount:
			delete(open, tid)
		default:
			err = fmt.Errorf("op with flags 0x%x", flags)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// add appends a region: the transaction header first, then each item's
// format region (which says how many regions the item has) and data.
func (t *logTrans) add(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if t.order == nil && len(t.items) == 0 {
		if len(t.header) > 0 || len(p) > transHeaderSize {
			return errors.New("bad transaction header")
		}
		t.header = append([]byte(nil), p...)
		return t.setOrder()
	}
	if t.order == nil {
		return errors.New("transaction header incomplete")
	}
	var it *logItem
	if n := len(t.items); n > 0 && (t.items[n-1].total == 0 || len(t.items[n-1].regions) < t.items[n-1].total) {
		it = t.items[n-1]
	} else {
		it = &logItem{}
		t.items = append(t.items, it)
	}
	if it.total == 0 {
		if len(p) < 4 {
			return errors.New("log item format too short")
		}
		it.total = int(t.order.Uint16(p[2:]))
		if it.total == 0 || it.total > maxItemRegions {
			return fmt.Errorf("log item with %d regions", it.total)
		}
	}
	it.regions = append(it.regions, p)
	return nil
}

// addCont appends the rest of a region split across records.
func (t *logTrans) addCont(p []byte) error {
	if t.order == nil {
		if len(t.header)+len(p) > transHeaderSize {
			return errors.New("bad transaction header")
		}
		t.header = append(t.header, p...)
		return t.setOrder()
	}
	n := len(t.items)
	if n == 0 || len(t.items[n-1].regions) == 0 {
		return errors.New("continuation of nothing")
	}
	it := t.items[n-1]
	last := it.regions[len(it.regions)-1]
	it.regions[len(it.regions)-1] = append(last[:len(last):len(last)], p...)
	return nil
}

// setOrder learns the writer's byte order from a complete header's magic.
func (t *logTrans) setOrder() error {
	if len(t.header) < transHeaderSize {
		return nil
	}
	switch {
	case le.Uint32(t.header) == transHeaderMagic:
		t.order = le
	case be.Uint32(t.header) == transHeaderMagic:
		t.order = be
	default:
		return errors.New("bad transaction header magic")
	}
	return nil
}

package xfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Buffer log item flags (blf_flags) and its data map unit.
const (
	blfInodeBuf = 0x1
	blfCancel   = 0x2
	blfDquotBuf = 0x4 | 0x8 | 0x10
	blfChunk    = 128 // bytes per data map bit
	blfMapWords = 17  // XFS_BLF_DATAMAP_SIZE
)

// Inode log item fields (ilf_fields).
const (
	ilogCore   = 0x001
	ilogDData  = 0x002
	ilogDExt   = 0x004
	ilogDBroot = 0x008
	ilogDev    = 0x010
	ilogAData  = 0x040
	ilogAExt   = 0x080
	ilogABroot = 0x100
	ilogDFork  = ilogDData | ilogDExt | ilogDBroot
	ilogAFork  = ilogAData | ilogAExt | ilogABroot
)

// errReplayBound stops a replay whose changes outgrow the memory bound,
// or whose reads and writes outgrow the work bound.
var errReplayBound = errors.New("the replay outgrows its memory or work bound")

// maxBufSectors bounds a buffer replay reads: the largest metadata block
// (64 KiB) or inode cluster (128 KiB).
const maxBufSectors = 256

// replayer applies committed transactions to an overlay, in two passes
// over the log as the kernel does: the first finds cancelled buffers
// (freed metadata whose older logged copies must not be replayed), the
// second replays.
type replayer struct {
	f       *FS
	ov      *overlay
	pass    int
	cancel  map[[2]int64]int // (daddr, length in sectors) -> cancel records
	pending map[[2]int64]uint64
	lastLSN uint64

	trans, items, skipped int
	intents               map[uint16]int // intent and done items by type
	blocks                map[int64]bool // sectors replayed
	work, maxWork         int64          // bytes read and written, and their bound
}

// commit handles one committed transaction in the current pass.
func (p *replayer) commit(t *logTrans) error {
	if t.order == nil {
		return nil // an empty transaction
	}
	if p.pass == 1 {
		for _, it := range t.items {
			if it.typ(t.order) == liBuf {
				if b, ok := parseBufFormat(it, t.order); ok && b.flags&blfCancel != 0 {
					p.cancel[[2]int64{b.daddr, b.sectors}]++
				}
			}
		}
		return nil
	}
	// Buffers replayed are stamped with their transaction's LSN (and get
	// their checksum) once every transaction of the same start LSN is
	// done, as the kernel writes them back: until then a transaction
	// sharing the LSN must not see them as newer.
	if t.lsn != p.lastLSN {
		if err := p.flush(); err != nil {
			return err
		}
		p.lastLSN = t.lsn
	}
	p.trans++
	// The kernel's order within a transaction: buffers and inode chunk
	// creations, then inodes (and the items not replayed here), then
	// inode buffers, then cancellations.
	var bufs, rest, ibufs, cancels []*logItem
	for _, it := range t.items {
		switch it.typ(t.order) {
		case liBuf:
			b, ok := parseBufFormat(it, t.order)
			switch {
			case !ok:
				bufs = append(bufs, it)
			case b.flags&blfCancel != 0:
				cancels = append(cancels, it)
			case b.flags&blfInodeBuf != 0:
				ibufs = append(ibufs, it)
			default:
				bufs = append(bufs, it)
			}
		case liIcreate:
			bufs = append(bufs, it)
		default:
			rest = append(rest, it)
		}
	}
	for _, list := range [][]*logItem{bufs, rest, ibufs, cancels} {
		for _, it := range list {
			if err := p.item(t, it); err != nil {
				return err
			}
		}
	}
	return nil
}

// item replays one log item of the second pass.
func (p *replayer) item(t *logTrans, it *logItem) error {
	var err error
	switch typ := it.typ(t.order); typ {
	case liBuf:
		err = p.buffer(t, it)
	case liInode:
		err = p.inode(t, it)
	case liIcreate:
		err = p.icreate(t, it)
	default:
		if typ >= liEFI && typ <= liLast {
			p.intents[typ]++
		}
		return nil
	}
	if errors.Is(err, errReplayBound) {
		return err
	}
	if err != nil {
		p.skipped++
	} else {
		p.items++
	}
	return nil
}

// bufFormat is a buffer log item's format region.
type bufFormat struct {
	flags   uint16
	daddr   int64
	sectors int64
	bitmap  []uint32
}

func parseBufFormat(it *logItem, o binary.ByteOrder) (bufFormat, bool) {
	r := it.regions[0]
	if len(r) < 24 {
		return bufFormat{}, false
	}
	b := bufFormat{flags: o.Uint16(r[4:]) & 0x7ff, sectors: int64(o.Uint16(r[6:])), daddr: int64(o.Uint64(r[8:]))}
	words := int(min(o.Uint32(r[16:]), blfMapWords, uint32((len(r)-20)/4)))
	for i := range words {
		b.bitmap = append(b.bitmap, o.Uint32(r[20+4*i:]))
	}
	return b, true
}

// bit reports whether data map bit i is set.
func (b *bufFormat) bit(i int) bool {
	return i/32 < len(b.bitmap) && b.bitmap[i/32]&(1<<(i%32)) != 0
}

// runs returns the data map's runs of set bits as (first bit, bits).
func (b *bufFormat) runs() [][2]int {
	var out [][2]int
	n := len(b.bitmap) * 32
	for i := 0; i < n; {
		if !b.bit(i) {
			i++
			continue
		}
		j := i
		for j < n && b.bit(j) {
			j++
		}
		out = append(out, [2]int{i, j - i})
		i = j
	}
	return out
}

// readBuf reads a buffer as replay sees it (the image under the overlay).
func (p *replayer) readBuf(daddr, sectors int64) ([]byte, error) {
	// Bounded by the volume, not the superblock: a growfs in the log
	// writes past the old size.
	if daddr < 0 || sectors <= 0 || sectors > maxBufSectors || (daddr+sectors)*logBB > p.f.size {
		return nil, fmt.Errorf("buffer at sector %d (+%d) outside the volume", daddr, sectors)
	}
	if p.work += sectors * logBB; p.work > p.maxWork {
		return nil, errReplayBound
	}
	b := make([]byte, sectors*logBB)
	if err := p.f.readAt(b, daddr*logBB); err != nil {
		return nil, err
	}
	return b, nil
}

func (p *replayer) write(daddr int64, b []byte) error {
	if !p.ov.put(daddr, b) {
		return errReplayBound
	}
	for i := range int64(len(b) / logBB) {
		p.blocks[daddr+i] = true
	}
	return nil
}

// buffer replays a buffer log item: the logged 128-byte chunks over the
// buffer, unless the buffer was cancelled later in the log or (v5) its
// on-disk copy is already as new as the transaction.
func (p *replayer) buffer(t *logTrans, it *logItem) error {
	b, ok := parseBufFormat(it, t.order)
	if !ok {
		return errors.New("short buffer item")
	}
	key := [2]int64{b.daddr, b.sectors}
	if b.flags&blfCancel != 0 {
		if n := p.cancel[key]; n > 0 {
			if n == 1 {
				delete(p.cancel, key)
			} else {
				p.cancel[key] = n - 1
			}
			return nil
		}
	} else if p.cancel[key] > 0 {
		return nil
	}
	if b.flags&blfDquotBuf != 0 {
		return nil // quota records: nothing a reader of files needs
	}
	buf, err := p.readBuf(b.daddr, b.sectors)
	if err != nil {
		return err
	}
	if p.f.v5 {
		if lsn, ok := p.f.bufLSN(buf); ok && lsn != 0 && lsn != ^uint64(0) && lsn >= t.lsn {
			return nil // the block on disk is newer
		}
	}
	runs := b.runs()
	if b.flags&blfInodeBuf != 0 {
		p.inodeBuffer(buf, it, runs)
	} else {
		for i, r := range runs {
			if i+1 >= len(it.regions) {
				break
			}
			at := r[0] * blfChunk
			if at >= len(buf) {
				break
			}
			copy(buf[at:min(at+r[1]*blfChunk, len(buf))], it.regions[i+1])
		}
		p.pending[key] = t.lsn
	}
	return p.write(b.daddr, buf)
}

// inodeBuffer replays an inode buffer item: of the logged chunks only the
// unlinked list pointers (di_next_unlinked) count.
func (p *replayer) inodeBuffer(buf []byte, it *logItem, runs [][2]int) {
	isz := int(p.f.sb.inodeSize)
	for i := 0; (i+1)*isz <= len(buf); i++ {
		at := i*isz + 96
		for k, r := range runs {
			lo := r[0] * blfChunk
			if at < lo || at+4 > lo+r[1]*blfChunk || k+1 >= len(it.regions) || at+4-lo > len(it.regions[k+1]) {
				continue
			}
			copy(buf[at:at+4], it.regions[k+1][at-lo:])
			if p.f.v5 {
				setCRC(buf[i*isz:(i+1)*isz], 100)
			}
		}
	}
}

// flush stamps the buffers replayed since the last flush with their
// transaction's LSN and recomputes their checksums (v5), as the kernel's
// write verifiers do when recovery writes them back.
func (p *replayer) flush() error {
	for key, lsn := range p.pending {
		buf, err := p.readBuf(key[0], key[1])
		if errors.Is(err, errReplayBound) {
			return err
		} else if err != nil {
			continue
		}
		if p.f.v5 {
			p.f.stampBuf(buf, lsn)
		}
		if err := p.write(key[0], buf); err != nil {
			return err
		}
	}
	clear(p.pending)
	return nil
}

// inode replays an inode log item: the inode core (logged in the
// writer's byte order) and the logged forks over the inode in its
// cluster buffer.
func (p *replayer) inode(t *logTrans, it *logItem) error {
	o := t.order
	f0 := it.regions[0]
	var fields uint32
	var rdev uint32
	var daddr, sectors, boff int64
	switch len(f0) {
	case 56:
		fields, rdev = o.Uint32(f0[4:]), o.Uint32(f0[24:])
		daddr, sectors, boff = int64(o.Uint64(f0[40:])), int64(int32(o.Uint32(f0[48:]))), int64(int32(o.Uint32(f0[52:])))
	case 52: // written by a 32-bit kernel
		fields, rdev = o.Uint32(f0[4:]), o.Uint32(f0[20:])
		daddr, sectors, boff = int64(o.Uint64(f0[36:])), int64(int32(o.Uint32(f0[44:]))), int64(int32(o.Uint32(f0[48:])))
	default:
		return errors.New("inode item format of unknown size")
	}
	if p.cancel[[2]int64{daddr, sectors}] > 0 {
		return nil // the inode chunk was freed later
	}
	if len(it.regions) < 2 {
		return errors.New("inode item without its core")
	}
	buf, err := p.readBuf(daddr, sectors)
	if err != nil {
		return err
	}
	isz := int64(p.f.sb.inodeSize)
	if boff < 0 || boff+isz > int64(len(buf)) {
		return errors.New("inode outside its buffer")
	}
	dip := buf[boff : boff+isz]
	ld := it.regions[1]
	core := dinodeV2Size - 4 // the v2 log core stops before di_next_unlinked
	if p.f.v5 {
		core = dinodeV3Size
	}
	if be.Uint16(dip) != inodeMagic || len(ld) < core || int64(len(ld)) > isz || o.Uint16(ld) != inodeMagic {
		return errors.New("inode item over something not an inode")
	}
	if p.f.v5 && dip[4] >= 3 {
		if lsn := be.Uint64(dip[112:]); lsn != 0 && lsn != ^uint64(0) && lsn > t.lsn {
			return nil // the inode on disk is newer
		}
	} else if !p.f.v5 {
		disk, logged := be.Uint16(dip[30:]), o.Uint16(ld[30:])
		if logged < disk && !(disk == 0xffff && logged < 0x7fff) {
			return nil // flushed after this change
		}
	}
	logDinodeToDisk(dip, ld, o, p.f.v5, t.lsn)
	if len(ld) > core && p.f.v5 {
		copy(dip[core:], ld[core:])
	}
	lit := int(isz) - p.f.coreSize
	forkoff := int(dip[82]) * 8
	dsize, asize := lit, 0
	if forkoff != 0 {
		if forkoff > lit {
			return errors.New("replayed inode's attribute fork offset is invalid")
		}
		dsize, asize = forkoff, lit-forkoff
	}
	dfork := dip[p.f.coreSize : p.f.coreSize+dsize]
	afork := dip[p.f.coreSize+dsize:]
	next := 2
	if fields&ilogDFork != 0 && next < len(it.regions) {
		src := it.regions[next]
		next++
		if fields&ilogDBroot != 0 {
			p.f.bmbtToBmdr(dfork, src)
		} else {
			copy(dfork, src)
		}
	}
	if fields&ilogDev != 0 && len(dfork) >= 4 {
		be.PutUint32(dfork, rdev)
	}
	if fields&ilogAFork != 0 && next < len(it.regions) && asize > 0 {
		src := it.regions[next]
		if fields&ilogABroot != 0 {
			p.f.bmbtToBmdr(afork, src)
		} else {
			copy(afork, src)
		}
	}
	if p.f.v5 {
		setCRC(dip, 100)
	}
	return p.write(daddr+boff/logBB, buf[boff/logBB*logBB:(boff+isz+logBB-1)/logBB*logBB])
}

// logDinodeToDisk converts a logged inode core (the writer's byte order,
// field by field) over the on-disk inode dip, big endian. di_next_unlinked
// of a v2 inode is kept; a v3 inode gets lsn and its checksum later.
func logDinodeToDisk(dip, ld []byte, o binary.ByteOrder, v3 bool, lsn uint64) {
	p16 := func(off int) { be.PutUint16(dip[off:], o.Uint16(ld[off:])) }
	p32 := func(off int) { be.PutUint32(dip[off:], o.Uint32(ld[off:])) }
	p64 := func(off int) { be.PutUint64(dip[off:], o.Uint64(ld[off:])) }
	var flags2 uint64
	if v3 {
		flags2 = o.Uint64(ld[120:])
	}
	ts := func(off int) {
		if flags2&flag2Bigtime != 0 {
			p64(off)
		} else {
			p32(off)
			p32(off + 4)
		}
	}
	p16(0)
	p16(2)
	dip[4], dip[5] = ld[4], ld[5]
	p16(6)
	p32(8)
	p32(12)
	p32(16)
	p16(20)
	p16(22)
	if v3 {
		p64(24)
	} else {
		clear(dip[24:30])
		be.PutUint16(dip[30:], 0) // the kernel resets the flush counter
	}
	ts(32)
	ts(40)
	ts(48)
	p64(56)
	p64(64)
	p32(72)
	p32(76)
	p16(80)
	dip[82], dip[83] = ld[82], ld[83]
	p32(84)
	p16(88)
	p16(90)
	p32(92)
	if v3 {
		p32(96)
		p64(104)
		be.PutUint64(dip[112:], lsn)
		p64(120)
		p32(128)
		clear(dip[132:144])
		ts(144)
		p64(152)
		copy(dip[160:176], ld[160:176])
	}
}

// bmbtToBmdr converts a logged B+tree root (an in-memory long-format
// block: a block header, keys, then pointers after room for as many keys
// as the region holds) to the inode fork's form (level, count, keys, then
// pointers after room for as many keys as the fork holds).
func (f *FS) bmbtToBmdr(dst, src []byte) {
	hdr := lblockV4Size
	if f.v5 {
		hdr = lblockV5Size
	}
	if len(src) < hdr || len(dst) < 4 {
		return
	}
	smax := (len(src) - hdr) / 16
	dmax := (len(dst) - 4) / 16
	n := min(int(be.Uint16(src[6:])), smax, dmax)
	clear(dst)
	copy(dst[0:4], src[4:8])
	be.PutUint16(dst[2:], uint16(n))
	copy(dst[4:4+8*n], src[hdr:])
	copy(dst[4+8*dmax:4+8*dmax+8*n], src[hdr+8*smax:])
}

// icreate replays an inode chunk creation (v5): the chunk's cluster
// buffers become free inodes, unless one of them was cancelled later.
func (p *replayer) icreate(t *logTrans, it *logItem) error {
	r := it.regions[0]
	if len(r) < 28 {
		return errors.New("short icreate item")
	}
	sb := p.f.sb
	ag, agbno, count := be.Uint32(r[4:]), be.Uint32(r[8:]), be.Uint32(r[12:])
	isize, length, gen := be.Uint32(r[16:]), be.Uint32(r[20:]), be.Uint32(r[24:])
	perBlock := uint32(p.f.bs) / uint32(sb.inodeSize)
	if ag >= sb.agCount || length == 0 || uint64(agbno)+uint64(length) > uint64(sb.agBlocks) ||
		isize != uint32(sb.inodeSize) || uint64(count) != uint64(length)*uint64(perBlock) || count > 64 {
		return errors.New("icreate item out of range")
	}
	cluster := max(1, int64(8192*max(1, int64(sb.inodeSize)/256))/p.f.bs)
	if !p.f.v5 {
		cluster = max(1, 8192/p.f.bs)
	}
	cluster = min(cluster, int64(length))
	secPerBlock := p.f.bs / logBB
	for b := int64(0); b < int64(length); b += cluster {
		daddr := p.f.agPos(ag, agbno+uint32(b)) / logBB
		if p.cancel[[2]int64{daddr, cluster * secPerBlock}] > 0 {
			return nil // the chunk was freed again later
		}
	}
	version := byte(2)
	if p.f.v5 {
		version = 3
	}
	if p.work += int64(length) * p.f.bs; p.work > p.maxWork {
		return errReplayBound
	}
	buf := make([]byte, int64(length)*p.f.bs)
	isz := int(isize)
	for i := 0; (i+1)*isz <= len(buf); i++ {
		d := buf[i*isz : (i+1)*isz]
		be.PutUint16(d, inodeMagic)
		d[4] = version
		be.PutUint32(d[92:], gen)
		be.PutUint32(d[96:], 0xffffffff)
		if version == 3 {
			agino := uint64(agbno)<<sb.inoPBLog + uint64(i)
			be.PutUint64(d[152:], uint64(ag)<<p.f.inoShift|agino)
			copy(d[160:176], sb.metaUUID[:])
			setCRC(d, 100)
		}
	}
	return p.write(p.f.agPos(ag, agbno)/logBB, buf)
}

// setCRC stores the CRC32c of b, the 4 bytes at off taken as zero, at off
// (little endian), as XFS's metadata checksums are.
func setCRC(b []byte, off int) {
	clear(b[off : off+4])
	le.PutUint32(b[off:], crc32c(b))
}

// bufKind says where a v5 metadata block keeps its LSN, UUID and checksum.
type bufKind struct{ lsn, uuid, crc int }

// kindOf recognises a v5 metadata block by its magic number.
func kindOf(b []byte) (bufKind, bool) {
	if len(b) < logBB {
		return bufKind{}, false
	}
	switch be.Uint32(b) {
	case sbMagic:
		if len(b) >= 264 {
			return bufKind{240, 32, 224}, true
		}
	case 0x58414746: // AGF
		return bufKind{208, 64, 216}, len(b) >= 224
	case agiMagic:
		return bufKind{320, 296, 312}, len(b) >= 328
	case 0x5841464c: // AGFL
		return bufKind{24, 8, 32}, true
	case 0x41423342, 0x41423343, inob3Magic, 0x46494233, 0x524d4233, 0x52334643: // short btrees
		return bufKind{24, 32, 52}, true
	case bmap3Magic:
		return bufKind{32, 40, 64}, true
	case dir3BlockMagic, dir3DataMagic, 0x58444633: // directory data, free index
		return bufKind{16, 24, 4}, true
	case attr3RmtMagic, symlinkMagic:
		return bufKind{32, 40, 12}, true
	}
	switch be.Uint16(b[8:]) {
	case 0x3df1, 0x3dff, da3NodeMagic, attr3LeafMagic: // dir leaves, dabtree nodes, attr leaves
		return bufKind{24, 32, 12}, true
	}
	return bufKind{}, false
}

// bufLSN returns the LSN a v5 metadata block was last written with; false
// when the block is not recognised or not this filesystem's (the kernel
// replays those whatever their age).
func (f *FS) bufLSN(b []byte) (uint64, bool) {
	k, ok := kindOf(b)
	if !ok {
		return 0, false
	}
	uuid := b[k.uuid : k.uuid+16]
	if be.Uint32(b) == sbMagic && be.Uint32(b[216:])&incompatMetaUUID != 0 {
		uuid = b[248:264]
	}
	if !bytes.Equal(uuid, f.sb.metaUUID[:]) {
		return 0, false
	}
	return be.Uint64(b[k.lsn:]), true
}

// stampBuf sets a replayed v5 metadata buffer's LSN and checksum; remote
// attribute value buffers have both in each filesystem block.
func (f *FS) stampBuf(b []byte, lsn uint64) {
	k, ok := kindOf(b)
	if !ok {
		return
	}
	switch m := be.Uint32(b); {
	case m == dir3BlockMagic || m == dir3DataMagic || m == 0x58444633 || be.Uint16(b[8:]) == 0x3df1 || be.Uint16(b[8:]) == 0x3dff:
		if len(b) != int(f.dirBlk) {
			return // a piece of a directory block on discontiguous extents
		}
	case be.Uint16(b[8:]) == da3NodeMagic:
		if len(b) != int(f.dirBlk) && len(b) != int(f.bs) {
			return
		}
	}
	if be.Uint32(b) == attr3RmtMagic {
		for off := 0; off+int(f.bs) <= len(b); off += int(f.bs) {
			blk := b[off : off+int(f.bs)]
			if be.Uint32(blk) == attr3RmtMagic {
				be.PutUint64(blk[k.lsn:], lsn)
				setCRC(blk, k.crc)
			}
		}
		return
	}
	be.PutUint64(b[k.lsn:], lsn)
	setCRC(b, k.crc)
}

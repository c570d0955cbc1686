package qcow2

import (
	"encoding/binary"

	"github.com/vzsalvage/vzsalvage/damage"
)

// Damage walks the L1 and L2 tables and returns the guest ranges that
// cannot be read: clusters whose L1 entry lies past the end of the file,
// whose L2 table or data lie outside the file or are misaligned, and
// allocated subclusters without a host cluster. Those ranges are marked
// damage.Lost; ReadAt fails on them. Compressed clusters are only checked
// to start inside the file: one that does not decompress is found by
// reading it. The walk reads every L2 table once (one cluster of memory).
func (im *Image) Damage() *damage.Map {
	m := &damage.Map{}
	size := im.Size()
	span := im.l2Entries * im.clusterSize // guest bytes per L1 entry
	buf := make([]byte, im.clusterSize)
	lost := func(off, n int64) { m.Add(off, min(n, size-off), damage.Lost) }
	for l1i := int64(0); l1i*span < size; l1i++ {
		base := l1i * span
		if l1i >= im.l1Valid {
			lost(base, size-base)
			break
		}
		l2off := int64(im.l1[l1i] & offsetMask)
		if l2off == 0 {
			continue
		}
		if l2off%im.clusterSize != 0 || l2off+im.clusterSize > im.fileSize {
			lost(base, span)
			continue
		}
		if k, _ := im.r.ReadAt(buf, l2off); k < len(buf) {
			lost(base, span)
			continue
		}
		for i := int64(0); i < im.l2Entries && base+i*im.clusterSize < size; i++ {
			e := binary.BigEndian.Uint64(buf[i*im.entryBytes:])
			var bitmap uint64
			if im.entryBytes == 16 {
				bitmap = binary.BigEndian.Uint64(buf[i*im.entryBytes+8:])
			}
			if !im.entryOK(e, bitmap) {
				lost(base+i*im.clusterSize, im.clusterSize)
			}
		}
	}
	return m
}

// entryOK reports whether an L2 entry can be served, as far as the tables
// tell.
func (im *Image) entryOK(e, bitmap uint64) bool {
	if e&entryCompressed != 0 {
		host := int64(e & (1<<im.compShift - 1))
		return host > 0 && host < im.fileSize
	}
	host := int64(e & offsetMask)
	if im.hdr.ExtendedL2 {
		alloc, zero := uint32(bitmap), uint32(bitmap>>32)
		if alloc&zero != 0 || alloc != 0 && host == 0 {
			return false
		}
		if alloc == 0 {
			return true
		}
	} else if host == 0 || e&entryZero != 0 && im.hdr.Version >= 3 {
		return true
	}
	return host%im.clusterSize == 0 && host+im.clusterSize <= im.fileSize
}

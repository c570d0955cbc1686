package volume

import (
	"encoding/binary"
	"io"
	"strconv"
)

// ZFS vdev labels: four copies of 256 KiB, two at the start of the device
// and two at its end. Each holds an XDR-encoded nvlist at 16 KiB and a ring
// of uberblocks in its second half.
const (
	zfsLabelSize   = 256 << 10
	zfsNVListOff   = 16 << 10
	zfsNVListSize  = 112 << 10
	zfsUberOff     = 128 << 10
	zfsUberMagic   = 0x00bab10c
	zfsUberStride  = 1 << 10
	zfsMinUbers    = 2
	zfsMaxNVPairs  = 256
	zfsStringLimit = 1 << 10
)

// probeZFS recognises a ZFS pool member by the uberblocks of one of its four
// vdev labels and takes the pool name (label) and pool GUID (uuid, decimal)
// from the label's nvlist, as blkid does.
func probeZFS(r io.ReaderAt, size int64) (detection, bool) {
	if size < 4*zfsLabelSize {
		return detection{}, false
	}
	end := size &^ (zfsLabelSize - 1)
	for _, base := range []int64{0, zfsLabelSize, end - 2*zfsLabelSize, end - zfsLabelSize} {
		ub := readBlock(r, size, base+zfsUberOff, zfsLabelSize-zfsUberOff)
		if ub == nil {
			continue
		}
		n := 0
		for i := 0; i+8 <= len(ub); i += zfsUberStride {
			m := binary.LittleEndian.Uint64(ub[i:])
			if m == zfsUberMagic || binary.BigEndian.Uint64(ub[i:]) == zfsUberMagic {
				n++
			}
		}
		if n < zfsMinUbers {
			continue
		}
		d := detection{fs: "zfs_member"}
		if nv := readBlock(r, size, base+zfsNVListOff, zfsNVListSize); nv != nil {
			d.label, d.uuid = zfsNames(nv)
		}
		return d, true
	}
	return detection{}, false
}

// zfsNames walks the top level of an XDR nvlist for "name" (a string) and
// "pool_guid" (a uint64). Every step is bounds-checked; at most
// zfsMaxNVPairs pairs are looked at.
func zfsNames(b []byte) (name, guid string) {
	// 4-byte nvs header (encoding 1 = XDR), then version and flags.
	if len(b) < 12 || b[0] != 1 {
		return "", ""
	}
	p := 12
	be := binary.BigEndian
	for n := 0; n < zfsMaxNVPairs && p+8 <= len(b); n++ {
		encSize := int(be.Uint32(b[p:]))
		if encSize == 0 || encSize < 8 || p+encSize > len(b) {
			break
		}
		pair := b[p : p+encSize]
		p += encSize
		q := 8
		if q+4 > len(pair) {
			continue
		}
		nl := int(be.Uint32(pair[q:]))
		q += 4
		if nl > zfsStringLimit || q+nl > len(pair) {
			continue
		}
		key := string(pair[q : q+nl])
		q += (nl + 3) &^ 3
		if q+8 > len(pair) {
			continue
		}
		typ := be.Uint32(pair[q:])
		q += 8 // type, number of elements
		switch {
		case key == "name" && typ == 9 && q+4 <= len(pair):
			sl := int(be.Uint32(pair[q:]))
			if sl <= zfsStringLimit && q+4+sl <= len(pair) {
				name = string(pair[q+4 : q+4+sl])
			}
		case key == "pool_guid" && typ == 8 && q+8 <= len(pair):
			guid = strconv.FormatUint(be.Uint64(pair[q:]), 10)
		}
	}
	return name, guid
}

package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Image reads the virtual disk of a qcow2 image. It is safe for
// concurrent use.
type Image struct {
	r        io.ReaderAt
	fileSize int64
	hdr      Header

	clusterBits uint
	clusterSize int64
	l2Entries   int64 // entries per L2 table
	entryBytes  int64 // 8, or 16 with extended L2 entries
	l1          []uint64
	l1Valid     int64 // entries read from the file (the rest lie past its end)

	// compressed-cluster descriptor: bits 0..compShift-1 host offset,
	// bits compShift..61 additional sectors.
	compShift uint

	mu    sync.Mutex
	cache *l2Cache
	dec   *decompressor
}

// Open reads the header and the L1 table of the qcow2 image r of size
// bytes. The image is never written.
func Open(r io.ReaderAt, size int64) (*Image, error) {
	b := make([]byte, min(size, 4096))
	if n, err := r.ReadAt(b, 0); n < len(b) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("qcow2: reading header: %w", err)
	}
	h, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	if h.BackingFileOffset != 0 {
		name := ""
		if n := int64(h.BackingFileSize); n > 0 && n <= maxBackingName && int64(h.BackingFileOffset) < size-n {
			nb := make([]byte, n)
			if k, _ := r.ReadAt(nb, int64(h.BackingFileOffset)); k == len(nb) {
				name = string(nb)
			}
		}
		return nil, fmt.Errorf("%w: %q", ErrBackingFile, name)
	}
	im := &Image{r: r, fileSize: size, hdr: h, clusterBits: uint(h.ClusterBits)}
	im.clusterSize = 1 << im.clusterBits
	im.entryBytes = 8
	if h.ExtendedL2 {
		im.entryBytes = 16
	}
	im.l2Entries = im.clusterSize / im.entryBytes
	im.compShift = 62 - (im.clusterBits - 8)

	// The L1 table must cover the virtual size.
	perL1 := im.clusterSize * im.l2Entries
	need := (int64(h.Size) + perL1 - 1) / perL1
	if int64(h.L1Size) < need {
		return nil, fmt.Errorf("%w: L1 table of %d entries for a %d-byte disk (needs %d)", ErrCorrupt, h.L1Size, h.Size, need)
	}
	if err := im.readL1(); err != nil {
		return nil, err
	}
	im.cache = newL2Cache(im.clusterSize)
	im.dec = newDecompressor(h.CompressionType, im.clusterSize)
	return im, nil
}

// readL1 loads the active L1 table. Entries that lie past the end of the
// file are not loaded; reads they would serve fail with ErrCorrupt.
func (im *Image) readL1() error {
	off := int64(im.hdr.L1TableOffset)
	n := int64(im.hdr.L1Size)
	if n == 0 {
		return nil
	}
	if off <= 0 || off%im.clusterSize != 0 {
		return fmt.Errorf("%w: L1 table at %d", ErrCorrupt, off)
	}
	avail := max(0, min(n, (im.fileSize-off)/8))
	b := make([]byte, avail*8)
	k, _ := im.r.ReadAt(b, off)
	avail = int64(k) / 8
	im.l1 = make([]uint64, avail)
	for i := range im.l1 {
		im.l1[i] = binary.BigEndian.Uint64(b[i*8:])
	}
	im.l1Valid = avail
	return nil
}

// Size returns the virtual disk size in bytes.
func (im *Image) Size() int64 { return int64(im.hdr.Size) }

// Header returns the image's header.
func (im *Image) Header() Header { return im.hdr }

// ClusterSize returns the cluster size in bytes.
func (im *Image) ClusterSize() int64 { return im.clusterSize }

// ReadAt reads the virtual disk at off. Unallocated and zero clusters read
// as zeros. A range whose table entries are damaged fails with an error
// wrapping ErrCorrupt (n says how much was read before it); reads at or
// past Size return io.EOF.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("qcow2: negative offset %d", off)
	}
	size := im.Size()
	n := 0
	for n < len(p) && off < size {
		in := off & (im.clusterSize - 1)
		k := int(min(int64(len(p)-n), im.clusterSize-in, size-off))
		if err := im.readCluster(p[n:n+k], off>>im.clusterBits, in); err != nil {
			return n, err
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// corrupt makes an ErrCorrupt error about the guest range at vc.
func (im *Image) corrupt(vc int64, format string, a ...any) error {
	return fmt.Errorf("%w: guest offset %d: %s", ErrCorrupt, vc<<im.clusterBits, fmt.Sprintf(format, a...))
}

// readCluster fills p from guest cluster vc, starting in bytes in.
func (im *Image) readCluster(p []byte, vc, in int64) error {
	e, bitmap, err := im.l2Entry(vc)
	if err != nil {
		return err
	}
	switch {
	case e&entryCompressed != 0:
		return im.readCompressed(p, vc, in, e)
	case im.hdr.ExtendedL2:
		return im.readSubclusters(p, vc, in, e, bitmap)
	case e&entryZero != 0 && im.hdr.Version >= 3:
		clear(p)
		return nil
	}
	host := int64(e & offsetMask)
	if host == 0 {
		clear(p) // unallocated, and no backing file
		return nil
	}
	return im.readHost(p, vc, host, in)
}

// readHost reads len(p) bytes of the standard cluster at host offset host.
func (im *Image) readHost(p []byte, vc, host, in int64) error {
	if host%im.clusterSize != 0 {
		return im.corrupt(vc, "cluster at unaligned host offset %d", host)
	}
	if host+in+int64(len(p)) > im.fileSize {
		return im.corrupt(vc, "cluster at host offset %d lies past the end of the file (%d bytes)", host, im.fileSize)
	}
	if k, err := im.r.ReadAt(p, host+in); k < len(p) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("qcow2: guest offset %d: %w", vc<<im.clusterBits+in, err)
	}
	return nil
}

// readSubclusters serves a standard cluster of an image with extended L2
// entries: each of its 32 subclusters is allocated (read from the host
// cluster), reads as zeros, or is unallocated (zeros: no backing file).
// Runs of subclusters in the same state are served in one step.
func (im *Image) readSubclusters(p []byte, vc, in int64, e, bitmap uint64) error {
	sub := im.clusterSize / 32
	host := int64(e & offsetMask)
	if alloc, zero := uint32(bitmap), uint32(bitmap>>32); alloc&zero != 0 {
		return im.corrupt(vc, "subclusters %#x both allocated and zero", alloc&zero)
	}
	for len(p) > 0 {
		i := in / sub
		alloc := bitmap&(1<<i) != 0
		j := i + 1
		for j < 32 && (bitmap&(1<<j) != 0) == alloc {
			j++
		}
		k := min(int64(len(p)), j*sub-in)
		if alloc {
			if host == 0 {
				return im.corrupt(vc, "allocated subcluster %d without a host cluster", i)
			}
			if err := im.readHost(p[:k], vc, host, in); err != nil {
				return err
			}
		} else {
			clear(p[:k])
		}
		p = p[k:]
		in += k
	}
	return nil
}

// l2Entry returns the L2 entry of guest cluster vc (and the subcluster
// bitmap with extended L2 entries).
func (im *Image) l2Entry(vc int64) (e, bitmap uint64, err error) {
	l1i, l2i := vc/im.l2Entries, vc%im.l2Entries
	if l1i >= int64(im.hdr.L1Size) {
		return 0, 0, im.corrupt(vc, "beyond the L1 table")
	}
	if l1i >= im.l1Valid {
		return 0, 0, im.corrupt(vc, "L1 entry %d lies past the end of the file", l1i)
	}
	l2off := int64(im.l1[l1i] & offsetMask)
	if l2off == 0 {
		return 0, 0, nil // the whole L2 range is unallocated
	}
	if l2off%im.clusterSize != 0 || l2off+im.clusterSize > im.fileSize {
		return 0, 0, im.corrupt(vc, "L2 table at %d outside the file or unaligned", l2off)
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	t, err := im.cache.get(im.r, l2off)
	if err != nil {
		return 0, 0, im.corrupt(vc, "reading L2 table at %d: %v", l2off, err)
	}
	o := l2i * im.entryBytes
	e = binary.BigEndian.Uint64(t[o:])
	if im.entryBytes == 16 {
		bitmap = binary.BigEndian.Uint64(t[o+8:])
	}
	return e, bitmap, nil
}

// readCompressed serves a compressed cluster, decompressing it (or using
// the last one decompressed).
func (im *Image) readCompressed(p []byte, vc, in int64, e uint64) error {
	host := int64(e & (1<<im.compShift - 1))
	extra := int64((e &^ (entryCopied | entryCompressed)) >> im.compShift)
	n := (extra+1)*512 - host&511
	if host <= 0 || host >= im.fileSize {
		return im.corrupt(vc, "compressed cluster at host offset %d outside the file", host)
	}
	n = min(n, im.fileSize-host)
	im.mu.Lock()
	defer im.mu.Unlock()
	data, err := im.dec.cluster(im.r, host, n)
	if err != nil {
		return im.corrupt(vc, "compressed cluster at host offset %d: %v", host, err)
	}
	copy(p, data[in:])
	return nil
}

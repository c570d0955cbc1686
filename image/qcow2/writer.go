package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/flate"

	"github.com/vzsalvage/vzsalvage/image/sparse"
)

// WriterCluster is the cluster size of the images Writer makes: 64 KiB,
// QEMU's default and the size of a VMA cluster.
const WriterCluster = 1 << writerBits

const writerBits = 16

// WriterOptions control a Writer.
type WriterOptions struct {
	// Compress stores clusters deflate-compressed (compression type 0, as
	// 'qemu-img convert -c' does) where that saves space; the others are
	// stored as they are.
	Compress bool
}

// Writer writes a qcow2 version 3 image of a given virtual size into an
// io.ReaderAt+WriterAt (a file opened read-write), as data arrives in any
// order: clusters that are never written, or written as zeros, take no
// space. Memory is bounded: at most maxWriterL2 L2 tables (64 KiB each,
// one per 512 MiB of virtual disk) are held, the others written to their
// place in the file and read back when needed; Close needs a 2-byte
// refcount per host cluster (32 MiB per TiB written). Close writes the L2
// tables still held, the refcounts and the header; until then the file is
// not a valid image.
type Writer struct {
	f    rwAt
	size int64
	opt  WriterOptions

	l1     []uint64          // the host offsets of L2 tables (with entryCopied), 0 until one is written
	l2     map[int64]*wTable // the L2 tables held, by L1 index
	tick   uint64            // use counter for the tables' eviction
	next   int64             // end of the host file (cluster aligned, except while packing compressed data)
	packed int64             // where the next compressed cluster goes (0: start a new host cluster)
	comp   *flate.Writer
	buf    bytes.Buffer
	closed bool
	err    error
}

type rwAt interface {
	io.ReaderAt
	io.WriterAt
}

const l2Entries = WriterCluster / 8

// NewWriter starts an image of size bytes in f, which must be empty.
func NewWriter(f rwAt, size int64, opt WriterOptions) (*Writer, error) {
	if size <= 0 || size > 1<<56 {
		return nil, fmt.Errorf("qcow2: cannot write a %d-byte disk", size)
	}
	clusters := (size + WriterCluster - 1) / WriterCluster
	l1Size := (clusters + l2Entries - 1) / l2Entries
	if l1Size*8 > maxL1Bytes {
		return nil, fmt.Errorf("qcow2: a %d-byte disk needs too large an L1 table", size)
	}
	w := &Writer{f: f, size: size, opt: opt, l1: make([]uint64, l1Size), l2: map[int64]*wTable{}}
	// cluster 0: the header; then the L1 table; data after it.
	w.next = WriterCluster + roundUp(l1Size*8)
	return w, nil
}

func roundUp(n int64) int64 { return (n + WriterCluster - 1) &^ (WriterCluster - 1) }

// maxWriterL2 bounds the L2 tables a Writer holds (64 KiB each: 4 MiB,
// 32 GiB of virtual disk); a var for tests.
var maxWriterL2 = 64

// wTable is an L2 table a Writer holds: entries as on disk.
type wTable struct {
	e    []uint64
	used uint64
}

// table returns the L2 table of L1 index i: held, read back from the file,
// or (with create) a new empty one; nil when it has none and create is
// false.
func (w *Writer) table(i int64, create bool) (*wTable, error) {
	w.tick++
	if t := w.l2[i]; t != nil {
		t.used = w.tick
		return t, nil
	}
	if w.l1[i] == 0 && !create {
		return nil, nil
	}
	var buf []uint64
	if len(w.l2) >= maxWriterL2 {
		var lru int64 = -1
		for j, t := range w.l2 {
			if lru < 0 || t.used < w.l2[lru].used {
				lru = j
			}
		}
		buf = w.l2[lru].e
		if err := w.spill(lru); err != nil {
			return nil, err
		}
	} else {
		buf = make([]uint64, l2Entries)
	}
	if host := int64(w.l1[i] & offsetMask); host != 0 {
		raw := make([]byte, WriterCluster)
		if _, err := w.f.ReadAt(raw, host); err != nil && err != io.EOF {
			return nil, fmt.Errorf("qcow2: reading back an L2 table: %w", err)
		}
		for j := range buf {
			buf[j] = binary.BigEndian.Uint64(raw[8*j:])
		}
	} else {
		clear(buf)
	}
	t := &wTable{e: buf, used: w.tick}
	w.l2[i] = t
	return t, nil
}

// spill writes the held table of L1 index i to its place in the file (a
// new host cluster the first time) and stops holding it.
func (w *Writer) spill(i int64) error {
	t := w.l2[i]
	delete(w.l2, i)
	if w.l1[i] == 0 {
		w.l1[i] = uint64(w.allocCluster()) | entryCopied
	}
	raw := make([]byte, WriterCluster)
	for j, e := range t.e {
		binary.BigEndian.PutUint64(raw[8*j:], e)
	}
	_, err := w.f.WriteAt(raw, int64(w.l1[i]&offsetMask))
	return err
}

// set sets the L2 entry of virtual cluster vc, creating its table if need
// be.
func (w *Writer) set(vc int64, e uint64) error {
	t, err := w.table(vc/l2Entries, true)
	if err != nil {
		return err
	}
	t.e[vc%l2Entries] = e
	return nil
}

// lookup returns the L2 entry of vc, or 0 if none.
func (w *Writer) lookup(vc int64) (uint64, error) {
	t, err := w.table(vc/l2Entries, false)
	if t == nil || err != nil {
		return 0, err
	}
	return t.e[vc%l2Entries], nil
}

// WriteAt writes p at virtual offset off (not past the disk's end). A
// cluster is stored at its first non-zero write; writes that are all zeros
// to clusters never stored take no space.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("qcow2: write after Close")
	}
	if off < 0 || off+int64(len(p)) > w.size {
		return 0, fmt.Errorf("qcow2: write of %d bytes at %d outside the %d-byte disk", len(p), off, w.size)
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		vc, in := pos/WriterCluster, pos%WriterCluster
		n := int(min(int64(len(p)-done), WriterCluster-in))
		if err := w.writeIn(vc, in, p[done:done+n]); err != nil {
			w.err = err
			return done, err
		}
		done += n
	}
	return done, nil
}

// WriteCluster writes the whole virtual cluster vc (data shorter than a
// cluster is zero-padded): the way to get clusters compressed.
func (w *Writer) WriteCluster(vc int64, data []byte) error {
	if len(data) > WriterCluster {
		return fmt.Errorf("qcow2: %d bytes for one cluster", len(data))
	}
	if len(data) < WriterCluster {
		full := make([]byte, WriterCluster)
		copy(full, data)
		data = full
	}
	end := min(WriterCluster, w.size-vc*WriterCluster)
	if end <= 0 {
		return fmt.Errorf("qcow2: cluster %d outside the %d-byte disk", vc, w.size)
	}
	if w.opt.Compress && !isZero(data) {
		return w.storeCompressed(vc, data)
	}
	_, err := w.WriteAt(data[:end], vc*WriterCluster)
	return err
}

// writeIn writes b at offset in of virtual cluster vc.
func (w *Writer) writeIn(vc, in int64, b []byte) error {
	e, err := w.lookup(vc)
	if err != nil {
		return err
	}
	switch {
	case e == 0 && isZero(b):
		return nil
	case e&entryCompressed != 0:
		// A compressed cluster written again (rare: a salvage rewriting
		// a cluster): merge into its content and store it anew.
		data, err := w.inflate(e)
		if err != nil {
			return err
		}
		copy(data[in:], b)
		return w.storeCluster(vc, data)
	case e == 0 && in == 0 && len(b) == WriterCluster:
		return w.storeCluster(vc, b)
	case e == 0:
		e = uint64(w.allocCluster()) | entryCopied
		if err := w.set(vc, e); err != nil {
			return err
		}
	}
	host := int64(e & offsetMask)
	_, err = w.f.WriteAt(b, host+in)
	return err
}

// storeCluster stores a whole cluster's content for vc, compressed when
// the options say so.
func (w *Writer) storeCluster(vc int64, data []byte) error {
	if w.opt.Compress && !isZero(data) {
		return w.storeCompressed(vc, data)
	}
	e, err := w.lookup(vc)
	if err != nil {
		return err
	}
	var host int64
	if e != 0 && e&entryCompressed == 0 {
		host = int64(e & offsetMask)
	} else {
		if isZero(data) {
			if e == 0 {
				return nil
			}
			return w.set(vc, 0)
		}
		host = w.allocCluster()
		if err := w.set(vc, uint64(host)|entryCopied); err != nil {
			return err
		}
	}
	_, err = w.f.WriteAt(data, host)
	return err
}

// allocCluster returns a new host cluster at the end of the file.
func (w *Writer) allocCluster() int64 {
	if w.packed != 0 {
		w.next = roundUp(w.next)
		w.packed = 0
	}
	h := w.next
	w.next += WriterCluster
	return h
}

// compShiftW is where the sector count starts in a compressed entry.
const compShiftW = 62 - (writerBits - 8)

// storeCompressed deflates a cluster and packs it after the compressed
// data before it (or stores it plainly when that saves nothing).
func (w *Writer) storeCompressed(vc int64, data []byte) error {
	w.buf.Reset()
	if w.comp == nil {
		var err error
		if w.comp, err = flate.NewWriter(&w.buf, flate.DefaultCompression); err != nil {
			return err
		}
	} else {
		w.comp.Reset(&w.buf)
	}
	if _, err := w.comp.Write(data); err != nil {
		return err
	}
	if err := w.comp.Close(); err != nil {
		return err
	}
	c := w.buf.Bytes()
	if len(c) >= WriterCluster-512 {
		opt := w.opt
		w.opt.Compress = false
		err := w.storeCluster(vc, data)
		w.opt = opt
		return err
	}
	if w.packed == 0 {
		w.packed = roundUp(w.next)
	}
	host := w.packed
	if _, err := w.f.WriteAt(c, host); err != nil {
		return err
	}
	w.packed += int64(len(c))
	w.next = w.packed
	sectors := (host%512+int64(len(c))+511)/512 - 1
	return w.set(vc, uint64(host)|uint64(sectors)<<compShiftW|entryCompressed)
}

// inflate returns the content of the compressed cluster of entry e.
func (w *Writer) inflate(e uint64) ([]byte, error) {
	host := int64(e & (1<<compShiftW - 1))
	n := (int64((e&^(entryCopied|entryCompressed))>>compShiftW)+1)*512 - host%512
	c := make([]byte, n)
	if k, err := w.f.ReadAt(c, host); k < len(c) && err != nil && err != io.EOF {
		return nil, err
	}
	out := make([]byte, WriterCluster)
	r := flate.NewReader(bytes.NewReader(c))
	defer r.Close()
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, fmt.Errorf("qcow2: re-reading a compressed cluster: %w", err)
	}
	return out, nil
}

// Close writes the L2 tables, the L1 table, the refcounts and the header.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	w.err = w.finish()
	return w.err
}

func (w *Writer) finish() error {
	be := binary.BigEndian
	w.next = roundUp(w.next)
	w.packed = 0
	// The L2 tables still held, in L1 order.
	for i := range w.l1 {
		if w.l2[int64(i)] != nil {
			if err := w.spill(int64(i)); err != nil {
				return err
			}
		}
	}
	w.next = roundUp(w.next)
	// Refcounts: every host cluster in use counts 1, those holding
	// compressed data once per compressed cluster touching them.
	dataEnd := w.next
	refs := make([]uint16, dataEnd/WriterCluster)
	l1Clusters := roundUp(int64(len(w.l1))*8) / WriterCluster
	for c := int64(0); c < 1+l1Clusters; c++ {
		refs[c] = 1 // header and L1 table
	}
	tab := make([]byte, WriterCluster)
	for _, l1e := range w.l1 {
		if l1e == 0 {
			continue
		}
		host := int64(l1e & offsetMask)
		refs[host/WriterCluster]++
		if _, err := w.f.ReadAt(tab, host); err != nil && err != io.EOF {
			return fmt.Errorf("qcow2: reading back an L2 table: %w", err)
		}
		for j := 0; j < l2Entries; j++ {
			e := be.Uint64(tab[8*j:])
			switch {
			case e == 0:
			case e&entryCompressed != 0:
				host := int64(e & (1<<compShiftW - 1))
				last := host - host%512 + (int64((e&^(entryCopied|entryCompressed))>>compShiftW)+1)*512 - 1
				for c := host / WriterCluster; c <= last/WriterCluster; c++ {
					refs[c]++
				}
			default:
				refs[int64(e&offsetMask)/WriterCluster]++
			}
		}
	}
	// The refcount blocks and table follow the data and count themselves.
	const perBlock = WriterCluster / 2
	total := int64(len(refs))
	var blocks, tableClusters int64
	for {
		nb := (total + blocks + tableClusters + perBlock - 1) / perBlock
		nt := roundUp(nb*8) / WriterCluster
		if nb == blocks && nt == tableClusters {
			break
		}
		blocks, tableClusters = nb, nt
	}
	all := total + blocks + tableClusters
	rc := make([]uint16, all)
	copy(rc, refs)
	for c := total; c < all; c++ {
		rc[c] = 1
	}
	blockStart := dataEnd
	tableStart := blockStart + blocks*WriterCluster
	table := make([]byte, tableClusters*WriterCluster)
	blk := make([]byte, WriterCluster)
	for b := int64(0); b < blocks; b++ {
		clear(blk)
		for j := int64(0); j < perBlock && b*perBlock+j < all; j++ {
			be.PutUint16(blk[2*j:], rc[b*perBlock+j])
		}
		if _, err := w.f.WriteAt(blk, blockStart+b*WriterCluster); err != nil {
			return err
		}
		be.PutUint64(table[8*b:], uint64(blockStart+b*WriterCluster))
	}
	if _, err := w.f.WriteAt(table, tableStart); err != nil {
		return err
	}
	// The L1 table and the header, last.
	l1 := make([]byte, l1Clusters*WriterCluster)
	for i, e := range w.l1 {
		be.PutUint64(l1[8*i:], e)
	}
	if _, err := w.f.WriteAt(l1, WriterCluster); err != nil {
		return err
	}
	h := make([]byte, WriterCluster)
	copy(h, magic)
	be.PutUint32(h[4:], 3)
	be.PutUint32(h[20:], writerBits)
	be.PutUint64(h[24:], uint64(w.size))
	be.PutUint32(h[36:], uint32(len(w.l1)))
	be.PutUint64(h[40:], WriterCluster)
	be.PutUint64(h[48:], uint64(tableStart))
	be.PutUint32(h[56:], uint32(tableClusters))
	be.PutUint32(h[96:], 4) // 16-bit refcounts
	be.PutUint32(h[100:], v3HeaderLen)
	// bytes 104..111 stay zero: the end of the (empty) header extensions
	_, err := w.f.WriteAt(h, 0)
	return err
}

// isZero reports whether b holds only zero bytes.
func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Convert writes the disk image src (size bytes, raw) into the empty file
// dst as a qcow2 image, reading only where src holds data (a sparse raw
// image's holes are skipped without reading).
func Convert(dst rwAt, src io.ReaderAt, size int64, opt WriterOptions) error {
	w, err := NewWriter(dst, size, opt)
	if err != nil {
		return err
	}
	data := sparse.NewFinder(src, size)
	buf := make([]byte, WriterCluster)
	for off := int64(0); off < size; off += WriterCluster {
		n := min(WriterCluster, size-off)
		if !data.Has(off, n) {
			continue
		}
		if k, err := src.ReadAt(buf[:n], off); k < int(n) && err != nil && err != io.EOF {
			return err
		}
		if err := w.WriteCluster(off/WriterCluster, buf[:n]); err != nil {
			return err
		}
	}
	return w.Close()
}

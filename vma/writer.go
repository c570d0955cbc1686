package vma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Writer writes a VMA stream as Proxmox's writer does: the header before the
// first extent, one entry per cluster (zero clusters included, with mask 0),
// all-zero 4 KiB blocks not stored, an extent flushed when it holds
// WriterEntries entries, and the last one at Close.
type Writer struct {
	w       io.Writer
	h       Header
	hdr     []byte
	devs    [MaxDevices]*devWriter
	buf     []byte // extent header + data
	entries []BlockInfo
	err     error
	closed  bool
}

type devWriter struct {
	dev     Device
	written []uint64 // bitmap of written clusters
	count   int64
}

// NewWriter returns a Writer for an archive with the given header (uuid,
// ctime, configs and devices). The header is laid out now and written with
// the first extent.
func NewWriter(w io.Writer, h *Header) (*Writer, error) {
	vw := &Writer{w: w, h: *h}
	hdr, err := MarshalHeader(&vw.h)
	if err != nil {
		return nil, err
	}
	vw.hdr = hdr
	for _, d := range vw.h.Devices {
		vw.devs[d.ID] = &devWriter{dev: d, written: make([]uint64, (d.Clusters()+63)/64)}
	}
	vw.buf = make([]byte, ExtentHeaderSize, ExtentHeaderSize+WriterEntries*ClusterSize)
	return vw, nil
}

// Header returns the header as written (with its Size set).
func (w *Writer) Header() *Header { return &w.h }

// WriteCluster stores cluster num of device dev. data holds the cluster's
// bytes (at most ClusterSize; shorter data is zero-padded); nil or all-zero
// data stores a zero cluster. Blocks past the end of the device are never
// stored. Each cluster must be written exactly once, in any order.
func (w *Writer) WriteCluster(dev uint8, num uint32, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("vma: write after close")
	}
	d := w.devs[dev]
	if d == nil {
		return fmt.Errorf("vma: no device %d", dev)
	}
	if int64(num) >= d.dev.Clusters() {
		return fmt.Errorf("vma: cluster %d beyond the end of %s", num, d.dev.Name)
	}
	if d.written[num/64]&(1<<(num%64)) != 0 {
		return fmt.Errorf("vma: cluster %d of %s written twice", num, d.dev.Name)
	}
	if len(data) > ClusterSize {
		return fmt.Errorf("vma: cluster data of %d bytes", len(data))
	}
	if len(w.entries) >= WriterEntries {
		if err := w.flush(); err != nil {
			return err
		}
	}
	d.written[num/64] |= 1 << (num % 64)
	d.count++
	var mask uint16
	base := int64(num) * ClusterSize
	for j := 0; j < BlocksPerCluster; j++ {
		lo := j * BlockSize
		if lo >= len(data) || base+int64(lo) >= d.dev.Size {
			break
		}
		blk := data[lo:min(lo+BlockSize, len(data))]
		if isZero(blk) {
			continue
		}
		mask |= 1 << j
		n := len(w.buf)
		w.buf = append(w.buf, blk...)
		w.buf = append(w.buf, make([]byte, BlockSize-len(blk))...)
		// never store bytes past the device's end
		if end := d.dev.Size - base - int64(lo); end < BlockSize {
			clear(w.buf[n+int(end):])
		}
	}
	w.entries = append(w.entries, MakeBlockInfo(mask, dev, num))
	return nil
}

// WriteDevice writes every cluster of device dev, in order, from r (which
// must hold the device's Size bytes).
func (w *Writer) WriteDevice(dev uint8, r io.ReaderAt) error {
	d := w.devs[dev]
	if d == nil {
		return fmt.Errorf("vma: no device %d", dev)
	}
	buf := make([]byte, ClusterSize)
	for c := int64(0); c < d.dev.Clusters(); c++ {
		n := min(int64(ClusterSize), d.dev.Size-c*ClusterSize)
		if _, err := r.ReadAt(buf[:n], c*ClusterSize); err != nil && !(errors.Is(err, io.EOF)) {
			return err
		}
		if err := w.WriteCluster(dev, uint32(c), buf[:n]); err != nil {
			return err
		}
	}
	return nil
}

// flush writes the header (the first time) and the pending extent.
func (w *Writer) flush() error {
	if w.hdr != nil {
		if _, err := w.w.Write(w.hdr); err != nil {
			w.err = err
			return err
		}
		w.hdr = nil
	}
	if err := MarshalExtentHeader(w.buf, w.h.UUID, w.entries); err != nil {
		w.err = err
		return err
	}
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = err
		return err
	}
	w.buf = w.buf[:ExtentHeaderSize]
	w.entries = w.entries[:0]
	return nil
}

// Close writes the last extent. It reports an error if a device has
// clusters that were never written (the archive is still complete as a
// stream, but it would fail Proxmox's restore).
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if err := w.flush(); err != nil {
		return err
	}
	for _, d := range w.devs {
		if d != nil && d.count != d.dev.Clusters() {
			return fmt.Errorf("vma: incomplete stream '%s' (%d of %d clusters)", d.dev.Name, d.count, d.dev.Clusters())
		}
	}
	return nil
}

var zeroBlock [BlockSize]byte

// isZero reports whether b (at most BlockSize bytes) holds only zeros.
func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

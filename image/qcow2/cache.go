package qcow2

import (
	"fmt"
	"io"
)

// l2CacheBytes bounds the memory the L2 table cache holds.
const l2CacheBytes = 4 << 20

// l2Cache keeps the most recently used L2 tables (each one cluster), at
// most l2CacheBytes of them and at least two.
type l2Cache struct {
	size  int64
	slots []l2Slot
	tick  uint64
}

type l2Slot struct {
	off  int64 // host offset of the table; 0 = empty slot
	used uint64
	buf  []byte
}

func newL2Cache(clusterSize int64) *l2Cache {
	n := max(2, min(64, l2CacheBytes/clusterSize))
	return &l2Cache{size: clusterSize, slots: make([]l2Slot, n)}
}

// get returns the L2 table at host offset off, reading it on a miss into
// the least recently used slot.
func (c *l2Cache) get(r io.ReaderAt, off int64) ([]byte, error) {
	c.tick++
	victim := 0
	for i := range c.slots {
		s := &c.slots[i]
		if s.off == off && s.buf != nil {
			s.used = c.tick
			return s.buf, nil
		}
		if s.used < c.slots[victim].used {
			victim = i
		}
	}
	s := &c.slots[victim]
	if s.buf == nil {
		s.buf = make([]byte, c.size)
	}
	s.off = 0
	if k, err := r.ReadAt(s.buf, off); k < len(s.buf) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("short read: %w", err)
	}
	s.off, s.used = off, c.tick
	return s.buf, nil
}

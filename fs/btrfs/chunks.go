package btrfs

import (
	"fmt"
	"sort"
)

// chunk maps a range of logical addresses to its copies on this device.
type chunk struct {
	logical uint64
	length  uint64
	typ     uint64
	copies  []int64 // device offsets of the stripes on our device
	err     string  // why the chunk cannot be read, if it cannot
}

// chunkMap is the logical-to-physical mapping, sorted by logical address.
type chunkMap struct {
	chunks []chunk
}

const maxChunks = 1 << 20

// parseChunk parses a chunk item at logical address logical.
func parseChunk(logical uint64, b []byte, devid uint64) (chunk, int, error) {
	if len(b) < 48 {
		return chunk{}, 0, fmt.Errorf("chunk item of %d bytes", len(b))
	}
	c := chunk{logical: logical, length: le.Uint64(b), typ: le.Uint64(b[24:])}
	n := int(le.Uint16(b[44:]))
	size := 48 + 32*n
	if n == 0 || size > len(b) {
		return c, 0, fmt.Errorf("chunk at %d: %d stripes in %d bytes", logical, n, len(b))
	}
	if c.length == 0 || logical+c.length < logical {
		return c, 0, fmt.Errorf("chunk at %d: length %d", logical, c.length)
	}
	for i := range n {
		s := b[48+32*i:]
		if le.Uint64(s) == devid {
			c.copies = append(c.copies, int64(le.Uint64(s[8:])&(1<<62-1)))
		}
	}
	switch {
	case c.typ&bgStriped != 0:
		c.err = fmt.Sprintf("striped profile %#x not supported", c.typ&bgStriped)
	case len(c.copies) == 0:
		c.err = "on another device"
	}
	return c, size, nil
}

// add inserts c unless a chunk already covers its start.
func (m *chunkMap) add(c chunk) {
	if len(m.chunks) >= maxChunks {
		return
	}
	i := sort.Search(len(m.chunks), func(i int) bool { return m.chunks[i].logical >= c.logical })
	if i < len(m.chunks) && m.chunks[i].logical == c.logical {
		return
	}
	m.chunks = append(m.chunks, chunk{})
	copy(m.chunks[i+1:], m.chunks[i:])
	m.chunks[i] = c
}

// find returns the chunk holding logical address l.
func (m *chunkMap) find(l uint64) *chunk {
	i := sort.Search(len(m.chunks), func(i int) bool { return m.chunks[i].logical > l }) - 1
	if i < 0 || l-m.chunks[i].logical >= m.chunks[i].length {
		return nil
	}
	return &m.chunks[i]
}

// physical returns the device offsets of every copy of [l, l+n), which
// must lie in one chunk.
func (m *chunkMap) physical(l uint64, n int64) ([]int64, error) {
	c := m.find(l)
	if c == nil {
		return nil, fmt.Errorf("logical address %d in no chunk", l)
	}
	if c.err != "" {
		return nil, fmt.Errorf("logical address %d: %s", l, c.err)
	}
	if n < 0 || uint64(n) > c.length-(l-c.logical) {
		return nil, fmt.Errorf("logical range %d+%d crosses the end of its chunk", l, n)
	}
	out := make([]int64, len(c.copies))
	for i, p := range c.copies {
		out[i] = p + int64(l-c.logical)
	}
	return out, nil
}

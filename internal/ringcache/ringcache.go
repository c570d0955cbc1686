// Package ringcache is a small fixed-size cache that evicts the oldest
// entry, for the metadata blocks and records the filesystem readers read
// again and again.
package ringcache

import "sync"

// Cache holds at most n values; it is safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu   sync.Mutex
	m    map[K]V
	ring []K
	next int
	full bool
}

// New returns a cache of n entries.
func New[K comparable, V any](n int) *Cache[K, V] {
	return &Cache[K, V]{m: make(map[K]V, n), ring: make([]K, max(n, 1))}
}

// Get returns the value for k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

// Put adds k unless it is there, evicting the oldest entry when full.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	if c.full {
		delete(c.m, c.ring[c.next])
	}
	c.ring[c.next] = k
	c.m[k] = v
	c.next++
	if c.next == len(c.ring) {
		c.next, c.full = 0, true
	}
}

// Values returns the cached values, in no order.
func (c *Cache[K, V]) Values() []V {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]V, 0, len(c.m))
	for _, v := range c.m {
		out = append(out, v)
	}
	return out
}

// Reset empties the cache.
func (c *Cache[K, V]) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	clear(c.ring)
	c.next, c.full = 0, false
}

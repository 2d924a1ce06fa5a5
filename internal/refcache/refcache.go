// Package refcache is the stores' in-process memory of the certificates they
// hold, by SHA-256. Certificate rows are never deleted, and their id and
// SHA-1 never change, so an entry, once committed, stays true for every
// process that uses the database; the stores add entries only after the
// transaction that saw or made them commits.
package refcache

import "sync"

// Cache maps a certificate's SHA-256 to what a store needs of it to link it
// (its row id, say). It stops growing at its limit: the certificates seen
// first, the fleet's root stores, are the ones most reports name. It is
// safe for concurrent use; the zero value is not usable, use New.
type Cache[V any] struct {
	mu    sync.RWMutex
	m     map[[32]byte]V
	limit int
}

// New returns a cache of at most limit entries.
func New[V any](limit int) *Cache[V] {
	return &Cache[V]{m: make(map[[32]byte]V), limit: limit}
}

// Get returns the entry of h.
func (c *Cache[V]) Get(h [32]byte) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[h]
	c.mu.RUnlock()
	return v, ok
}

// Add adds entries, as long as the cache is under its limit.
func (c *Cache[V]) Add(entries map[[32]byte]V) {
	if len(entries) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, v := range entries {
		if len(c.m) >= c.limit {
			return
		}
		c.m[h] = v
	}
}

// Len returns the number of entries.
func (c *Cache[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Package cache is the one bounded in-memory cache of skydeskd: a map
// under a read-write lock with at most Max entries and an optional expiry
// per entry. Reads take only the read lock, so concurrent hits (the
// autoconfig documents, the verified-login cache) do not serialise.
//
// When a Put finds the cache full it looks at a few entries, in Go's
// random map order, and removes the expired ones; if none had expired it
// removes one of them. That keeps memory bounded with O(1) work per Put
// and, for a cache much larger than its working set, keeps hot entries
// with high probability, with no per-read bookkeeping (an LRU list would
// need the write lock on every hit).
package cache

import (
	"sync"
	"time"
)

// sweep is how many entries a Put on a full cache looks at.
const sweep = 32

type entry[V any] struct {
	v       V
	expires time.Time // zero: never
}

// Cache is a bounded map. The zero value is not usable; call New.
type Cache[K comparable, V any] struct {
	mu  sync.RWMutex
	max int
	now func() time.Time
	m   map[K]entry[V]
}

// New returns a cache of at most size entries (at least 1). now is the
// clock for expiries; nil means time.Now.
func New[K comparable, V any](size int, now func() time.Time) *Cache[K, V] {
	if now == nil {
		now = time.Now
	}
	return &Cache[K, V]{max: max(size, 1), now: now, m: make(map[K]entry[V], min(size, 1024))}
}

// Get returns the value under k, unless it is missing or has expired.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || (!e.expires.IsZero() && !c.now().Before(e.expires)) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v under k for ttl (0: until evicted or deleted; below 0:
// already expired, so nothing is stored and an older entry goes).
func (c *Cache[K, V]) Put(k K, v V, ttl time.Duration) {
	if ttl < 0 {
		c.Delete(k)
		return
	}
	var exp time.Time
	if ttl > 0 {
		exp = c.now().Add(ttl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		c.evictLocked()
	}
	c.m[k] = entry[V]{v: v, expires: exp}
}

// evictLocked frees at least one slot: the expired entries among a few
// looked at, or else the first of them.
func (c *Cache[K, V]) evictLocked() {
	now := c.now()
	n, freed := 0, false
	var first K
	for k, e := range c.m {
		if n == 0 {
			first = k
		}
		if !e.expires.IsZero() && !now.Before(e.expires) {
			delete(c.m, k)
			freed = true
		}
		if n++; n >= sweep {
			break
		}
	}
	if !freed {
		delete(c.m, first)
	}
}

// Delete removes k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// DeleteFunc removes every entry for which del returns true (for example
// every cached login of one account after its password changed).
func (c *Cache[K, V]) DeleteFunc(del func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if del(k, e.v) {
			delete(c.m, k)
		}
	}
}

// Clear removes every entry.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// Len is the number of entries, expired ones not yet evicted included.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/skydesk/skydeskd/internal/cache"
)

// ThrottleBucket is one throttle key's stored state, a leaky bucket
// (ThrottlePolicy): what a ThrottleCounters keeps per key. The
// arithmetic over it is store's own (bucketRule); a driver only stores it.
type ThrottleBucket struct {
	// Level is the failures not yet drained at At.
	Level float64
	// At is when Level was last drained.
	At time.Time
	// Until is the end of the key's lock (zero: not locked).
	Until time.Time
	// Expires is when the bucket has drained empty and is unlocked: from
	// then on it reads as the zero bucket, and a driver may delete it.
	Expires time.Time
}

// maxThrottleKeys bounds the keys counted in process memory.
const maxThrottleKeys = 100_000

// MemoryCounters are ThrottleCounters in process memory: one node's
// counts, lost on restart. The SQLite driver keeps its counts here (one
// node per database file, so there is nothing to share, and failed logins
// never queue on its one writer); the Authenticator over a shared driver
// keeps one as its fallback and mirror. Memory is bounded by the one
// bounded cache (internal/cache): a bucket goes when it expires, and a
// full cache evicts.
type MemoryCounters struct {
	mu   sync.Mutex // serialises each read-modify-write
	keys *cache.Cache[string, ThrottleBucket]
	now  func() time.Time
}

// NewMemoryCounters returns empty counters whose buckets expire by now
// (nil: time.Now).
func NewMemoryCounters(now func() time.Time) *MemoryCounters {
	if now == nil {
		now = time.Now
	}
	return &MemoryCounters{keys: cache.New[string, ThrottleBucket](maxThrottleKeys, now), now: now}
}

var _ ThrottleCounters = (*MemoryCounters)(nil)

// ThrottleState implements ThrottleCounters.
func (m *MemoryCounters) ThrottleState(_ context.Context, keys []string) ([]ThrottleBucket, error) {
	out := make([]ThrottleBucket, len(keys))
	for i, k := range keys {
		out[i], _ = m.keys.Get(k)
	}
	return out, nil
}

// UpdateThrottle implements ThrottleCounters under one mutex.
func (m *MemoryCounters) UpdateThrottle(_ context.Context, _ time.Time, keys []string, update func([]ThrottleBucket) []ThrottleBucket) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	bs := make([]ThrottleBucket, len(keys))
	for i, k := range keys {
		bs[i], _ = m.keys.Get(k)
	}
	m.put(keys, update(bs))
	return nil
}

// put stores bs under keys until each expires by the counters' clock.
func (m *MemoryCounters) put(keys []string, bs []ThrottleBucket) {
	now := m.now()
	for i, k := range keys {
		if ttl := bs[i].Expires.Sub(now); ttl > 0 {
			m.keys.Put(k, bs[i], ttl)
		} else {
			m.keys.Delete(k)
		}
	}
}

// ClearThrottle implements ThrottleCounters. The usual key has no
// bucket: a read then suffices (every cached login passes here).
func (m *MemoryCounters) ClearThrottle(_ context.Context, keys []string) error {
	for _, k := range keys {
		if _, ok := m.keys.Get(k); ok {
			m.keys.Delete(k)
		}
	}
	return nil
}

// clear forgets every count (tests).
func (m *MemoryCounters) clear() { m.keys.Clear() }

// processCounters marks counters kept in this process: the Authenticator
// needs no second copy of them as its fallback.
func (m *MemoryCounters) processCounters() *MemoryCounters { return m }

// ThrottleKeyHash returns the HMAC-SHA256 of a throttle key (a client
// network, a network and account pair, an account) under the database's
// key: drivers that store counts outside the process store these, never
// a raw address. A label keeps them apart from the onboarding hashes
// under the same key; read fetches the key's hex on first use.
func (k *OnboardingKey) ThrottleKeyHash(ctx context.Context, key string, read func(context.Context) (string, error)) ([]byte, error) {
	secret, err := k.load(ctx, read)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("throttle\x00"))
	m.Write([]byte(key))
	return m.Sum(nil), nil
}

package store

import (
	"context"
	"time"
)

// The SQLite driver's ThrottleCounters are in process memory: one node
// owns a database file, so there is no other node to share counts with,
// and keeping them off the one writer means an attack's failed logins
// never queue in front of mail delivery. The cost is that counts restart
// empty with the process, as they always did.

// ThrottleState implements ThrottleCounters.
func (s *Store) ThrottleState(ctx context.Context, keys []string) ([]ThrottleBucket, error) {
	return s.counters.ThrottleState(ctx, keys)
}

// UpdateThrottle implements ThrottleCounters.
func (s *Store) UpdateThrottle(ctx context.Context, now time.Time, keys []string, update func([]ThrottleBucket) []ThrottleBucket) error {
	return s.counters.UpdateThrottle(ctx, now, keys, update)
}

// ClearThrottle implements ThrottleCounters.
func (s *Store) ClearThrottle(ctx context.Context, keys []string) error {
	return s.counters.ClearThrottle(ctx, keys)
}

// processCounters: the Authenticator over this store uses its counts
// directly, with no mirror.
func (s *Store) processCounters() *MemoryCounters { return s.counters }

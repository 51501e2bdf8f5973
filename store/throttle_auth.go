package store

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/skydesk/skydeskd/internal/cache"
)

// throttles are the Authenticator's three counts (ThrottlePolicy) over a
// driver's ThrottleCounters. With counters shared between nodes (the
// PostgreSQL driver) a copy of every bucket this node read or wrote is
// kept in process memory as well: when the shared counters fail (the
// database down or read-only), the Authenticator neither locks everyone
// out nor stops throttling but counts in that copy, from the last shared
// state it saw, and logs once; the shared counts take over again as soon
// as they answer. Failures counted only in memory meanwhile are not
// carried over.
type throttles struct {
	policy  ThrottlePolicy
	now     func() time.Time
	net     *throttleKind[netip.Prefix]
	pair    *throttleKind[pairKey]
	account *throttleKind[string]

	shared ThrottleCounters // nil: local is the only store of counts
	local  *MemoryCounters
	// cleared notes the pair keys a cached login cleared in shared within
	// the last cachedClearEvery, so the cached path writes at most once
	// per pair and interval.
	cleared *cache.Cache[string, struct{}]
	log     *slog.Logger
	failing atomic.Bool // shared failed last time: logged, using local
}

// cachedClearEvery is how often at most a cached login of one account
// from one network clears that pair's shared count: its failures from
// other nodes (a stale client behind the same network) are forgotten
// with a write per interval, not per login.
const cachedClearEvery = time.Minute

// newThrottles counts under p in c, or in process memory when c is nil
// or itself in process memory.
func newThrottles(p ThrottlePolicy, now func() time.Time, c ThrottleCounters, log *slog.Logger) *throttles {
	p = p.withDefaults()
	t := &throttles{policy: p, now: now, log: log}
	t.net = &throttleKind[netip.Prefix]{bucketRule: newBucketRule(p.NetworkLockAfter, p.LockFor, 0, p.NetworkLockAfter, p.Window), th: t, key: netKey}
	t.pair = &throttleKind[pairKey]{bucketRule: newBucketRule(p.LockAfter, p.LockFor, 0, p.LockAfter, p.Window), th: t, key: pairKeyOf}
	t.account = &throttleKind[string]{bucketRule: newBucketRule(0, 0, p.LockAfter, p.LockAfter, p.Window), th: t, key: accountKey}
	if pc, ok := c.(interface{ processCounters() *MemoryCounters }); ok {
		t.local = pc.processCounters()
	} else {
		t.local = NewMemoryCounters(now)
		t.shared = c
		t.cleared = cache.New[string, struct{}](maxThrottleKeys, now)
	}
	return t
}

// sharedFailed reports whether err is the shared counters' failure (not
// the caller's context ending) and logs the first of a run.
func (t *throttles) sharedFailed(ctx context.Context, err error) bool {
	if err == nil {
		if t.failing.CompareAndSwap(true, false) {
			t.log.Info("login throttle counters answer again; counting in the database")
		}
		return false
	}
	if ctx.Err() == nil && t.failing.CompareAndSwap(false, true) {
		t.log.Error("login throttle counters failed; counting in this process until they answer", "err", err)
	}
	return true
}

// state reads keys' buckets: shared (kept in the local copy too, so a
// lock another node set outlasts an outage here), or the local copy if
// shared fails.
func (t *throttles) state(ctx context.Context, keys []string) []ThrottleBucket {
	if t.shared != nil {
		bs, err := t.shared.ThrottleState(ctx, keys)
		if !t.sharedFailed(ctx, err) && len(bs) == len(keys) {
			t.mirror(keys, bs)
			return bs
		}
	}
	bs, _ := t.local.ThrottleState(ctx, keys) // in memory: never fails
	return bs
}

// update applies f to keys' buckets: in shared, mirroring the result in
// the local copy, or in the local copy alone if shared fails.
func (t *throttles) update(ctx context.Context, keys []string, f func([]ThrottleBucket) []ThrottleBucket) {
	now := t.now()
	if t.shared != nil {
		var stored []ThrottleBucket
		err := t.shared.UpdateThrottle(ctx, now, keys, func(bs []ThrottleBucket) []ThrottleBucket {
			stored = f(bs)
			return stored
		})
		if !t.sharedFailed(ctx, err) && len(stored) == len(keys) {
			t.mirror(keys, stored)
			return
		}
	}
	_ = t.local.UpdateThrottle(ctx, now, keys, f) // in memory: never fails
}

// mirror keeps the shared buckets of keys in the local copy.
func (t *throttles) mirror(keys []string, bs []ThrottleBucket) {
	t.local.mu.Lock()
	t.local.put(keys, bs)
	t.local.mu.Unlock()
}

// lockedFor returns how long the client network, or the pair of it and
// the account, stays locked (0: neither is).
func (t *throttles) lockedFor(ctx context.Context, netw netip.Prefix, pk pairKey) time.Duration {
	bs := t.state(ctx, []string{t.net.key(netw), t.pair.key(pk)})
	now := t.now()
	return max(lockLeft(bs[0], now), lockLeft(bs[1], now))
}

// fail counts one failure under the three keys and returns the pair's and
// the account's counts with it and whether it locked the network or the
// pair.
func (t *throttles) fail(ctx context.Context, netw netip.Prefix, pk pairKey) (nPair, nAccount int, locked bool) {
	keys := []string{t.net.key(netw), t.pair.key(pk), t.account.key(pk.user)}
	rules := [...]bucketRule{t.net.bucketRule, t.pair.bucketRule, t.account.bucketRule}
	now := t.now()
	t.update(ctx, keys, func(bs []ThrottleBucket) []ThrottleBucket {
		out := make([]ThrottleBucket, len(bs))
		var n [3]int
		var l [3]bool
		for i := range bs {
			out[i], n[i], l[i] = rules[i].fail(bs[i], now)
		}
		nPair, nAccount, locked = n[1], n[2], l[0] || l[1]
		return out
	})
	return nPair, nAccount, locked
}

// succeed forgets the pair's failures after a verified login; the
// cached logins that follow within cachedClearEvery need not again.
func (t *throttles) succeed(ctx context.Context, pk pairKey) {
	keys := []string{t.pair.key(pk)}
	_ = t.local.ClearThrottle(ctx, keys)
	if t.shared != nil {
		t.cleared.Put(keys[0], struct{}{}, cachedClearEvery)
		t.sharedFailed(ctx, t.shared.ClearThrottle(ctx, keys))
	}
}

// succeedCached is succeed for a login the cache answered: the local
// count as before, the shared one at most once per cachedClearEvery, so
// a cached login costs no write of its own.
func (t *throttles) succeedCached(ctx context.Context, pk pairKey) {
	keys := []string{t.pair.key(pk)}
	_ = t.local.ClearThrottle(ctx, keys)
	if t.shared == nil {
		return
	}
	if _, ok := t.cleared.Get(keys[0]); ok {
		return
	}
	t.cleared.Put(keys[0], struct{}{}, cachedClearEvery)
	t.sharedFailed(ctx, t.shared.ClearThrottle(ctx, keys))
}

// clear forgets every count in process memory (tests).
func (t *throttles) clear() { t.local.clear() }

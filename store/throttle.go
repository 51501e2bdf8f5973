package store

import (
	"net/netip"
	"sync"
	"time"

	"github.com/skydesk/skydeskd/internal/cache"
)

// ThrottlePolicy says how failed logins slow down and where they lock.
//
// Failures are counted under three keys: the client network (an IPv4 /32
// or IPv6 /64 by default), the pair (client network, account) and the
// account across every network. Only the first two ever lock: an
// attacker's guesses from many addresses lock those addresses, never the
// account's owner elsewhere. The account count only delays failures.
type ThrottlePolicy struct {
	// FreeFailures failed attempts per pair or account cost nothing extra.
	FreeFailures int
	// LockAfter failures of one (client network, account) pair lock that
	// pair for LockFor.
	LockAfter int
	LockFor   time.Duration
	// NetworkLockAfter failures from one client network, whatever the
	// accounts, lock the network for LockFor (default 100: an office NAT
	// of normal users with a stale client or two stays well under it).
	NetworkLockAfter int
	// BaseDelay is the delay after the first non-free failure; it doubles
	// with each further one, up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Window is the leak of the counts (leaky buckets): each key's count
	// drains by its lock threshold per Window (default 1 hour; the
	// account count, which never locks, drains by LockAfter). A lock that
	// expires starts its key afresh.
	Window time.Duration
	// IPv4Prefix and IPv6Prefix are the sizes of a client network
	// (default 32 and 64: one host usually owns a whole IPv6 /64).
	IPv4Prefix, IPv6Prefix int
}

// DefaultThrottlePolicy: per pair and per account 3 free failures, then
// 0.5 s, 1 s, 2 s … (max 8 s); 10 failures of a pair or 100 of a network
// lock it for 15 minutes. Dovecot's auth penalty works the same way
// (doubling up to 15 s per remote IP).
var DefaultThrottlePolicy = ThrottlePolicy{
	FreeFailures: 3, LockAfter: 10, LockFor: 15 * time.Minute, NetworkLockAfter: 100,
	BaseDelay: 500 * time.Millisecond, MaxDelay: 8 * time.Second, Window: time.Hour,
	IPv4Prefix: 32, IPv6Prefix: 64,
}

// withDefaults fills the fields a caller left zero.
func (p ThrottlePolicy) withDefaults() ThrottlePolicy {
	d := DefaultThrottlePolicy
	if p.NetworkLockAfter <= 0 {
		p.NetworkLockAfter = d.NetworkLockAfter
	}
	if p.Window <= 0 {
		p.Window = d.Window
	}
	if p.IPv4Prefix <= 0 {
		p.IPv4Prefix = d.IPv4Prefix
	}
	if p.IPv6Prefix <= 0 {
		p.IPv6Prefix = d.IPv6Prefix
	}
	return p
}

// delay is the wait imposed on a failure when a key holds n failures.
func (p ThrottlePolicy) delay(n int) time.Duration {
	if n <= p.FreeFailures {
		return 0
	}
	shift := n - p.FreeFailures - 1
	if shift > 30 {
		return p.MaxDelay
	}
	d := p.BaseDelay << shift
	if d > p.MaxDelay || d <= 0 {
		d = p.MaxDelay
	}
	return d
}

// pairKey is one account (or the user name given, for names that are no
// account) from one client network.
type pairKey struct {
	net  netip.Prefix
	user string
}

// bucket is one key's leaky bucket.
type bucket struct {
	level float64   // failures not yet drained
	at    time.Time // when level was last drained
	until time.Time // locked until
}

// throttle counts failures per key in a leaky bucket that drains by
// lockAfter per window. With lockAfter > 0 a full bucket locks the key
// for lockFor and empties; with lockAfter == 0 the key never locks and
// its level stops at ceiling. Memory is bounded by the one bounded cache
// (internal/cache): an entry expires when its bucket is empty and
// unlocked, and a full cache evicts.
type throttle[K comparable] struct {
	mu        sync.Mutex // serialises each read-modify-write
	keys      *cache.Cache[K, bucket]
	now       func() time.Time
	lockAfter int
	lockFor   time.Duration
	ceiling   float64
	perSecond float64 // drain rate
}

const maxThrottleKeys = 100_000

func newThrottle[K comparable](now func() time.Time, lockAfter int, lockFor time.Duration, ceiling int, drain int, window time.Duration) *throttle[K] {
	return &throttle[K]{keys: cache.New[K, bucket](maxThrottleKeys, now), now: now,
		lockAfter: lockAfter, lockFor: lockFor, ceiling: float64(ceiling),
		perSecond: float64(max(drain, 1)) / window.Seconds()}
}

// locked returns how long the key stays locked (0: not locked).
func (t *throttle[K]) locked(key K) time.Duration {
	b, ok := t.keys.Get(key)
	if !ok {
		return 0
	}
	return max(0, b.until.Sub(t.now()))
}

// drained is b at now: the level leaked since b.at, and a fresh bucket
// once a lock has expired.
func (t *throttle[K]) drained(b bucket, now time.Time) bucket {
	if !b.until.IsZero() && !now.Before(b.until) {
		return bucket{at: now}
	}
	b.level = max(0, b.level-now.Sub(b.at).Seconds()*t.perSecond)
	b.at = now
	return b
}

// fail records a failure and returns the key's count with it and whether
// the key is now locked.
func (t *throttle[K]) fail(key K) (n int, locked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	b, _ := t.keys.Get(key)
	b = t.drained(b, now)
	b.level++
	if t.ceiling > 0 {
		b.level = min(b.level, t.ceiling)
	}
	// Rounded: the leak between failures seconds apart must not keep the
	// lockAfter-th failure from locking.
	n = int(b.level + 0.5)
	if t.lockAfter > 0 && n >= t.lockAfter {
		b = bucket{at: now, until: now.Add(t.lockFor)}
		locked = true
	}
	ttl := time.Duration(b.level/t.perSecond*float64(time.Second)) + time.Second
	ttl = max(ttl, b.until.Sub(now))
	t.keys.Put(key, b, ttl)
	return n, locked
}

// succeed forgets a key's failures. The usual key has none: a read lock
// then suffices (every cached login passes here).
func (t *throttle[K]) succeed(key K) {
	if _, ok := t.keys.Get(key); ok {
		t.keys.Delete(key)
	}
}

// failuresOf returns the key's current count, rounded (for tests).
func (t *throttle[K]) failuresOf(key K) int {
	b, ok := t.keys.Get(key)
	if !ok {
		return 0
	}
	return int(t.drained(b, t.now()).level + 0.5)
}

// throttles are the Authenticator's three counts.
type throttles struct {
	policy  ThrottlePolicy
	net     *throttle[netip.Prefix]
	pair    *throttle[pairKey]
	account *throttle[string]
}

func newThrottles(p ThrottlePolicy, now func() time.Time) *throttles {
	p = p.withDefaults()
	return &throttles{
		policy:  p,
		net:     newThrottle[netip.Prefix](now, p.NetworkLockAfter, p.LockFor, 0, p.NetworkLockAfter, p.Window),
		pair:    newThrottle[pairKey](now, p.LockAfter, p.LockFor, 0, p.LockAfter, p.Window),
		account: newThrottle[string](now, 0, 0, p.LockAfter, p.LockAfter, p.Window),
	}
}

// clear forgets every count (tests).
func (t *throttles) clear() {
	t.net.keys.Clear()
	t.pair.keys.Clear()
	t.account.keys.Clear()
}

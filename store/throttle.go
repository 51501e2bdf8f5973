package store

import (
	"context"
	"net/netip"
	"time"
)

// ThrottlePolicy says how failed logins slow down and where they lock.
//
// Failures are counted under three keys: the client network (an IPv4 /32
// or IPv6 /64 by default), the pair (client network, account) and the
// account across every network. Only the first two ever lock: an
// attacker's guesses from many addresses lock those addresses, never the
// account's owner elsewhere. The account count only delays failures.
// The counts live in the driver's ThrottleCounters: shared by every node
// on PostgreSQL, in process memory on SQLite (throttle_auth.go).
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

// bucketRule is the leaky-bucket arithmetic of one kind of key, the one
// place it lives whatever stores the buckets (ThrottleCounters): the
// level drains by perSecond; with lockAfter > 0 a full bucket locks the
// key for lockFor and empties; with lockAfter == 0 the key never locks and
// its level stops at ceiling.
type bucketRule struct {
	lockAfter int
	lockFor   time.Duration
	ceiling   float64
	perSecond float64 // drain rate
}

func newBucketRule(lockAfter int, lockFor time.Duration, ceiling, drain int, window time.Duration) bucketRule {
	return bucketRule{lockAfter: lockAfter, lockFor: lockFor, ceiling: float64(ceiling),
		perSecond: float64(max(drain, 1)) / window.Seconds()}
}

// drained is b at now: the level leaked since b.At, and a fresh bucket
// once a lock has expired. Time never runs backwards here: a bucket
// written by a node whose clock is ahead drains nothing until now passes
// its At (nodes' clocks are NTP-close; a throttle counts in minutes).
func (r bucketRule) drained(b ThrottleBucket, now time.Time) ThrottleBucket {
	if !b.Until.IsZero() && !now.Before(b.Until) {
		return ThrottleBucket{At: now}
	}
	b.Level = max(0, b.Level-max(0, now.Sub(b.At).Seconds())*r.perSecond)
	if b.At.Before(now) {
		b.At = now
	}
	return b
}

// fail adds a failure at now to b and returns the new bucket, the key's
// count with this failure (rounded) and whether the key is now locked.
func (r bucketRule) fail(b ThrottleBucket, now time.Time) (ThrottleBucket, int, bool) {
	b = r.drained(b, now)
	b.Level++
	if r.ceiling > 0 {
		b.Level = min(b.Level, r.ceiling)
	}
	// Rounded: the leak between failures seconds apart must not keep the
	// lockAfter-th failure from locking.
	n := int(b.Level + 0.5)
	locked := false
	if r.lockAfter > 0 && n >= r.lockAfter {
		b = ThrottleBucket{At: now, Until: now.Add(r.lockFor)}
		locked = true
	}
	b.Expires = b.At.Add(time.Duration(b.Level/r.perSecond*float64(time.Second)) + time.Second)
	if b.Until.After(b.Expires) {
		b.Expires = b.Until
	}
	return b, n, locked
}

// lockLeft is how long b keeps its key locked after now (0: not locked).
func lockLeft(b ThrottleBucket, now time.Time) time.Duration {
	return max(0, b.Until.Sub(now))
}

// throttleKind is one of the three counts: its rule and how its keys
// are spelt for the counters (a kind letter, then the key).
type throttleKind[K any] struct {
	bucketRule
	th  *throttles
	key func(K) string
}

// failuresOf returns the key's current count, rounded (for tests).
func (k *throttleKind[K]) failuresOf(key K) int {
	bs := k.th.state(context.Background(), []string{k.key(key)})
	return int(k.drained(bs[0], k.th.now()).Level + 0.5)
}

// The three kinds' key spellings: a kind letter, then the key; a
// prefix's text holds no NUL, so the pair's user part (the rest) is
// never ambiguous.
func netKey(p netip.Prefix) string  { return "n\x00" + p.String() }
func pairKeyOf(k pairKey) string    { return "p\x00" + k.net.String() + "\x00" + k.user }
func accountKey(user string) string { return "a\x00" + user }

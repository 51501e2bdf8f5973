package store

import (
	"sync"
	"time"
)

// ThrottlePolicy says how failed logins slow down and then lock.
type ThrottlePolicy struct {
	// FreeFailures failed attempts per key cost nothing extra.
	FreeFailures int
	// LockAfter failures lock the key for LockFor.
	LockAfter int
	LockFor   time.Duration
	// BaseDelay is the delay after the first non-free failure; it doubles
	// with each further one, up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Window: failures older than this are forgotten.
	Window time.Duration
}

// DefaultThrottlePolicy: 3 free failures, then 0.5 s, 1 s, 2 s … (max 8 s),
// and after 10 failures a 15-minute lock. Dovecot's auth penalty works the
// same way (doubling up to 15 s per remote IP).
var DefaultThrottlePolicy = ThrottlePolicy{
	FreeFailures: 3, LockAfter: 10, LockFor: 15 * time.Minute,
	BaseDelay: 500 * time.Millisecond, MaxDelay: 8 * time.Second, Window: time.Hour,
}

type failures struct {
	n     int
	last  time.Time
	until time.Time // locked until
}

// throttle counts failed logins per key (a remote address, an account).
// Memory is bounded: at most maxKeys entries, the stalest evicted first by
// a sweep.
type throttle struct {
	mu     sync.Mutex
	policy ThrottlePolicy
	keys   map[string]*failures
	now    func() time.Time
}

const maxThrottleKeys = 100_000

func newThrottle(p ThrottlePolicy, now func() time.Time) *throttle {
	return &throttle{policy: p, keys: map[string]*failures{}, now: now}
}

// check returns how long the key stays locked (0: not locked).
func (t *throttle) check(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.keys[key]
	if f == nil {
		return 0
	}
	if d := f.until.Sub(t.now()); d > 0 {
		return d
	}
	return 0
}

// fail records a failure and returns the delay to impose before answering
// and whether the key is now locked.
func (t *throttle) fail(key string) (delay time.Duration, locked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.keys[key]
	if f == nil || now.Sub(f.last) > t.policy.Window {
		if len(t.keys) >= maxThrottleKeys {
			t.sweep(now)
		}
		f = &failures{}
		t.keys[key] = f
	}
	f.n++
	f.last = now
	if f.n >= t.policy.LockAfter {
		f.until = now.Add(t.policy.LockFor)
		return 0, true
	}
	if f.n > t.policy.FreeFailures {
		d := t.policy.BaseDelay << (f.n - t.policy.FreeFailures - 1)
		if d > t.policy.MaxDelay || d <= 0 {
			d = t.policy.MaxDelay
		}
		return d, false
	}
	return 0, false
}

// succeed forgets a key's failures.
func (t *throttle) succeed(key string) {
	t.mu.Lock()
	delete(t.keys, key)
	t.mu.Unlock()
}

// failuresOf returns the current failure count of a key (for tests and
// metrics).
func (t *throttle) failuresOf(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.keys[key]; f != nil {
		return f.n
	}
	return 0
}

func (t *throttle) sweep(now time.Time) {
	for k, f := range t.keys {
		if now.Sub(f.last) > t.policy.Window && now.After(f.until) {
			delete(t.keys, k)
		}
	}
	// Still full (an attack from many keys): drop half, unlocked first.
	if len(t.keys) >= maxThrottleKeys {
		n := 0
		for k, f := range t.keys {
			if now.After(f.until) {
				delete(t.keys, k)
				if n++; n >= maxThrottleKeys/2 {
					break
				}
			}
		}
	}
}

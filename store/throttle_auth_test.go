package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flakyCounters are shared counters (they do not say they live in this
// process) over memory, failing while down is set, counting clears.
type flakyCounters struct {
	m      *MemoryCounters
	down   atomic.Bool
	mu     sync.Mutex
	clears int
}

var errDown = errors.New("database down")

func (c *flakyCounters) ThrottleState(ctx context.Context, keys []string) ([]ThrottleBucket, error) {
	if c.down.Load() {
		return nil, errDown
	}
	return c.m.ThrottleState(ctx, keys)
}

func (c *flakyCounters) UpdateThrottle(ctx context.Context, now time.Time, keys []string, f func([]ThrottleBucket) []ThrottleBucket) error {
	if c.down.Load() {
		return errDown
	}
	return c.m.UpdateThrottle(ctx, now, keys, f)
}

func (c *flakyCounters) ClearThrottle(ctx context.Context, keys []string) error {
	c.mu.Lock()
	c.clears++
	c.mu.Unlock()
	if c.down.Load() {
		return errDown
	}
	return c.m.ClearThrottle(ctx, keys)
}

// newSharedFixture is the auth fixture (2 free failures, lock at the
// 5th) over flaky shared counters, logging into the returned buffer.
func newSharedFixture(t *testing.T) (*authFixture, *flakyCounters, *bytes.Buffer) {
	t.Helper()
	f := newAuthFixture(t)
	c := &flakyCounters{m: NewMemoryCounters(f.clock.now)}
	var logs bytes.Buffer
	a, err := NewAuthenticator(f.s, AuthOptions{Policy: f.a.th.policy, HashParams: TestHashParams, Now: f.clock.now,
		Observe: func(_ Service, o string) { f.counts[o]++ }, Counters: c,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a.sleep = f.a.sleep
	f.a = a
	if _, err := f.s.AddAccount(context.Background(), NewAccount{Address: "taro@skydesk.jp", Password: "right-password"}); err != nil {
		t.Fatal(err)
	}
	return f, c, &logs
}

// otherNode is a second Authenticator over the same shared counters.
func (f *authFixture) otherNode(t *testing.T, c ThrottleCounters) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(f.s, AuthOptions{Policy: f.a.th.policy, HashParams: TestHashParams, Now: f.clock.now, Counters: c})
	if err != nil {
		t.Fatal(err)
	}
	a.sleep = f.a.sleep
	return a
}

// The shared counts are what the Authenticator reads and writes: a
// failure recorded there by another node counts here.
func TestThrottle_sharedCountsAreRead(t *testing.T) {
	f, c, _ := newSharedFixture(t)
	other := f.otherNode(t, c)
	for range 4 {
		_, err := other.Login(context.Background(), LoginRequest{Username: "taro@skydesk.jp", Password: "guess", Remote: ip1, Service: ServicePOP3})
		if reason(err) != AuthBadCredentials {
			t.Fatal(err)
		}
	}
	if _, err := f.login("taro@skydesk.jp", "guess", ServicePOP3, ip1); reason(err) != AuthBadCredentials || f.counts["lock_engaged"] != 1 {
		t.Fatalf("5th failure, the other node's 4 before it: %v, %v", err, f.counts)
	}
	if _, err := other.Login(context.Background(), LoginRequest{Username: "taro@skydesk.jp", Password: "right-password", Remote: ip1, Service: ServicePOP3}); reason(err) != AuthLocked {
		t.Fatalf("the other node after the lock: %v", err)
	}
}

// With the shared counters down, the Authenticator neither locks anyone
// out nor stops throttling: it counts in process memory, from the last
// shared state it saw, logs once, and says so once when they answer
// again.
func TestThrottle_sharedCountersDownFallBack(t *testing.T) {
	f, c, logs := newSharedFixture(t)
	for range 3 {
		_, _ = f.login("taro@skydesk.jp", "guess", ServicePOP3, ip1)
	}
	c.down.Store(true)
	// Nobody locked out: the owner from another network gets in.
	if _, err := f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip2); err != nil {
		t.Fatalf("owner while the counters are down: %v", err)
	}
	// Still throttled: the 4th failure is delayed, the 5th locks, as
	// counted before the outage.
	slept := len(f.slept)
	if _, err := f.login("taro@skydesk.jp", "guess", ServicePOP3, ip1); reason(err) != AuthBadCredentials || len(f.slept) != slept+1 {
		t.Fatalf("4th failure while down: %v, slept %v", err, f.slept[slept:])
	}
	_, _ = f.login("taro@skydesk.jp", "guess", ServicePOP3, ip1)
	f.a.cache.Clear() // a new client of the owner: nothing cached
	if _, err := f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1); reason(err) != AuthLocked {
		t.Fatalf("after the 5th failure while down: %v; want locked", err)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d errors logged for one outage; want 1:\n%s", n, logs)
	}
	c.down.Store(false)
	// Back: the shared counts rule again (they hold 3 failures, the
	// failures counted meanwhile only here).
	f.a.cache.Clear()
	if _, err := f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1); err != nil {
		t.Fatalf("after the counters answer again: %v", err)
	}
	if n := strings.Count(logs.String(), "answer again"); n != 1 {
		t.Errorf("recovery logged %d times; want 1:\n%s", n, logs)
	}
}

// A lock another node set, read here once, holds through an outage of
// the shared counters.
func TestThrottle_lockSeenHoldsThroughOutage(t *testing.T) {
	f, c, _ := newSharedFixture(t)
	other := f.otherNode(t, c)
	for range 5 {
		_, _ = other.Login(context.Background(), LoginRequest{Username: "taro@skydesk.jp", Password: "guess", Remote: ip1, Service: ServicePOP3})
	}
	if _, err := f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1); reason(err) != AuthLocked {
		t.Fatalf("after the other node's 5 failures: %v; want locked", err)
	}
	c.down.Store(true)
	if _, err := f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1); reason(err) != AuthLocked {
		t.Fatalf("the same, the counters down: %v; want still locked", err)
	}
}

// A cached login clears the pair's shared count at most once a minute:
// the cached path adds no write per login.
func TestThrottle_cachedLoginClearsSharedRarely(t *testing.T) {
	f, c, _ := newSharedFixture(t)
	for range 3 {
		_, _ = f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1)
	}
	for range 100 {
		_, _ = f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1)
	}
	if c.clears != 1 { // the verified login's
		t.Fatalf("%d clears after a verified and 102 cached logins within a minute; want 1", c.clears)
	}
	// Another node's failures of the pair are forgotten by the next
	// cached login after the minute.
	for range 4 {
		_ = c.UpdateThrottle(context.Background(), f.clock.now(), []string{pairKeyOf(pairKey{f.a.network(ip1), "taro@skydesk.jp"})},
			func(bs []ThrottleBucket) []ThrottleBucket {
				b, _, _ := f.a.th.pair.fail(bs[0], f.clock.now())
				return []ThrottleBucket{b}
			})
	}
	f.clock.add(cachedClearEvery)
	_, _ = f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1)
	if n := f.a.th.pair.failuresOf(pairKey{f.a.network(ip1), "taro@skydesk.jp"}); n != 0 || c.clears != 2 {
		t.Fatalf("after a minute: %d failures, %d clears; want 0 and 2", n, c.clears)
	}
}

// BenchmarkLoginFailed is a wrong password's refusal with cheap hashing
// and the delays not slept: what the throttle's checks and counting cost
// (no lock is reached).
func BenchmarkLoginFailed(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), Options{PersonalDomain: "skydesk.jp", HashParams: TestHashParams})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.AddAccount(ctx, NewAccount{Address: "taro@skydesk.jp", Password: "right-password"}); err != nil {
		b.Fatal(err)
	}
	a, err := s.NewAuthenticator(AuthOptions{Policy: ThrottlePolicy{FreeFailures: 1, LockAfter: 1 << 30, NetworkLockAfter: 1 << 30,
		LockFor: time.Minute, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	a.sleep = func(context.Context, time.Duration) error { return nil }
	req := LoginRequest{Username: "taro@skydesk.jp", Password: "wrong-password", Remote: ip1, Service: ServicePOP3}
	for b.Loop() {
		if _, err := a.Login(ctx, req); reason(err) != AuthBadCredentials {
			b.Fatal(err)
		}
	}
}

// The leaky-bucket arithmetic on buckets another node wrote: a clock a
// little ahead never makes a level grow, and a lock ended by either
// clock starts the key afresh.
func TestBucketRule_otherNodesClocks(t *testing.T) {
	r := newBucketRule(10, 15*time.Minute, 0, 10, time.Hour) // drains 10 an hour
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name string
		b    ThrottleBucket
		want float64
	}{
		{"written an hour ago", ThrottleBucket{Level: 6, At: now.Add(-time.Hour / 2)}, 1},
		{"written by a clock 2 s ahead", ThrottleBucket{Level: 6, At: now.Add(2 * time.Second)}, 6},
		{"lock ended", ThrottleBucket{At: now.Add(-time.Hour), Until: now}, 0},
	} {
		if got := r.drained(tc.b, now); got.Level != tc.want || got.At.Before(now) {
			t.Errorf("%s: drained %+v; want level %v, at no earlier than now", tc.name, got, tc.want)
		}
	}
	b, n, locked := r.fail(ThrottleBucket{Level: 8.6, At: now}, now)
	if n != 10 || !locked || !b.Until.Equal(now.Add(15*time.Minute)) || !b.Expires.Equal(b.Until) || b.Level != 0 {
		t.Errorf("10th failure: %+v, %d, %v; want locked for 15 minutes, emptied", b, n, locked)
	}
	b, n, locked = r.fail(ThrottleBucket{}, now)
	if n != 1 || locked || !b.Expires.Equal(now.Add(6*time.Minute+time.Second)) {
		t.Errorf("first failure: %+v, %d, %v; want 1, expiring once drained (6 min) + 1 s", b, n, locked)
	}
}

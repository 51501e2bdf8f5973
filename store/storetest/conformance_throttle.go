package storetest

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// testThrottleCounters: the throttle's buckets read back as written,
// each update is atomic against concurrent ones (as several nodes'
// would be), a clear forgets, and expired buckets go as others are
// written.
func testThrottleCounters(t *testing.T, d store.Driver) {
	ctx := t.Context()
	keys := []string{"n\x00192.0.2.0/32", "p\x00192.0.2.0/32\x00taro@skydesk.jp", "a\x00taro@skydesk.jp"}
	bs, err := d.ThrottleState(ctx, keys)
	if err != nil || len(bs) != 3 || bs[0] != (store.ThrottleBucket{}) || bs[2] != (store.ThrottleBucket{}) {
		t.Fatalf("ThrottleState of new keys = %v, %v; want 3 zero buckets", bs, err)
	}
	// The store's clock is the wall clock: the in-memory driver drops a
	// bucket once it has expired by it.
	wall := time.Now()
	now := wall
	want := []store.ThrottleBucket{
		{Level: 1.5, At: wall, Expires: wall.Add(time.Hour)},
		{Level: 0, At: wall, Until: wall.Add(15 * time.Minute), Expires: wall.Add(15 * time.Minute)},
		{Level: 10, At: wall, Expires: wall.Add(2 * time.Hour)},
	}
	err = d.UpdateThrottle(ctx, now, keys, func(got []store.ThrottleBucket) []store.ThrottleBucket {
		if len(got) != 3 || got[1] != (store.ThrottleBucket{}) {
			t.Errorf("update was given %v; want 3 zero buckets", got)
		}
		return want
	})
	if err != nil {
		t.Fatalf("UpdateThrottle: %v", err)
	}
	bs, err = d.ThrottleState(ctx, []string{keys[2], "a\x00other@skydesk.jp", keys[0], keys[1]})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []store.ThrottleBucket{want[2], {}, want[0], want[1]} {
		if !sameBucket(bs[i], w) {
			t.Errorf("ThrottleState[%d] = %+v; want %+v", i, bs[i], w)
		}
	}
	if err := d.ClearThrottle(ctx, keys[1:2]); err != nil {
		t.Fatal(err)
	}
	if bs, err := d.ThrottleState(ctx, keys); err != nil || bs[1] != (store.ThrottleBucket{}) || !sameBucket(bs[0], want[0]) {
		t.Errorf("after clearing the pair: %+v, %v; want it zero, the others kept", bs, err)
	}

	// Concurrent updates of overlapping keys, in both orders, lose none.
	const workers, each = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		ks := []string{"a\x00k1", "a\x00k2"}
		if w%2 == 1 {
			ks = []string{"a\x00k2", "a\x00k1"}
		}
		wg.Go(func() {
			for range each {
				err := d.UpdateThrottle(ctx, now, ks, func(got []store.ThrottleBucket) []store.ThrottleBucket {
					for i := range got {
						got[i].Level++
						got[i].At, got[i].Expires = wall, wall.Add(time.Hour)
					}
					return got
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if bs, err := d.ThrottleState(ctx, []string{"a\x00k1", "a\x00k2"}); err != nil || bs[0].Level != workers*each || bs[1].Level != workers*each {
		t.Errorf("after %d concurrent updates: %+v, %v", workers*each, bs, err)
	}

	// Buckets written already expired are gone once others are written.
	old := make([]string, 100)
	for i := range old {
		old[i] = fmt.Sprintf("n\x00198.51.100.%d/32", i)
		err := d.UpdateThrottle(ctx, wall, old[i:i+1], func([]store.ThrottleBucket) []store.ThrottleBucket {
			return []store.ThrottleBucket{{Level: 1, At: wall.Add(-2 * time.Hour), Expires: wall.Add(-time.Hour)}}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = d.UpdateThrottle(ctx, wall, []string{"a\x00fresh"}, func([]store.ThrottleBucket) []store.ThrottleBucket {
		return []store.ThrottleBucket{{Level: 1, At: wall, Expires: wall.Add(time.Hour)}}
	})
	if err != nil {
		t.Fatal(err)
	}
	bs, err = d.ThrottleState(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bs {
		if b != (store.ThrottleBucket{}) {
			t.Fatalf("expired bucket %d still stored: %+v", i, b)
		}
	}
}

// sameBucket compares buckets by instant (a driver may keep another
// location or no monotonic reading).
func sameBucket(a, b store.ThrottleBucket) bool {
	return a.Level == b.Level && a.At.Equal(b.At) && a.Until.Equal(b.Until) && a.Expires.Equal(b.Expires)
}

// testThrottleNodes: two Authenticators over one driver, as two nodes
// over one database, count failed logins alternated between them as one
// throttle: the same delays and the same lock as one Authenticator, and
// the owner's cached client still gets in (issue 13's model).
func testThrottleNodes(t *testing.T, d store.Driver) {
	ctx := t.Context()
	user(t, d, "taro@"+PersonalDomain)
	policy := store.ThrottlePolicy{FreeFailures: 2, LockAfter: 5, LockFor: time.Minute, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour}
	var mu sync.Mutex
	var outcomes []string
	node := func() *store.Authenticator {
		a, err := store.NewAuthenticator(d, store.AuthOptions{Policy: policy, HashParams: store.TestHashParams,
			Observe: func(_ store.Service, o string) { mu.Lock(); outcomes = append(outcomes, o); mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	nodes := []*store.Authenticator{node(), node()}
	owner, attacker := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("192.0.2.66")
	login := func(a *store.Authenticator, pw string, ip netip.Addr) (store.AuthReason, error) {
		_, err := a.Login(ctx, store.LoginRequest{Username: "taro@" + PersonalDomain, Password: pw, Remote: ip, Service: store.ServicePOP3})
		var ae *store.AuthError
		if errors.As(err, &ae) {
			return ae.Reason, nil
		}
		return 0, err
	}
	// The owner's client on node A, and the attacker's network too.
	for _, ip := range []netip.Addr{owner, attacker} {
		if r, err := login(nodes[0], "password-taro@"+PersonalDomain, ip); r != 0 || err != nil {
			t.Fatalf("owner's first login from %s: %v, %v", ip, r, err)
		}
	}
	wantOutcomes := [][]string{
		{"bad_credentials"}, {"bad_credentials"}, // free
		{"bad_credentials", "delayed"}, {"bad_credentials", "delayed"},
		{"bad_credentials", "lock_engaged"}, // the 5th of the pair locks it
	}
	for i, w := range wantOutcomes {
		outcomes = nil
		if r, err := login(nodes[i%2], "wrong-password", attacker); r != store.AuthBadCredentials || err != nil {
			t.Fatalf("failure %d on node %c: %v, %v", i+1, 'A'+i%2, r, err)
		}
		if fmt.Sprint(outcomes) != fmt.Sprint(w) {
			t.Errorf("failure %d on node %c: outcomes %v; want %v (as on one node)", i+1, 'A'+i%2, outcomes, w)
		}
	}
	// Locked on both nodes for a new client from the attacker's network…
	for i, a := range nodes {
		if r, err := login(a, "another-guess", attacker); r != store.AuthLocked || err != nil {
			t.Errorf("node %c after 5 failures: %v, %v; want locked", 'A'+i, r, err)
		}
	}
	if r, err := login(nodes[1], "password-taro@"+PersonalDomain, attacker); r != store.AuthLocked || err != nil {
		t.Errorf("owner's new client on node B behind the locked pair: %v, %v; want locked", r, err)
	}
	// …but the owner's cached client passes there, and any client from
	// the owner's own network passes on either node.
	if r, err := login(nodes[0], "password-taro@"+PersonalDomain, attacker); r != 0 || err != nil {
		t.Errorf("owner's cached client on node A behind the locked pair: %v, %v", r, err)
	}
	for i, a := range nodes {
		if r, err := login(a, "password-taro@"+PersonalDomain, owner); r != 0 || err != nil {
			t.Errorf("owner from his own network on node %c: %v, %v", 'A'+i, r, err)
		}
	}
}

package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// newSession is a session of acc keyed by name, bound to its current
// generation, signed in and seen at (whole seconds, as the store keeps
// them).
func newSession(d store.Driver, t *testing.T, acc store.Account, name string, at time.Time) store.WebSession {
	t.Helper()
	r, err := d.Credentials(t.Context(), acc.Address)
	if err != nil {
		t.Fatal(err)
	}
	return store.WebSession{Key: sha256.Sum256([]byte(name)), AccountID: acc.ID, Generation: r.Generation,
		Created: at, Seen: at, AuthAt: at}
}

func getSession(t *testing.T, d store.Driver, k store.SessionKey) (store.WebSession, bool) {
	t.Helper()
	s, err := d.GetSession(t.Context(), k)
	if errors.Is(err, store.ErrNotFound) {
		return store.WebSession{}, false
	}
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	return s, true
}

var sessionT0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testSessions checks the Sessions role and ChangePassword. The parts
// share one store, each with its own account, and leave no session
// behind (SessionLimits counts the whole table).
func testSessions(t *testing.T, d store.Driver) {
	for _, p := range []struct {
		name string
		f    func(*testing.T, store.Driver)
	}{
		{"Lifecycle", testSessionLifecycle},
		{"Generation", testSessionGeneration},
		{"ChangePassword", testChangePassword},
		{"Limits", testSessionLimits},
		{"Scratch", testSessionScratch},
	} {
		t.Run(p.name, func(t *testing.T) { p.f(t, d) })
	}
}

func testSessionLifecycle(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "ichiro@skydesk.jp")
	ws := newSession(d, t, acc, "a", sessionT0)
	if err := d.CreateSession(ctx, ws, store.SessionLimits{}); err != nil {
		t.Fatal(err)
	}
	got, ok := getSession(t, d, ws.Key)
	if !ok || got.AccountID != acc.ID || got.Address != "ichiro@skydesk.jp" || !got.Current() ||
		!got.Created.Equal(sessionT0) || !got.Seen.Equal(sessionT0) || !got.AuthAt.Equal(sessionT0) {
		t.Fatalf("GetSession = %+v, %v", got, ok)
	}
	if err := d.TouchSession(ctx, ws.Key, sessionT0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := d.ReauthSession(ctx, ws.Key, sessionT0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ = getSession(t, d, ws.Key)
	if !got.Seen.Equal(sessionT0.Add(2*time.Minute)) || !got.AuthAt.Equal(sessionT0.Add(2*time.Minute)) || !got.Created.Equal(sessionT0) {
		t.Errorf("after touch and re-auth: %+v", got)
	}
	if err := d.CreateSession(ctx, ws, store.SessionLimits{}); err == nil {
		t.Error("a second session with the same key was created")
	}
	if err := d.DeleteSession(ctx, ws.Key); err != nil {
		t.Fatal(err)
	}
	if _, ok := getSession(t, d, ws.Key); ok {
		t.Error("deleted session still read")
	}
	if err := d.DeleteSession(ctx, ws.Key); err != nil {
		t.Errorf("deleting a deleted session: %v", err)
	}

	// Expiry by idle and absolute age.
	idle, old, fresh := newSession(d, t, acc, "idle", sessionT0), newSession(d, t, acc, "old", sessionT0), newSession(d, t, acc, "fresh", sessionT0)
	old.Seen = sessionT0.Add(time.Hour)
	fresh.Created, fresh.Seen = sessionT0.Add(time.Hour), sessionT0.Add(time.Hour)
	for _, s := range []store.WebSession{idle, old, fresh} {
		if err := d.CreateSession(ctx, s, store.SessionLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := d.ExpireSessions(ctx, sessionT0.Add(30*time.Minute), sessionT0.Add(time.Second))
	if err != nil || n != 2 {
		t.Errorf("ExpireSessions = %d, %v; want 2", n, err)
	}
	if _, ok := getSession(t, d, fresh.Key); !ok {
		t.Error("ExpireSessions removed a live session")
	}
	if n, err := d.DeleteAccountSessions(ctx, "ICHIRO@skydesk.jp"); err != nil || n != 1 {
		t.Errorf("DeleteAccountSessions = %d, %v; want 1", n, err)
	}
	if _, err := d.DeleteAccountSessions(ctx, "nobody@skydesk.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteAccountSessions(unknown) = %v, want ErrNotFound", err)
	}
}

// testSessionGeneration: every credential change makes the account's
// sessions stale; RebindSession keeps the one that made the change (and
// ends the others) only when its change was the only one.
func testSessionGeneration(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	addr := acc.Address
	for i, c := range []struct {
		name   string
		change func() error
	}{
		{"SetPassword", func() error { return d.SetPassword(ctx, addr, "new-password-1") }},
		{"ChangePassword", func() error { _, err := d.ChangePassword(ctx, addr, "new-password-2", true); return err }},
		{"CreateAppPassword", func() error { _, err := d.CreateAppPassword(ctx, addr, "phone"); return err }},
		{"RevokeAppPassword", func() error { return d.RevokeAppPassword(ctx, addr, "phone") }},
		{"SetTwoStep", func() error { return d.SetTwoStep(ctx, addr, true) }},
		{"EnrolTOTP", func() error { _, err := d.EnrolTOTP(ctx, addr); return err }},
		{"SetTwoStep off", func() error { return d.SetTwoStep(ctx, addr, false) }},
	} {
		mine := newSession(d, t, acc, fmt.Sprint("mine", i), sessionT0)
		other := newSession(d, t, acc, fmt.Sprint("other", i), sessionT0)
		for _, s := range []store.WebSession{mine, other} {
			if err := d.CreateSession(ctx, s, store.SessionLimits{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.change(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s, ok := getSession(t, d, other.Key); !ok || s.Current() {
			t.Errorf("%s: the other session = %+v, %v; want stale", c.name, s, ok)
		}
		if ok, err := d.RebindSession(ctx, mine.Key, mine.Generation); err != nil || !ok {
			t.Fatalf("%s: RebindSession = %v, %v", c.name, ok, err)
		}
		if s, ok := getSession(t, d, mine.Key); !ok || !s.Current() {
			t.Errorf("%s: the rebound session = %+v, %v; want current", c.name, s, ok)
		}
		if _, ok := getSession(t, d, other.Key); ok {
			t.Errorf("%s: the other session outlived the rebind", c.name)
		}
		if err := d.DeleteSession(ctx, mine.Key); err != nil {
			t.Fatal(err)
		}
	}
	// Two changes, one from elsewhere: the session cannot claim both.
	mine := newSession(d, t, acc, "late", sessionT0)
	if err := d.CreateSession(ctx, mine, store.SessionLimits{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.SetPassword(ctx, addr, "another-password"); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := d.RebindSession(ctx, mine.Key, mine.Generation); err != nil || ok {
		t.Errorf("RebindSession over two changes = %v, %v; want false", ok, err)
	}
	if _, ok := getSession(t, d, mine.Key); ok {
		t.Error("a session refused a rebind survived")
	}
	// Born stale: bound to a generation the account has left.
	stale := newSession(d, t, acc, "stale", sessionT0)
	stale.Generation--
	if err := d.CreateSession(ctx, stale, store.SessionLimits{}); err != nil {
		t.Fatal(err)
	}
	if s, ok := getSession(t, d, stale.Key); !ok || s.Current() {
		t.Errorf("stale session = %+v, %v", s, ok)
	}
	if _, err := d.DeleteAccountSessions(ctx, addr); err != nil {
		t.Fatal(err)
	}
}

// testSessionLimits: per account and in total, the sessions seen longest
// ago give way to a new one, which is always kept.
func testSessionLimits(t *testing.T, d store.Driver) {
	ctx := t.Context()
	taro, hanako := user(t, d, "shiro@skydesk.jp"), user(t, d, "hanako@skydesk.jp")
	lim := store.SessionLimits{PerAccount: 3, Total: 5}
	var keys []store.SessionKey
	for i := range 6 {
		s := newSession(d, t, taro, fmt.Sprint("taro", i), sessionT0.Add(time.Duration(i)*time.Minute))
		if err := d.CreateSession(ctx, s, lim); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s.Key)
	}
	for i, k := range keys {
		if _, ok := getSession(t, d, k); ok != (i >= 3) {
			t.Errorf("taro's session %d kept = %v", i, ok)
		}
	}
	// Every new session of hanako is the newest, even with an older clock
	// than taro's sessions; the table stays at 5.
	var hk []store.SessionKey
	for i := range 3 {
		s := newSession(d, t, hanako, fmt.Sprint("hanako", i), sessionT0.Add(time.Duration(10+i)*time.Minute))
		if err := d.CreateSession(ctx, s, lim); err != nil {
			t.Fatal(err)
		}
		hk = append(hk, s.Key)
	}
	kept := 0
	for _, k := range append(keys, hk...) {
		if _, ok := getSession(t, d, k); ok {
			kept++
		}
	}
	if kept != lim.Total {
		t.Errorf("%d sessions kept, want %d", kept, lim.Total)
	}
	for _, k := range hk {
		if _, ok := getSession(t, d, k); !ok {
			t.Error("a newer session gave way to an older one")
		}
	}
	if _, ok := getSession(t, d, keys[3]); ok {
		t.Error("the session seen longest ago was kept")
	}
}

// testChangePassword: the new password and the app-password revocation
// land together.
func testChangePassword(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "saburo@skydesk.jp")
	for _, n := range []string{"phone", "laptop"} {
		if _, err := d.CreateAppPassword(ctx, acc.Address, n); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := d.Credentials(ctx, acc.Address)
	if n, err := d.ChangePassword(ctx, acc.Address, "fresh-password", false); err != nil || n != 0 {
		t.Fatalf("ChangePassword(keep apps) = %d, %v", n, err)
	}
	if l, _ := d.ListAppPasswords(ctx, acc.Address); len(l) != 2 {
		t.Errorf("app passwords kept: %d, want 2", len(l))
	}
	if n, err := d.ChangePassword(ctx, acc.Address, "fresher-password", true); err != nil || n != 2 {
		t.Fatalf("ChangePassword(revoke) = %d, %v; want 2", n, err)
	}
	after, _ := d.Credentials(ctx, acc.Address)
	if l, _ := d.ListAppPasswords(ctx, acc.Address); len(l) != 0 {
		t.Errorf("app passwords left: %v", l)
	}
	if after.Generation != before.Generation+2 || after.PasswordHash == before.PasswordHash {
		t.Errorf("generation %d → %d (want +1 per change), hash changed %v", before.Generation, after.Generation,
			after.PasswordHash != before.PasswordHash)
	}
	if _, err := d.ChangePassword(ctx, "nobody@skydesk.jp", "x-password", true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ChangePassword(unknown) = %v, want ErrNotFound", err)
	}
}

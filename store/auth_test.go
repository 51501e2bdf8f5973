package store

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for throttle and cache tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type authFixture struct {
	s      *Store
	a      *Authenticator
	clock  *fakeClock
	slept  []time.Duration
	counts map[string]int
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{PersonalDomain: "skydesk.jp", HashParams: TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &authFixture{s: s, clock: &fakeClock{t: time.Unix(1_800_000_000, 0)}, counts: map[string]int{}}
	s.now = f.clock.now
	if _, err := s.AddDomain(ctx, "example.co.jp"); err != nil {
		t.Fatal(err)
	}
	f.a, err = s.NewAuthenticator(AuthOptions{
		Policy:  ThrottlePolicy{FreeFailures: 2, LockAfter: 5, LockFor: time.Minute, BaseDelay: time.Second, MaxDelay: 4 * time.Second, Window: time.Hour},
		Observe: func(_ Service, o string) { f.counts[o]++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.a.sleep = func(_ context.Context, d time.Duration) error { f.slept = append(f.slept, d); return nil }
	return f
}

var (
	ip1 = netip.MustParseAddr("192.0.2.1")
	ip2 = netip.MustParseAddr("192.0.2.2")
)

func (f *authFixture) login(user, pw string, svc Service, ip netip.Addr) (Login, error) {
	return f.a.Login(context.Background(), LoginRequest{Username: user, Password: pw, Remote: ip, Service: svc})
}

func reason(err error) AuthReason {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return 0
}

func TestLoginRules(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	mustAdd := func(n NewAccount) {
		if _, err := f.s.AddAccount(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd(NewAccount{Address: "taro@skydesk.jp", Password: "taro-password"})
	mustAdd(NewAccount{Address: "two@example.co.jp", Password: "two-password"})
	mustAdd(NewAccount{Address: "sso@example.co.jp", Federated: true})
	if err := f.s.SetTwoStep(ctx, "two@example.co.jp", true); err != nil {
		t.Fatal(err)
	}
	app, err := f.s.CreateAppPassword(ctx, "two@example.co.jp", "Thunderbird")
	if err != nil {
		t.Fatal(err)
	}
	ssoApp, err := f.s.CreateAppPassword(ctx, "sso@example.co.jp", "phone")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, user, pw string
		svc            Service
		want           AuthReason // 0 = success
		app            string
	}{
		{"full address", "taro@skydesk.jp", "taro-password", ServicePOP3, 0, ""},
		{"case-insensitive address", "TARO@SkyDesk.jp", "taro-password", ServiceSMTP, 0, ""},
		{"wrong password", "taro@skydesk.jp", "nope-nope", ServicePOP3, AuthBadCredentials, ""},
		{"bare local part", "taro", "taro-password", ServicePOP3, AuthNotFullAddress, ""},
		{"unknown user", "ghost@skydesk.jp", "taro-password", ServicePOP3, AuthBadCredentials, ""},
		{"malformed user", "ta ro@skydesk.jp", "x", ServicePOP3, AuthBadCredentials, ""},
		{"two-step: account password refused with hint", "two@example.co.jp", "two-password", ServicePOP3, AuthNeedAppPassword, ""},
		{"two-step: app password", "two@example.co.jp", app, ServiceSMTP, 0, "Thunderbird"},
		{"two-step: app password without spaces", "two@example.co.jp", normalizeAppSecret(app), ServicePOP3, 0, "Thunderbird"},
		{"two-step: wrong password is just wrong", "two@example.co.jp", "other-password", ServicePOP3, AuthBadCredentials, ""},
		{"web: two-step without an authenticator app", "two@example.co.jp", "two-password", ServiceWeb, AuthNoAuthenticator, ""},
		{"web: two-step, wrong password", "two@example.co.jp", "other-password", ServiceWeb, AuthBadCredentials, ""},
		{"web: account password without two-step", "taro@skydesk.jp", "taro-password", ServiceWeb, 0, ""},
		{"web: app password refused", "two@example.co.jp", app, ServiceWeb, AuthBadCredentials, ""},
		{"federated without password", "sso@example.co.jp", "anything-1", ServicePOP3, AuthNoPassword, ""},
		{"federated: web says set a password", "sso@example.co.jp", "anything-1", ServiceWeb, AuthNoPassword, ""},
		{"federated with app password", "sso@example.co.jp", ssoApp, ServicePOP3, 0, "phone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := f.login(tc.user, tc.pw, tc.svc, netip.MustParseAddr("198.51.100.7"))
			if got := reason(err); got != tc.want {
				t.Fatalf("reason = %v (err %v), want %v", got, err, tc.want)
			}
			if tc.want == 0 && l.AppPassword != tc.app {
				t.Errorf("app password = %q, want %q", l.AppPassword, tc.app)
			}
			f.a.th.clear() // keep the cases independent of throttling
		})
	}

	// Federated user sets a password: now it works.
	if err := f.s.SetPassword(ctx, "sso@example.co.jp", "now-i-have-one"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.login("sso@example.co.jp", "now-i-have-one", ServicePOP3, ip1); err != nil {
		t.Errorf("after setting a password: %v", err)
	}
	// Last-used recorded for the app password.
	apps, _ := f.s.ListAppPasswords(ctx, "two@example.co.jp")
	if len(apps) != 1 || apps[0].LastUsed.IsZero() {
		t.Errorf("last used not recorded: %+v", apps)
	}
}

func TestCacheDroppedOnCredentialChange(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	if _, err := f.s.AddAccount(ctx, NewAccount{Address: "taro@skydesk.jp", Password: "old-password"}); err != nil {
		t.Fatal(err)
	}
	app, _ := f.s.CreateAppPassword(ctx, "taro@skydesk.jp", "mpop")
	for range 2 {
		if _, err := f.login("taro@skydesk.jp", "old-password", ServicePOP3, ip1); err != nil {
			t.Fatal(err)
		}
		if _, err := f.login("taro@skydesk.jp", app, ServicePOP3, ip1); err != nil {
			t.Fatal(err)
		}
	}
	if f.a.cache.Len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", f.a.cache.Len())
	}
	if err := f.s.SetPassword(ctx, "taro@skydesk.jp", "new-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.login("taro@skydesk.jp", "old-password", ServicePOP3, ip1); reason(err) != AuthBadCredentials {
		t.Errorf("old password after change: %v", err)
	}
	if _, err := f.login("taro@skydesk.jp", app, ServicePOP3, ip1); err != nil {
		t.Errorf("app password after password change: %v", err)
	}
	if err := f.s.RevokeAppPassword(ctx, "taro@skydesk.jp", "mpop"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.login("taro@skydesk.jp", app, ServicePOP3, ip1); reason(err) != AuthBadCredentials {
		t.Errorf("revoked app password still works: %v", err)
	}
	// Expiry.
	if _, err := f.login("taro@skydesk.jp", "new-password", ServicePOP3, ip1); err != nil {
		t.Fatal(err)
	}
	f.clock.add(CacheTTL + time.Second)
	if _, ok := f.a.cached(ctx, f.a.cacheKey(ServicePOP3, "taro@skydesk.jp", "new-password"), CredentialRecord{Account: Account{ID: 1}}); ok {
		t.Error("expired cache entry used")
	}
	// Failures never enter the cache.
	f.a.cache.DeleteFunc(func(_ [32]byte, e cacheEntry) bool {
		if e.accountID == 0 {
			t.Error("failure cached")
		}
		return false
	})
}

func TestThrottleDelaysThenLocks(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	if _, err := f.s.AddAccount(ctx, NewAccount{Address: "taro@skydesk.jp", Password: "right-password"}); err != nil {
		t.Fatal(err)
	}
	// Policy: 2 free failures, then 1 s, 2 s, then locked at the 5th.
	for i := 1; i <= 4; i++ {
		if _, err := f.login("taro@skydesk.jp", "wrong", ServicePOP3, ip1); reason(err) != AuthBadCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if want := []time.Duration{time.Second, 2 * time.Second}; len(f.slept) != 2 || f.slept[0] != want[0] || f.slept[1] != want[1] {
		t.Fatalf("delays = %v, want %v", f.slept, want)
	}
	_, _ = f.login("taro@skydesk.jp", "wrong", ServicePOP3, ip1) // 5th: lock engaged
	// Locked now, even with the right password, from the same address…
	_, err := f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Reason != AuthLocked || ae.RetryAfter <= 0 {
		t.Fatalf("locked login = %v", err)
	}
	// …but not for the account from another address.
	if _, err := f.login("taro@skydesk.jp", "right-password", ServiceSMTP, ip2); err != nil {
		t.Fatalf("the pair's lock stopped the owner on another address: %v", err)
	}
	if f.counts["locked"] != 1 || f.counts["delayed"] != 2 || f.counts["lock_engaged"] != 1 {
		t.Errorf("observed outcomes %v", f.counts)
	}
	f.clock.add(time.Minute + time.Second)
	if _, err := f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1); err != nil {
		t.Fatalf("after the lock expired: %v", err)
	}
	if n := f.a.th.pair.failuresOf(pairKey{netip.PrefixFrom(ip1, 32), "taro@skydesk.jp"}); n != 0 {
		t.Errorf("success did not reset the pair's counter: %d", n)
	}
}

func BenchmarkLoginCached(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), Options{PersonalDomain: "skydesk.jp"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddAccount(ctx, NewAccount{Address: "taro@skydesk.jp", Password: "right-password"}); err != nil {
		b.Fatal(err)
	}
	a, _ := s.NewAuthenticator(AuthOptions{})
	req := LoginRequest{Username: "taro@skydesk.jp", Password: "right-password", Remote: ip1, Service: ServicePOP3}
	if _, err := a.Login(ctx, req); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := a.Login(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// uncachedAuth opens a store with the shipped hash parameters, adds
// address with password, and returns an Authenticator that never uses
// its verified-login cache.
func uncachedAuth(b *testing.B, address, password string) (*Store, *Authenticator) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), Options{PersonalDomain: "skydesk.jp"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.AddAccount(ctx, NewAccount{Address: address, Password: password}); err != nil {
		b.Fatal(err)
	}
	a, err := s.NewAuthenticator(AuthOptions{})
	if err != nil {
		b.Fatal(err)
	}
	a.ttl = -time.Second // a cache.Put of ttl 0 would keep entries for good
	return s, a
}

func BenchmarkLoginUncached(b *testing.B) {
	_, a := uncachedAuth(b, "taro@skydesk.jp", "right-password")
	req := LoginRequest{Username: "taro@skydesk.jp", Password: "right-password", Remote: ip1, Service: ServicePOP3}
	for b.Loop() {
		if _, err := a.Login(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginAppPasswordUncached: a two-step account's POP login with
// the third of its app passwords, the verified-login cache off.
func BenchmarkLoginAppPasswordUncached(b *testing.B) {
	ctx := context.Background()
	s, a := uncachedAuth(b, "jiro@skydesk.jp", "right-password")
	if err := s.SetTwoStep(ctx, "jiro@skydesk.jp", true); err != nil {
		b.Fatal(err)
	}
	var secret string
	var err error
	for _, name := range []string{"phone", "tablet", "laptop"} {
		if secret, err = s.CreateAppPassword(ctx, "jiro@skydesk.jp", name); err != nil {
			b.Fatal(err)
		}
	}
	req := LoginRequest{Username: "jiro@skydesk.jp", Password: secret, Remote: ip1, Service: ServicePOP3}
	for b.Loop() {
		if _, err := a.Login(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// With every hash slot taken, a login waits for one; when its context
// ends first it fails as the service's error, not a refusal: the throttle
// does not count it, and an unknown address fails the same way (no
// enumeration). Once a slot is free, logins go through.
func TestLogin_waitsForHashSlot(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	if _, err := f.s.AddAccount(ctx, NewAccount{Address: "taro@skydesk.jp", Password: "right-password"}); err != nil {
		t.Fatal(err)
	}
	for range cap(hashSlots) {
		hashSlots <- struct{}{}
	}
	held := cap(hashSlots)
	defer func() {
		for range held {
			<-hashSlots
		}
	}()
	if running, waiting, slots := HashSlots(); running != slots || waiting != 0 {
		t.Fatalf("HashSlots() = %d running, %d waiting of %d; want all running", running, waiting, slots)
	}
	// A login queued for a slot shows as waiting until its context ends.
	qctx, qcancel := context.WithCancel(ctx)
	queued := make(chan error, 1)
	go func() {
		_, err := f.a.Login(qctx, LoginRequest{Username: "taro@skydesk.jp", Password: "right-password", Remote: ip2, Service: ServicePOP3})
		queued <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); ; runtime.Gosched() {
		if _, waiting, _ := HashSlots(); waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the queued login never showed as waiting")
		}
	}
	qcancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued login = %v; want canceled", err)
	}
	if _, waiting, _ := HashSlots(); waiting != 0 {
		t.Fatalf("%d still waiting after the cancel", waiting)
	}
	for _, user := range []string{"taro@skydesk.jp", "nobody@skydesk.jp", "not an address@"} {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, err := f.a.Login(cctx, LoginRequest{Username: user, Password: "right-password", Remote: ip1, Service: ServicePOP3})
		cancel()
		var ae *AuthError
		if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ae) {
			t.Fatalf("%s: Login with no hash slot free = %v; want the context's deadline, not a refusal", user, err)
		}
	}
	if n := f.a.th.net.failuresOf(netip.PrefixFrom(ip1, 32)); n != 0 || f.counts["bad_credentials"] != 0 {
		t.Fatalf("throttle counted %d failures, outcomes %v", n, f.counts)
	}
	<-hashSlots
	held--
	if _, err := f.login("taro@skydesk.jp", "right-password", ServicePOP3, ip1); err != nil {
		t.Fatalf("with one slot free: %v", err)
	}
}

// App passwords are stored as salted SHA-256 ($sha256$); ones stored
// before as argon2id still sign in; a malformed hash matches nothing.
func TestAppPasswordHashes(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	if _, err := f.s.AddAccount(ctx, NewAccount{Address: "jiro@skydesk.jp", Password: "right-password"}); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for _, name := range []string{"new", "old", "broken"} {
		s, err := f.s.CreateAppPassword(ctx, "jiro@skydesk.jp", name)
		if err != nil {
			t.Fatal(err)
		}
		secrets[name] = s
	}
	var stored string
	if err := f.s.r.QueryRowContext(ctx, `SELECT hash FROM app_passwords WHERE name = 'new'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, appHashPrefix) || strings.Contains(stored, normalizeAppSecret(secrets["new"])) {
		t.Fatalf("stored app password hash %q", stored)
	}
	legacy, err := hashPassword(ctx, TestHashParams, normalizeAppSecret(secrets["old"]))
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]string{"old": legacy, "broken": appHashPrefix + "not base64!$"} {
		if _, err := f.s.w.ExecContext(ctx, `UPDATE app_passwords SET hash = ? WHERE name = ?`, h, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"new", "old"} {
		if l, err := f.login("jiro@skydesk.jp", secrets[name], ServicePOP3, ip1); err != nil || l.AppPassword != name {
			t.Errorf("app password %q: login = %+v, %v", name, l, err)
		}
	}
	for _, pw := range []string{secrets["broken"], "abcd efgh ijkl mnop"} {
		if _, err := f.login("jiro@skydesk.jp", pw, ServicePOP3, ip2); reason(err) != AuthBadCredentials {
			t.Errorf("login with %q = %v, want bad credentials", pw, err)
		}
	}
	for _, bad := range []string{appHashPrefix, appHashPrefix + "AAAA", appHashPrefix + "AAAA$AAAA", appHashPrefix + "!!$" + strings.Repeat("A", 43)} {
		if m, err := verifyAppSecret(ctx, bad, "abcdefghijklmnop"); m || !errors.Is(err, errBadHash) {
			t.Errorf("verifyAppSecret(%q) = %v, %v; want errBadHash", bad, m, err)
		}
	}
}

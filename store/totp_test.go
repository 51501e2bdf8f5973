package store

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func (f *authFixture) web(user, pw, code string, ip string) (Login, error) {
	return f.a.Login(context.Background(), LoginRequest{Username: user, Password: pw, OTP: code,
		Remote: netip.MustParseAddr(ip), Service: ServiceWeb})
}

func (f *authFixture) code(t *testing.T, secret string, offset time.Duration) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, f.clock.now().Add(offset))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *authFixture) gen(t *testing.T, address string) int64 {
	t.Helper()
	var g int64
	if err := f.s.r.QueryRow(`SELECT credential_gen FROM accounts WHERE address = ?`, address).Scan(&g); err != nil {
		t.Fatal(err)
	}
	return g
}

// next moves the fake clock to the start of the third 30-second step from
// now, so each case starts with the steps ±1 unused even when the last
// case used its next step.
func (f *authFixture) next() {
	now := f.clock.now()
	f.clock.add(time.Duration(totpPeriod-now.Unix()%totpPeriod+2*totpPeriod) * time.Second)
}

// twoStepAccount adds two@example.co.jp (password "the-password") with an
// authenticator registered, and returns its key.
func (f *authFixture) twoStepAccount(t *testing.T, ctx context.Context) TOTPKey {
	t.Helper()
	if _, err := f.s.AddAccount(ctx, NewAccount{Address: "two@example.co.jp", Password: "the-password"}); err != nil {
		t.Fatal(err)
	}
	k, err := f.s.EnrolTOTP(ctx, "two@example.co.jp")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEnrolTOTP(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	if _, err := f.s.AddAccount(ctx, NewAccount{Address: "Two@Example.co.jp", Password: "two-password"}); err != nil {
		t.Fatal(err)
	}
	g0 := f.gen(t, "two@example.co.jp")
	k, err := f.s.EnrolTOTP(ctx, "TWO@example.co.jp")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(k.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/SkyDesk Mail:two@example.co.jp" ||
		q.Get("secret") != k.Secret || q.Get("issuer") != "SkyDesk Mail" || q.Get("digits") != "6" ||
		q.Get("algorithm") != "SHA1" || q.Get("period") != "30" {
		t.Errorf("key URI %s (secret %s)", k.URL, k.Secret)
	}
	if len(k.Secret) != 32 || strings.Trim(k.Secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		t.Errorf("secret %q is not 160 bits of base32", k.Secret)
	}
	acc, err := f.s.GetAccount(ctx, "two@example.co.jp")
	if err != nil || !acc.TwoStep {
		t.Fatalf("enrolment did not turn two-step on: %+v %v", acc, err)
	}
	g1 := f.gen(t, "two@example.co.jp")
	if g1 <= g0 {
		t.Errorf("enrol: credential_gen %d → %d", g0, g1)
	}
	k2, err := f.s.EnrolTOTP(ctx, "two@example.co.jp")
	if err != nil {
		t.Fatal(err)
	}
	g2 := f.gen(t, "two@example.co.jp")
	if k2.Secret == k.Secret || g2 <= g1 {
		t.Errorf("rotate: same secret or credential_gen %d → %d", g1, g2)
	}
	// The old secret's codes stop working at once.
	if _, err := f.web("two@example.co.jp", "two-password", f.code(t, k.Secret, 0), "192.0.2.9"); reason(err) != AuthBadCredentials {
		t.Errorf("old secret after rotation: %v", err)
	}
	if _, err := f.web("two@example.co.jp", "two-password", f.code(t, k2.Secret, 0), "192.0.2.9"); err != nil {
		t.Errorf("new secret after rotation: %v", err)
	}
	if err := f.s.SetTwoStep(ctx, "two@example.co.jp", false); err != nil {
		t.Fatal(err)
	}
	var secret *string
	if err := f.s.r.QueryRow(`SELECT totp_secret FROM accounts WHERE address = 'two@example.co.jp'`).Scan(&secret); err != nil || secret != nil {
		t.Errorf("two-step off kept the secret: %v %v", secret, err)
	}
	if g3 := f.gen(t, "two@example.co.jp"); g3 <= g2 {
		t.Errorf("clear: credential_gen %d → %d", g2, g3)
	}
	// On again without enrolling: no authenticator.
	if err := f.s.SetTwoStep(ctx, "two@example.co.jp", true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.web("two@example.co.jp", "two-password", f.code(t, k2.Secret, 0), "192.0.2.9"); reason(err) != AuthNoAuthenticator {
		t.Errorf("cleared secret: %v", err)
	}
	if _, err := f.s.EnrolTOTP(ctx, "ghost@example.co.jp"); err == nil {
		t.Error("enrolled an account that does not exist")
	}
}

func TestEnrolTOTP_issuer(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{PersonalDomain: "skydesk.jp", HashParams: TestHashParams, TOTPIssuer: "Other Mail"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddAccount(ctx, NewAccount{Address: "taro@skydesk.jp", Password: "taro-password"}); err != nil {
		t.Fatal(err)
	}
	k, err := s.EnrolTOTP(ctx, "taro@skydesk.jp")
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(k.URL); u == nil || u.Query().Get("issuer") != "Other Mail" || u.Path != "/Other Mail:taro@skydesk.jp" {
		t.Errorf("key URI %s", k.URL)
	}
}

// TestLoginWeb_TOTP: the settings page under two-step verification needs
// the account password and a current, unused authenticator code.
func TestLoginWeb_TOTP(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	for _, a := range []string{"two@example.co.jp", "plain@example.co.jp", "noapp@example.co.jp"} {
		if _, err := f.s.AddAccount(ctx, NewAccount{Address: a, Password: "the-password"}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := f.s.EnrolTOTP(ctx, "two@example.co.jp")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetTwoStep(ctx, "noapp@example.co.jp", true); err != nil {
		t.Fatal(err)
	}
	app, err := f.s.CreateAppPassword(ctx, "two@example.co.jp", "mpop")
	if err != nil {
		t.Fatal(err)
	}
	const ip = "198.51.100.7"
	for _, tc := range []struct {
		name, user, pw string
		code           func() string
		want           AuthReason
	}{
		{"password and code", "two@example.co.jp", "the-password", func() string { return f.code(t, k.Secret, 0) }, 0},
		{"code with a space", "two@example.co.jp", "the-password", func() string { c := f.code(t, k.Secret, 0); return c[:3] + " " + c[3:] }, 0},
		{"previous step", "two@example.co.jp", "the-password", func() string { return f.code(t, k.Secret, -totpPeriod*time.Second) }, 0},
		{"next step", "two@example.co.jp", "the-password", func() string { return f.code(t, k.Secret, totpPeriod*time.Second) }, 0},
		{"two steps ago", "two@example.co.jp", "the-password", func() string { return f.code(t, k.Secret, -2*totpPeriod*time.Second) }, AuthBadCredentials},
		{"two steps ahead", "two@example.co.jp", "the-password", func() string { return f.code(t, k.Secret, 2*totpPeriod*time.Second) }, AuthBadCredentials},
		{"password without code", "two@example.co.jp", "the-password", func() string { return "" }, AuthBadCredentials},
		{"wrong code", "two@example.co.jp", "the-password", func() string { return f.wrongCode(t, k.Secret, f.code(t, k.Secret, 0)) }, AuthBadCredentials},
		{"not digits", "two@example.co.jp", "the-password", func() string { return "abcdef" }, AuthBadCredentials},
		{"right code, wrong password", "two@example.co.jp", "not-the-password", func() string { return f.code(t, k.Secret, 0) }, AuthBadCredentials},
		{"app password and code", "two@example.co.jp", app, func() string { return f.code(t, k.Secret, 0) }, AuthBadCredentials},
		{"two-step off: code ignored", "plain@example.co.jp", "the-password", func() string { return "000000" }, 0},
		{"two-step off: no code", "plain@example.co.jp", "the-password", func() string { return "" }, 0},
		{"no authenticator", "noapp@example.co.jp", "the-password", func() string { return "123456" }, AuthNoAuthenticator},
		{"no authenticator, wrong password", "noapp@example.co.jp", "not-the-password", func() string { return "123456" }, AuthBadCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.next()
			_, err := f.web(tc.user, tc.pw, tc.code(), ip)
			if got := reason(err); got != tc.want {
				t.Fatalf("reason = %v (err %v), want %v", got, err, tc.want)
			}
			f.a.th.clear()
		})
	}
	if f.counts["no_authenticator"] != 1 {
		t.Errorf("observed %v", f.counts)
	}
	var ae *AuthError
	if _, err := f.web("noapp@example.co.jp", "the-password", "", ip); !errors.As(err, &ae) ||
		ae.Error() != "two-step verification is on but no authenticator app is registered; ask the administrator" {
		t.Errorf("no authenticator: %v", err)
	}
}

// wrongCode changes the last digit of c until no step within ±2 of the
// fake clock accepts it, so the code can never be right by chance.
func (f *authFixture) wrongCode(t *testing.T, secret, c string) string {
	t.Helper()
	valid := map[string]bool{}
	for i := -2; i <= 2; i++ {
		valid[f.code(t, secret, time.Duration(i)*totpPeriod*time.Second)] = true
	}
	b := []byte(c)
	for valid[string(b)] {
		b[5] = '0' + (b[5]-'0'+1)%10
	}
	return string(b)
}

// TestLoginWeb_TOTP_replay: a code is accepted once (RFC 6238 §5.2), and
// after a later step no earlier one is accepted.
func TestLoginWeb_TOTP_replay(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	k := f.twoStepAccount(t, ctx)
	f.next()
	now := f.code(t, k.Secret, 0)
	if _, err := f.web("two@example.co.jp", "the-password", now, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	// The same code again, even from elsewhere and within its step.
	f.clock.add(10 * time.Second)
	if _, err := f.web("two@example.co.jp", "the-password", now, "192.0.2.2"); reason(err) != AuthBadCredentials {
		t.Fatalf("replayed code: %v", err)
	}
	// A code of the next step is fine once; then the previous step's
	// (never used) code is refused as older than the last accepted.
	if _, err := f.web("two@example.co.jp", "the-password", f.code(t, k.Secret, totpPeriod*time.Second), "192.0.2.1"); err != nil {
		t.Fatalf("next step: %v", err)
	}
	f.clock.add(totpPeriod * time.Second) // now in that next step
	if _, err := f.web("two@example.co.jp", "the-password", f.code(t, k.Secret, -totpPeriod*time.Second), "192.0.2.1"); reason(err) != AuthBadCredentials {
		t.Fatalf("code older than the last accepted: %v", err)
	}
	// The step after is fresh.
	if _, err := f.web("two@example.co.jp", "the-password", f.code(t, k.Secret, totpPeriod*time.Second), "192.0.2.1"); err != nil {
		t.Fatalf("fresh step: %v", err)
	}
}

// TestLoginWeb_TOTP_throttled: wrong codes after the right password count
// like wrong passwords: delays, then a lock of that (client network,
// account) that even a right code does not pass; the owner elsewhere is
// not locked.
func TestLoginWeb_TOTP_throttled(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	k := f.twoStepAccount(t, ctx)
	f.next()
	bad := f.wrongCode(t, k.Secret, f.code(t, k.Secret, 0))
	// Policy: 2 free failures, then 1 s, 2 s, lock at the 5th.
	for i := 1; i <= 5; i++ {
		if _, err := f.web("two@example.co.jp", "the-password", bad, "192.0.2.1"); reason(err) != AuthBadCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if len(f.slept) != 2 || f.slept[0] != time.Second || f.slept[1] != 2*time.Second {
		t.Errorf("delays %v", f.slept)
	}
	if _, err := f.web("two@example.co.jp", "the-password", f.code(t, k.Secret, 0), "192.0.2.1"); reason(err) != AuthLocked {
		t.Fatalf("right code on a locked pair: %v", err)
	}
	if _, err := f.web("two@example.co.jp", "the-password", "", "192.0.2.1"); reason(err) != AuthLocked {
		t.Fatalf("locked pair, no code: %v", err)
	}
	if _, err := f.web("two@example.co.jp", "the-password", f.code(t, k.Secret, 0), "192.0.2.2"); err != nil {
		t.Fatalf("right code from another network: %v", err)
	}
	f.clock.add(time.Minute + time.Second)
	f.next()
	if _, err := f.web("two@example.co.jp", "the-password", f.code(t, k.Secret, 0), "192.0.2.1"); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	if n := f.a.th.pair.failuresOf(pairKey{netip.MustParsePrefix("192.0.2.1/32"), "two@example.co.jp"}); n != 0 {
		t.Errorf("success did not reset the pair's failures: %d", n)
	}
}

// TestLoginWeb_TOTP_neverCached: a web sign-in of a two-step account can
// never be answered from the verified-login cache, and mail logins keep
// working as before (app password yes, account password no).
func TestLoginWeb_TOTP_neverCached(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	k := f.twoStepAccount(t, ctx)
	app, err := f.s.CreateAppPassword(ctx, "two@example.co.jp", "mpop")
	if err != nil {
		t.Fatal(err)
	}
	f.next()
	if _, err := f.web("two@example.co.jp", "the-password", f.code(t, k.Secret, 0), "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if f.a.cache.Len() != 0 {
		t.Fatalf("a web sign-in entered the cache: %d entries", f.a.cache.Len())
	}
	// Even a cache entry for the exact (web, account, password) key —
	// planted, as no code path makes one — is not consulted.
	row, err := f.s.Credentials(ctx, "two@example.co.jp")
	if err != nil {
		t.Fatal(err)
	}
	f.a.remember(f.a.cacheKey(ServiceWeb, "two@example.co.jp", "the-password"), row, "")
	if _, err := f.web("two@example.co.jp", "the-password", "", "192.0.2.1"); reason(err) != AuthBadCredentials {
		t.Fatalf("cached web verification skipped the code: %v", err)
	}
	for _, svc := range []Service{ServicePOP3, ServiceSMTP} {
		for range 2 { // the second answer comes from the cache
			if l, err := f.login("two@example.co.jp", app, svc, ip1); err != nil || l.AppPassword != "mpop" {
				t.Fatalf("%s app password: %+v %v", svc, l, err)
			}
			if _, err := f.login("two@example.co.jp", "the-password", svc, ip1); reason(err) != AuthNeedAppPassword {
				t.Fatalf("%s account password: %v", svc, err)
			}
			// A code changes nothing for mail.
			if _, err := f.a.Login(ctx, LoginRequest{Username: "two@example.co.jp", Password: "the-password",
				OTP: f.code(t, k.Secret, 0), Remote: ip1, Service: svc}); reason(err) != AuthNeedAppPassword {
				t.Fatalf("%s account password with a code: %v", svc, err)
			}
			f.a.th.clear()
		}
	}
}

func (f *authFixture) totpState(t *testing.T, address string) (twoStep bool, secret *string, last *int64) {
	t.Helper()
	if err := f.s.r.QueryRow(`SELECT two_step, totp_secret, totp_last_step FROM accounts WHERE address = ?`, address).
		Scan(&twoStep, &secret, &last); err != nil {
		t.Fatal(err)
	}
	return twoStep, secret, last
}

// TestConfirmTOTP: the owner's enrolment stores nothing until a code of
// the new secret confirms it; then two-step, the secret, the code's step
// and a new credential generation land together, and the confirming code
// cannot be replayed at the next sign-in.
func TestConfirmTOTP(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	const user = "two@example.co.jp"
	if _, err := f.s.AddAccount(ctx, NewAccount{Address: user, Password: "the-password"}); err != nil {
		t.Fatal(err)
	}
	// A mail login with the account password, cached.
	for range 2 {
		if _, err := f.login(user, "the-password", ServicePOP3, ip1); err != nil {
			t.Fatal(err)
		}
	}
	k, err := f.s.NewTOTPKey(" Two@Example.co.jp ")
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(k.URL); u == nil || u.Path != "/SkyDesk Mail:"+user || u.Query().Get("secret") != k.Secret ||
		u.Query().Get("period") != "30" || u.Query().Get("digits") != "6" || u.Query().Get("algorithm") != "SHA1" {
		t.Errorf("key URI %s", k.URL)
	}
	if on, secret, _ := f.totpState(t, user); on || secret != nil {
		t.Fatalf("NewTOTPKey stored something: on=%v secret=%v", on, secret)
	}
	f.next()
	g0 := f.gen(t, user)
	for _, bad := range []string{f.wrongCode(t, k.Secret, f.code(t, k.Secret, 0)), "", "abcdef", strings.Repeat("1", 4000),
		f.code(t, k.Secret, -2*totpPeriod*time.Second)} {
		if err := f.s.ConfirmTOTP(ctx, user, k.Secret, bad); !errors.Is(err, ErrBadCode) {
			t.Fatalf("code %.10q: %v, want ErrBadCode", bad, err)
		}
	}
	if on, secret, _ := f.totpState(t, user); on || secret != nil || f.gen(t, user) != g0 {
		t.Fatal("a refused code changed the account")
	}
	code := f.code(t, k.Secret, 0)
	if err := f.s.ConfirmTOTP(ctx, user, k.Secret, code[:3]+" "+code[3:]); err != nil {
		t.Fatal(err)
	}
	on, secret, last := f.totpState(t, user)
	if step := f.clock.now().Unix() / totpPeriod; !on || secret == nil || *secret != k.Secret || last == nil || *last != step {
		t.Fatalf("after confirming: on=%v secret=%v last=%v, want step %d", on, secret, last, step)
	}
	if g := f.gen(t, user); g != g0+1 {
		t.Errorf("credential_gen %d → %d", g0, g)
	}
	// The cached account-password login is gone: mail needs an app password.
	if _, err := f.login(user, "the-password", ServicePOP3, ip1); reason(err) != AuthNeedAppPassword {
		t.Fatalf("POP with the account password after enrolment: %v", err)
	}
	// The confirming code is used up; the next step's code signs in.
	if _, err := f.web(user, "the-password", code, "192.0.2.9"); reason(err) != AuthBadCredentials {
		t.Fatalf("confirming code replayed at sign-in: %v", err)
	}
	if _, err := f.web(user, "the-password", f.code(t, k.Secret, totpPeriod*time.Second), "192.0.2.9"); err != nil {
		t.Fatalf("next code: %v", err)
	}
	// A second pending secret cannot replace the registered one.
	k2, err := f.s.NewTOTPKey(user)
	if err != nil {
		t.Fatal(err)
	}
	g1 := f.gen(t, user)
	if err := f.s.ConfirmTOTP(ctx, user, k2.Secret, f.code(t, k2.Secret, 0)); !errors.Is(err, ErrTwoStepOn) {
		t.Fatalf("confirm while on: %v", err)
	}
	if _, secret, _ := f.totpState(t, user); *secret != k.Secret || f.gen(t, user) != g1 {
		t.Error("confirm while on changed the account")
	}
	if err := f.s.ConfirmTOTP(ctx, "ghost@example.co.jp", k2.Secret, f.code(t, k2.Secret, 0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
}

// TestDisableTwoStep: turning two-step off needs a current, unused code;
// then the secret is gone, cached logins are dropped and the account
// password works for mail again.
func TestDisableTwoStep(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	const user = "two@example.co.jp"
	k := f.twoStepAccount(t, ctx)
	off := func(code, ip string) error {
		return f.a.DisableTwoStep(ctx, LoginRequest{Username: user, OTP: code, Remote: netip.MustParseAddr(ip), Service: ServiceWeb})
	}
	f.next()
	// A code already used at sign-in is refused, like a wrong one.
	used := f.code(t, k.Secret, 0)
	if _, err := f.web(user, "the-password", used, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{used, f.wrongCode(t, k.Secret, used), "", "12345x", strings.Repeat("9", 5000)} {
		if err := off(bad, "192.0.2.1"); reason(err) != AuthBadCredentials {
			t.Fatalf("off with %.10q: %v", bad, err)
		}
	}
	if n := f.a.th.account.failuresOf(user); n != 5 {
		t.Errorf("wrong off-codes counted %d failures, want 5", n)
	}
	f.a.th.clear()
	if on, secret, _ := f.totpState(t, user); !on || secret == nil {
		t.Fatal("a wrong code turned two-step off")
	}
	g0 := f.gen(t, user)
	if err := off(f.code(t, k.Secret, totpPeriod*time.Second), "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if on, secret, last := f.totpState(t, user); on || secret != nil || last != nil {
		t.Fatalf("after off: on=%v secret=%v last=%v", on, secret, last)
	}
	if g := f.gen(t, user); g <= g0 {
		t.Errorf("credential_gen %d → %d", g0, g)
	}
	if _, err := f.login(user, "the-password", ServicePOP3, ip1); err != nil {
		t.Fatalf("POP with the account password after off: %v", err)
	}
	if err := off(f.code(t, k.Secret, 0), "192.0.2.1"); !errors.Is(err, ErrTwoStepOff) {
		t.Fatalf("off twice: %v", err)
	}
}

// TestDisableTwoStep_throttled: wrong off-codes share the sign-in's
// throttle: delays, then a lock of the (client network, account) that a
// right code does not pass, and that also holds the sign-in there.
func TestDisableTwoStep_throttled(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	const user = "two@example.co.jp"
	k := f.twoStepAccount(t, ctx)
	f.next()
	off := func(code, ip string) error {
		return f.a.DisableTwoStep(ctx, LoginRequest{Username: user, OTP: code, Remote: netip.MustParseAddr(ip), Service: ServiceWeb})
	}
	bad := f.wrongCode(t, k.Secret, f.code(t, k.Secret, 0))
	for i := 1; i <= 5; i++ {
		if err := off(bad, "192.0.2.1"); reason(err) != AuthBadCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if len(f.slept) != 2 || f.slept[0] != time.Second || f.slept[1] != 2*time.Second {
		t.Errorf("delays %v", f.slept)
	}
	if err := off(f.code(t, k.Secret, 0), "192.0.2.1"); reason(err) != AuthLocked {
		t.Fatalf("right code on a locked pair: %v", err)
	}
	if _, err := f.web(user, "the-password", f.code(t, k.Secret, 0), "192.0.2.1"); reason(err) != AuthLocked {
		t.Fatalf("sign-in after wrong off-codes: %v", err)
	}
	if on, _, _ := f.totpState(t, user); !on {
		t.Fatal("two-step turned off while locked")
	}
	f.clock.add(time.Minute + time.Second)
	if err := off(f.code(t, k.Secret, 0), "192.0.2.1"); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
}

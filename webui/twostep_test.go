package webui

import (
	"context"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

var (
	totpSecretRE  = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`)
	twoStepErrRE  = regexp.MustCompile(`(?s)<div class="notice warn" role="alert" id="twostep-error"><p>(.*?)</p>`)
	twoStepNoteRE = regexp.MustCompile(`(?s)<div class="notice ok" role="status" id="twostep-notice"><p>(.*?)</p>`)
)

// twoStepPage is one view of the settings screen's two-step section.
type twoStepPage struct {
	page, secret, err, notice string
}

func parseTwoStep(page string) twoStepPage {
	p := twoStepPage{page: page}
	if m := totpSecretRE.FindStringSubmatch(page); m != nil {
		p.secret = strings.ReplaceAll(m[1], " ", "")
	}
	if m := twoStepErrRE.FindStringSubmatch(page); m != nil {
		p.err = html.UnescapeString(m[1])
	}
	if m := twoStepNoteRE.FindStringSubmatch(page); m != nil {
		p.notice = html.UnescapeString(m[1])
	}
	return p
}

// twoStep posts a two-step form (path under /settings/two-step/), expects
// the redirect back to the section, and returns the screen it leads to.
func (env *webEnv) twoStep(c *http.Client, token, path, code string) twoStepPage {
	t := env.t
	t.Helper()
	form := url.Values{"csrf": {token}}
	if code != "" {
		form.Set("code", code)
	}
	resp, body := do(t, c, "POST", env.srv.URL+"/settings/two-step/"+path, form, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings#two-step" {
		t.Fatalf("%s: status %d → %q:\n%s", path, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	_, page := do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil)
	return parseTwoStep(page)
}

func (env *webEnv) twoStepOn(t *testing.T, address string) bool {
	t.Helper()
	acc, err := env.st.GetAccount(context.Background(), address)
	if err != nil {
		t.Fatal(err)
	}
	return acc.TwoStep
}

// popLogin logs in as a mail client would, through its own Authenticator
// (its own cache: only credential_gen ties it to the settings screen).
func popLogin(t *testing.T, env *webEnv) func(address, pw string) error {
	auth, err := store.NewAuthenticator(env.st, store.AuthOptions{HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	return func(address, pw string) error {
		_, err := auth.Login(context.Background(), store.LoginRequest{Username: address, Password: pw,
			Remote: netip.MustParseAddr("192.0.2.1"), Service: store.ServicePOP3})
		return err
	}
}

// pendingSetup signs taro@skydesk.jp in and starts a two-step setup: the
// session holds secret, not yet confirmed.
func pendingSetup(t *testing.T) (env *webEnv, c *http.Client, token, secret string) {
	t.Helper()
	env = newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c = env.client()
	token = csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse"))
	return env, c, token, env.twoStep(c, token, "start", "").secret
}

// enrolled adds address (password "correct horse") with two-step on and
// an authenticator registered.
func enrolled(t *testing.T, env *webEnv, address string) store.TOTPKey {
	t.Helper()
	storetest.AddUser(t, env.st.Driver, address, "correct horse")
	key, err := env.st.EnrolTOTP(context.Background(), address)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestWeb_TwoStep_on: the owner turns two-step verification on. The new
// secret stays in the session until a code of it confirms it; a wrong
// code keeps it for another try; the confirming code is then used up, and
// mail apps need an app password.
func TestWeb_TwoStep_on(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	const user = "taro@skydesk.jp"
	storetest.AddUser(t, env.st.Driver, user, "correct horse")
	pop := popLogin(t, env)
	if err := pop(user, "correct horse"); err != nil { // cached from now on
		t.Fatal(err)
	}
	c := env.client()
	page := env.signIn(c, user, "correct horse")
	token := csrfOf(t, page)
	if !strings.Contains(page, `id="twostep-start"`) || strings.Contains(page, `id="totp-secret"`) {
		t.Fatalf("two-step off: no start button, or a secret shown:\n%s", page)
	}
	// Nothing pending: a code confirms nothing.
	if p := env.twoStep(c, token, "confirm", "123456"); !strings.Contains(p.err, "expired or was not started") {
		t.Fatalf("confirm without a setup: %+v", p.err)
	}

	p := env.twoStep(c, token, "start", "")
	if len(p.secret) != 32 || !strings.Contains(p.page, `<svg class="qr"`) ||
		!strings.Contains(p.page, `aria-label="QR code that adds this account to an authenticator app"`) ||
		!strings.Contains(p.page, `<label for="enrol-code">`) {
		t.Fatalf("setup not shown:\n%s", p.page)
	}
	secret := p.secret
	if env.twoStepOn(t, user) {
		t.Fatal("starting the setup turned two-step on")
	}
	if err := pop(user, "correct horse"); err != nil {
		t.Fatalf("POP with the password during the setup: %v", err)
	}
	// A reload shows the same pending secret.
	if _, again := do(t, c, "GET", env.srv.URL+"/settings", nil, nil); parseTwoStep(again).secret != secret {
		t.Fatal("reload changed the pending secret")
	}

	wrong := wrongCodes(t, secret, 1)[0]
	p = env.twoStep(c, token, "confirm", wrong)
	if !strings.Contains(p.err, "That code is not correct") || !strings.Contains(p.err, "Tries left: 4") || p.secret != secret {
		t.Fatalf("wrong code: error %q, secret %q (want %q kept)", p.err, p.secret, secret)
	}
	if !strings.Contains(p.page, `aria-describedby="enrol-code-hint twostep-error"`) {
		t.Error("the code field does not point at the error")
	}
	if env.twoStepOn(t, user) {
		t.Fatal("a wrong code turned two-step on")
	}

	code := totpCode(t, secret, 0)
	p = env.twoStep(c, token, "confirm", code)
	if !strings.Contains(p.notice, "Two-step verification is now on") || !strings.Contains(p.notice, "no longer accept your account password") ||
		!strings.Contains(p.page, `<a href="#app-name">Create an app password</a>`) || !strings.Contains(p.page, `id="app-name"`) {
		t.Fatalf("after confirming: notice %q:\n%s", p.notice, p.page)
	}
	if p.secret != "" || !strings.Contains(p.page, `id="off-code"`) {
		t.Fatal("the secret is still shown, or no turn-off form")
	}
	if !env.twoStepOn(t, user) {
		t.Fatal("two-step is not on")
	}
	if err := pop(user, "correct horse"); !isReason(err, store.AuthNeedAppPassword) {
		t.Fatalf("POP with the account password after turning on: %v", err)
	}
	// The confirming code is used up; the next one signs in.
	other := env.client()
	_, signin := do(t, other, "GET", env.srv.URL+"/settings", nil, nil)
	resp, _ := do(t, other, "POST", env.srv.URL+"/settings/signin",
		url.Values{"csrf": {csrfOf(t, signin)}, "address": {user}, "password": {"correct horse"}, "otp": {code}}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("sign-in replaying the confirming code: %d", resp.StatusCode)
	}
	env.signInCode(env.client(), user, "correct horse", totpCode(t, secret, 30*time.Second))
	// On already: no second setup.
	if p = env.twoStep(c, token, "start", ""); !strings.Contains(p.err, "already on") || p.secret != "" {
		t.Fatalf("start while on: %+v", p.err)
	}
}

func isReason(err error, r store.AuthReason) bool {
	ae, ok := err.(*store.AuthError)
	return ok && ae.Reason == r
}

// TestWeb_TwoStep_wrongCodes: five wrong confirming codes drop the
// pending secret; hostile codes are just wrong codes.
func TestWeb_TwoStep_wrongCodes(t *testing.T) {
	env, c, token, secret := pendingSetup(t)
	bad := append([]string{strings.Repeat("7", 10_000), "12345x", "<script>"}, wrongCodes(t, secret, 2)...)
	for i, code := range bad {
		p := env.twoStep(c, token, "confirm", code)
		if i < len(bad)-1 {
			if p.secret != secret || !strings.Contains(p.err, "Tries left: "+string(rune('4'-i))) {
				t.Fatalf("wrong code %d: secret %q, error %q", i+1, p.secret, p.err)
			}
			continue
		}
		if p.secret != "" || !strings.Contains(p.err, "wrong too many times") || !strings.Contains(p.page, `id="twostep-start"`) {
			t.Fatalf("5th wrong code: secret %q, error %q", p.secret, p.err)
		}
	}
	// The dropped secret's right code confirms nothing.
	if p := env.twoStep(c, token, "confirm", totpCode(t, secret, 0)); !strings.Contains(p.err, "expired or was not started") {
		t.Fatalf("dropped secret: %q", p.err)
	}
	if env.twoStepOn(t, "taro@skydesk.jp") {
		t.Fatal("two-step on after the setup was dropped")
	}
	// Starting again gives a new secret with fresh tries.
	p := env.twoStep(c, token, "start", "")
	if p.secret == "" || p.secret == secret {
		t.Fatalf("new setup: secret %q", p.secret)
	}
	// A body past the form bound is refused before any parsing.
	resp, _ := do(t, c, "POST", env.srv.URL+"/settings/two-step/confirm",
		url.Values{"csrf": {token}, "code": {strings.Repeat("1", maxFormBytes)}}, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("oversized form: %d", resp.StatusCode)
	}
	if _, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil); parseTwoStep(page).secret != p.secret {
		t.Fatal("the oversized form changed the setup")
	}
}

// TestWeb_TwoStep_expires: a pending secret lives 10 minutes (the
// session's clock), and cancel drops it at once.
func TestWeb_TwoStep_expires(t *testing.T) {
	env, c, token, secret := pendingSetup(t)
	env.clock.add(9*time.Minute + 59*time.Second)
	if _, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil); parseTwoStep(page).secret != secret {
		t.Fatal("setup gone before 10 minutes")
	}
	env.clock.add(time.Second)
	_, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	if p := parseTwoStep(page); p.secret != "" || !strings.Contains(page, `id="twostep-start"`) {
		t.Fatal("setup still shown after 10 minutes")
	}
	if p := env.twoStep(c, token, "confirm", totpCode(t, secret, 0)); !strings.Contains(p.err, "expired or was not started") {
		t.Fatalf("expired secret confirmed: %q", p.err)
	}
	if env.twoStepOn(t, "taro@skydesk.jp") {
		t.Fatal("an expired setup turned two-step on")
	}
	// Cancel.
	env.twoStep(c, token, "start", "")
	p := env.twoStep(c, token, "cancel", "")
	if p.secret != "" || !strings.Contains(p.notice, "setup was cancelled") {
		t.Fatalf("cancel: secret %q, notice %q", p.secret, p.notice)
	}
	// A new session (sign in again) has no pending secret either.
	env.twoStep(c, token, "start", "")
	if page := env.signIn(env.client(), "taro@skydesk.jp", "correct horse"); parseTwoStep(page).secret != "" {
		t.Fatal("a pending secret leaked into another session")
	}
}

// TestWeb_TwoStep_off: turning two-step off needs a current, unused code.
func TestWeb_TwoStep_off(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{FreeFailures: 100, LockAfter: 1000, LockFor: time.Minute,
		BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour})
	const user = "jiro@example.co.jp"
	key := enrolled(t, env, user)
	pop := popLogin(t, env)
	c := env.client()
	used := totpCode(t, key.Secret, 0)
	token := csrfOf(t, env.signInCode(c, user, "correct horse", used))
	for _, code := range []string{"", used, wrongCodes(t, key.Secret, 1)[0], "abcdef", strings.Repeat("1", 10_000)} {
		p := env.twoStep(c, token, "off", code)
		if !strings.Contains(p.err, "not correct or was already used") || !env.twoStepOn(t, user) {
			t.Fatalf("off with %.10q: error %q", code, p.err)
		}
		if !strings.Contains(p.page, `aria-describedby="off-code-hint twostep-error"`) {
			t.Error("the code field does not point at the error")
		}
	}
	p := env.twoStep(c, token, "off", totpCode(t, key.Secret, 30*time.Second))
	if !strings.Contains(p.notice, "Two-step verification is now off") || env.twoStepOn(t, user) ||
		!strings.Contains(p.page, `id="twostep-start"`) {
		t.Fatalf("off: notice %q", p.notice)
	}
	if err := pop(user, "correct horse"); err != nil {
		t.Fatalf("POP with the account password after off: %v", err)
	}
	// The secret is gone: turning on again starts from a new one.
	if s := env.twoStep(c, token, "start", "").secret; s == "" || s == key.Secret {
		t.Fatalf("new setup secret %q", s)
	}
}

// TestWeb_TwoStep_off_throttled: wrong off-codes count on the sign-in
// throttle, so a hijacked session cannot try out codes; the lock also
// holds sign-ins.
func TestWeb_TwoStep_off_throttled(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{FreeFailures: 1, LockAfter: 3, LockFor: 10 * time.Minute,
		BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour})
	const user = "jiro@example.co.jp"
	key := enrolled(t, env, user)
	c := env.client()
	token := csrfOf(t, env.signInCode(c, user, "correct horse", totpCode(t, key.Secret, 0)))
	for _, code := range wrongCodes(t, key.Secret, 3) {
		env.twoStep(c, token, "off", code)
	}
	p := env.twoStep(c, token, "off", totpCode(t, key.Secret, 30*time.Second))
	if !strings.Contains(p.err, "try again in 10 minutes") || !env.twoStepOn(t, user) {
		t.Fatalf("right code after 3 wrong ones: error %q, on %v", p.err, env.twoStepOn(t, user))
	}
	other := env.client()
	_, signin := do(t, other, "GET", env.srv.URL+"/settings", nil, nil)
	resp, _ := do(t, other, "POST", env.srv.URL+"/settings/signin",
		url.Values{"csrf": {csrfOf(t, signin)}, "address": {user}, "password": {"correct horse"}, "otp": {totpCode(t, key.Secret, 30*time.Second)}}, nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("sign-in after wrong off-codes: %d", resp.StatusCode)
	}
}

// TestWeb_TwoStep_refused: the two-step forms need a session, its CSRF
// token and a same-site request, like every settings form.
func TestWeb_TwoStep_refused(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	const user = "taro@skydesk.jp"
	storetest.AddUser(t, env.st.Driver, user, "correct horse")
	victim := env.client()
	token := csrfOf(t, env.signIn(victim, user, "correct horse"))
	for _, path := range []string{"start", "confirm", "cancel", "off"} {
		for _, tc := range []struct {
			name   string
			c      *http.Client
			form   url.Values
			hdr    map[string]string
			status int
		}{
			{"no session", env.client(), url.Values{"csrf": {token}, "code": {"123456"}}, nil, http.StatusUnauthorized},
			{"no token", victim, url.Values{"code": {"123456"}}, nil, http.StatusForbidden},
			{"forged token", victim, url.Values{"csrf": {"AAAA"}, "code": {"123456"}}, nil, http.StatusForbidden},
			{"cross-site", victim, url.Values{"csrf": {token}, "code": {"123456"}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		} {
			if resp, body := do(t, tc.c, "POST", env.srv.URL+"/settings/two-step/"+path, tc.form, tc.hdr); resp.StatusCode != tc.status {
				t.Errorf("%s, %s: %d, want %d:\n%s", path, tc.name, resp.StatusCode, tc.status, body)
			}
		}
	}
	_, page := do(t, victim, "GET", env.srv.URL+"/settings", nil, nil)
	if parseTwoStep(page).secret != "" || env.twoStepOn(t, user) {
		t.Fatal("a refused form started a setup or turned two-step on")
	}
	// A reloaded form target shows the screen.
	if resp, _ := do(t, victim, "GET", env.srv.URL+"/settings/two-step/confirm", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET of a form target: %d", resp.StatusCode)
	}
}

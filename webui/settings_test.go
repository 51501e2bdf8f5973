package webui

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// totpCode is the authenticator code for now+offset. The Authenticator
// runs on the real clock (storetest), and accepts ±1 step.
func totpCode(t testing.TB, secret string, offset time.Duration) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, time.Now().Add(offset))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCodes returns n six-digit codes that none of the steps around now
// accepts, so a guess can never be right by chance.
func wrongCodes(t testing.TB, secret string, n int) []string {
	t.Helper()
	valid := map[string]bool{}
	for i := -2; i <= 2; i++ {
		valid[totpCode(t, secret, time.Duration(i)*30*time.Second)] = true
	}
	var out []string
	for i := 0; len(out) < n; i++ {
		if c := fmt.Sprintf("%06d", i*104729%1000000); !valid[c] {
			out = append(out, c)
		}
	}
	return out
}

// signInCode is env.signIn with a verification code.
func (env *webEnv) signInCode(c *http.Client, address, password, code string) string {
	t := env.t
	t.Helper()
	_, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	resp, body := do(t, c, "POST", env.srv.URL+"/settings/signin",
		url.Values{"csrf": {csrfOf(t, page)}, "address": {address}, "password": {password}, "otp": {code}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d:\n%s", resp.StatusCode, body)
	}
	_, page = do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	if !strings.Contains(page, `id="account">`+address) {
		t.Fatalf("not signed in:\n%s", page)
	}
	return page
}

var alertRE = regexp.MustCompile(`(?s)<div class="notice warn" role="alert"[^>]*>(.*?)</div>`)

// TestWeb_SignIn_twoStep: with two-step verification on, the settings
// screen needs the account password and a current authenticator code; a
// wrong password, a missing code and a wrong code get one and the same
// answer, and wrong codes are throttled like wrong passwords.
func TestWeb_SignIn_twoStep(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{FreeFailures: 100, LockAfter: 1000, LockFor: time.Minute,
		BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour})
	ctx := context.Background()
	storetest.AddUser(t, env.st.Driver, "jiro@example.co.jp", "correct horse")
	storetest.AddUser(t, env.st.Driver, "noapp@example.co.jp", "correct horse")
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	key, err := env.st.EnrolTOTP(ctx, "jiro@example.co.jp")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.st.SetTwoStep(ctx, "noapp@example.co.jp", true); err != nil {
		t.Fatal(err)
	}
	post := func(lang, address, password, code string) (*http.Response, string) {
		t.Helper()
		c := env.client()
		_, page := do(t, c, "GET", env.srv.URL+"/settings?lang="+lang, nil, nil)
		return do(t, c, "POST", env.srv.URL+"/settings/signin",
			url.Values{"csrf": {csrfOf(t, page)}, "address": {address}, "password": {password}, "otp": {code}}, nil)
	}
	wrong := wrongCodes(t, key.Secret, 1)[0]
	var alerts []string
	for _, tc := range []struct{ name, address, password, code string }{
		{"wrong password, right code", "jiro@example.co.jp", "wrong horse", totpCode(t, key.Secret, 0)},
		{"right password, no code", "jiro@example.co.jp", "correct horse", ""},
		{"right password, wrong code", "jiro@example.co.jp", "correct horse", wrong},
		{"right password, letters", "jiro@example.co.jp", "correct horse", "abcdef"},
	} {
		resp, body := post("en", tc.address, tc.password, tc.code)
		m := alertRE.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusUnauthorized || m == nil || !strings.Contains(m[1], "The address, password or verification code is not correct") {
			t.Fatalf("%s: status %d:\n%s", tc.name, resp.StatusCode, body)
		}
		alerts = append(alerts, m[0])
	}
	for _, a := range alerts[1:] {
		if a != alerts[0] {
			t.Errorf("answers differ, telling which part was wrong:\n%s\n%s", alerts[0], a)
		}
	}
	for _, tc := range []struct{ lang, want string }{
		{"en", "no authenticator app is registered"},
		{"ja", "認証アプリが登録されていない"},
	} {
		resp, body := post(tc.lang, "noapp@example.co.jp", "correct horse", "123456")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(html.UnescapeString(body), tc.want) || !strings.Contains(body, `id="no-authenticator"`) {
			t.Fatalf("no authenticator (%s): status %d:\n%s", tc.lang, resp.StatusCode, body)
		}
	}
	// …but only after the right password.
	if _, body := post("en", "noapp@example.co.jp", "wrong horse", ""); strings.Contains(body, "no-authenticator") {
		t.Error("no-authenticator told without the password")
	}
	// The field is on the form, optional, numeric, for one-time codes.
	_, page := do(t, env.client(), "GET", env.srv.URL+"/settings?lang=en", nil, nil)
	field := regexp.MustCompile(`<input id="otp"[^>]*>`).FindString(page)
	for _, attr := range []string{`name="otp"`, `inputmode="numeric"`, `autocomplete="one-time-code"`, `maxlength="8"`} {
		if !strings.Contains(field, attr) {
			t.Errorf("code field %q lacks %s", field, attr)
		}
	}
	if strings.Contains(field, "required") || !strings.Contains(page, `<label for="otp">Verification code`) {
		t.Errorf("code field %q: required or unlabelled", field)
	}
	// Right password and code: signed in; the same code again is refused.
	code := totpCode(t, key.Secret, 0)
	env.signInCode(env.client(), "jiro@example.co.jp", "correct horse", code)
	if resp, _ := post("en", "jiro@example.co.jp", "correct horse", code); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed code: status %d", resp.StatusCode)
	}
	// The next step's code (clock skew) works once more, with spaces.
	next := totpCode(t, key.Secret, 30*time.Second)
	env.signInCode(env.client(), "jiro@example.co.jp", "correct horse", next[:3]+" "+next[3:])
	// Without two-step the field is ignored.
	env.signInCode(env.client(), "taro@skydesk.jp", "correct horse", "999999")
	env.signInCode(env.client(), "taro@skydesk.jp", "correct horse", "")
}

// TestWeb_SignIn_twoStep_throttled: guessing codes after the right
// password locks the account like guessing passwords.
func TestWeb_SignIn_twoStep_throttled(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{FreeFailures: 1, LockAfter: 3, LockFor: 10 * time.Minute,
		BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour})
	storetest.AddUser(t, env.st.Driver, "jiro@example.co.jp", "correct horse")
	key, err := env.st.EnrolTOTP(context.Background(), "jiro@example.co.jp")
	if err != nil {
		t.Fatal(err)
	}
	c := env.client()
	var resp *http.Response
	var body string
	for _, guess := range wrongCodes(t, key.Secret, 4) {
		_, page := do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil)
		resp, body = do(t, c, "POST", env.srv.URL+"/settings/signin",
			url.Values{"csrf": {csrfOf(t, page)}, "address": {"jiro@example.co.jp"}, "password": {"correct horse"}, "otp": {guess}}, nil)
	}
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "try again in 10 minutes") {
		t.Fatalf("after 4 wrong codes: %d:\n%s", resp.StatusCode, body)
	}
	_, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	resp, _ = do(t, c, "POST", env.srv.URL+"/settings/signin",
		url.Values{"csrf": {csrfOf(t, page)}, "address": {"jiro@example.co.jp"}, "password": {"correct horse"}, "otp": {totpCode(t, key.Secret, 0)}}, nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right code while locked: %d", resp.StatusCode)
	}
}

func TestWeb_SignIn(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{FreeFailures: 100, LockAfter: 1000, LockFor: time.Minute,
		BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour})
	ctx := context.Background()
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	app, err := env.st.CreateAppPassword(ctx, "taro@skydesk.jp", "phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.st.AddAccount(ctx, store.NewAccount{Address: "sso@example.co.jp", Federated: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, address, password string
		status                  int
		want                    string
	}{
		{"wrong password", "taro@skydesk.jp", "wrong horse", 401, "The address, password or verification code is not correct"},
		{"no such account", "nobody@skydesk.jp", "correct horse", 401, "The address, password or verification code is not correct"},
		{"app password refused", "taro@skydesk.jp", app, 401, "app passwords cannot be used here"},
		{"bare local part", "taro", "correct horse", 401, "The address, password or verification code is not correct"},
		{"federated", "sso@example.co.jp", "anything at all", 401, "The address, password or verification code is not correct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := env.client()
			_, page := do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil)
			resp, body := do(t, c, "POST", env.srv.URL+"/settings/signin",
				url.Values{"csrf": {csrfOf(t, page)}, "address": {tc.address}, "password": {tc.password}}, nil)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d (want %d), page lacks %q:\n%s", resp.StatusCode, tc.status, tc.want, body)
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == sessionCookie && ck.Value != "" {
					t.Fatal("a refused sign-in set a session cookie")
				}
			}
		})
	}
	t.Run("ok", func(t *testing.T) {
		c := env.client()
		_, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
		resp, _ := do(t, c, "POST", env.srv.URL+"/settings/signin",
			url.Values{"csrf": {csrfOf(t, page)}, "address": {" Taro@SKYDESK.jp "}, "password": {"correct horse"}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d", resp.StatusCode)
		}
		raw := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
		m := regexp.MustCompile(`(?m)^` + sessionCookie + `=[^;]+;.*$`).FindString(raw)
		for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
			if !strings.Contains(m, attr) {
				t.Errorf("session cookie %q lacks %s", m, attr)
			}
		}
		if strings.Contains(m, "Domain=") || strings.Contains(m, "Max-Age") {
			t.Errorf("session cookie %q must be a host-only browser-session cookie", m)
		}
		_, page = do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
		if !strings.Contains(page, `id="account">taro@skydesk.jp<`) {
			t.Fatalf("settings screen not shown:\n%s", page)
		}
	})
}

func TestWeb_SignIn_throttled(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{FreeFailures: 1, LockAfter: 3, LockFor: 10 * time.Minute,
		BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	var resp *http.Response
	var body string
	for i := 0; i < 4; i++ {
		_, page := do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil)
		resp, body = do(t, c, "POST", env.srv.URL+"/settings/signin",
			url.Values{"csrf": {csrfOf(t, page)}, "address": {"taro@skydesk.jp"}, "password": {"guess"}}, nil)
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "try again in 10 minutes") {
		t.Fatalf("after 4 failures: %d Retry-After %q:\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Locked means locked, even with the right password.
	_, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	resp, _ = do(t, c, "POST", env.srv.URL+"/settings/signin",
		url.Values{"csrf": {csrfOf(t, page)}, "address": {"taro@skydesk.jp"}, "password": {"correct horse"}}, nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: %d", resp.StatusCode)
	}
}

// TestWeb_Refused: forms without a session or without the right CSRF
// token change nothing.
func TestWeb_Refused(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	storetest.AddUser(t, env.st.Driver, "jiro@skydesk.jp", "correct horse")
	victim := env.client()
	page := env.signIn(victim, "taro@skydesk.jp", "correct horse")
	token := csrfOf(t, page)
	other := env.client()
	otherToken := csrfOf(t, env.signIn(other, "jiro@skydesk.jp", "correct horse"))

	pop := url.Values{"access": {"disabled"}, "spam": {"include"}, "on_delete": {"delete"}}
	with := func(v url.Values, k, val string) url.Values {
		o := url.Values{}
		for kk, vv := range v {
			o[kk] = vv
		}
		if val != "" {
			o.Set(k, val)
		}
		return o
	}
	for _, tc := range []struct {
		name   string
		c      func() *http.Client
		path   string
		form   url.Values
		hdr    map[string]string
		status int
	}{
		{"no session", env.client, "/settings/pop", with(pop, "csrf", token), nil, 401},
		{"no token", func() *http.Client { return victim }, "/settings/pop", pop, nil, 403},
		{"forged token", func() *http.Client { return victim }, "/settings/pop", with(pop, "csrf", "AAAA"), nil, 403},
		{"another session's token", func() *http.Client { return victim }, "/settings/pop", with(pop, "csrf", otherToken), nil, 403},
		{"cross-site", func() *http.Client { return victim }, "/settings/pop", with(pop, "csrf", token), map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"create app, no token", func() *http.Client { return victim }, "/settings/app-passwords", url.Values{"name": {"evil"}}, nil, 403},
		{"create app, no session", env.client, "/settings/app-passwords", url.Values{"name": {"evil"}, "csrf": {token}}, nil, 401},
		{"sign-in without its cookie", env.client, "/settings/signin", url.Values{"csrf": {token}, "address": {"taro@skydesk.jp"}, "password": {"correct horse"}}, nil, 403},
		{"sign out, no token", func() *http.Client { return victim }, "/settings/signout", url.Values{}, nil, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.c(), "POST", env.srv.URL+tc.path, tc.form, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d:\n%s", resp.StatusCode, tc.status, body)
			}
		})
	}
	if len(env.st.updates) != 0 {
		t.Errorf("refused forms changed POP settings: %+v", env.st.updates)
	}
	if apps, _ := env.st.ListAppPasswords(context.Background(), "taro@skydesk.jp"); len(apps) != 0 {
		t.Errorf("refused form created an app password: %+v", apps)
	}
	// The victim is still signed in.
	if _, p := do(t, victim, "GET", env.srv.URL+"/settings", nil, nil); !strings.Contains(p, `id="account"`) {
		t.Error("victim was signed out")
	}
}

func TestWeb_POP(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	ctx := context.Background()
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	token := csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse"))
	save := func(form url.Values) string {
		t.Helper()
		form.Set("csrf", token)
		resp, body := do(t, c, "POST", env.srv.URL+"/settings/pop?lang=en", form, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("save: %d\n%s", resp.StatusCode, body)
		}
		_, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
		return page
	}
	form := func(access, spam, del string) url.Values {
		return url.Values{"access": {access}, "spam": {spam}, "on_delete": {del}}
	}

	page := save(form("since", "exclude", "keep"))
	if u := env.st.last(t); u.Access == nil || *u.Access != store.POPSince || u.IncludeSpam != nil || u.OnDelete != nil {
		t.Fatalf("since: update %+v", u)
	}
	if !strings.Contains(page, "only mail that arrives from now can be downloaded") || !strings.Contains(page, `value="since" checked`) {
		t.Fatalf("since: page:\n%s", page)
	}
	n := len(env.st.updates)
	// Changing only spam and delete must not resend the access choice
	// (which would empty the queue again).
	page = save(form("since", "include", "delete"))
	if u := env.st.last(t); u.Access != nil || u.IncludeSpam == nil || !*u.IncludeSpam || u.OnDelete == nil || *u.OnDelete != store.DeleteOnServer {
		t.Fatalf("spam+delete: update %+v", u)
	}
	got, _ := env.st.GetPOP(ctx, "taro@skydesk.jp")
	if got.Access != store.POPSince || !got.IncludeSpam || got.OnDelete != store.DeleteOnServer {
		t.Fatalf("stored %+v", got)
	}
	if !strings.Contains(page, "Spam is now included") || !strings.Contains(page, "deleted from the server") {
		t.Fatalf("flash missing:\n%s", page)
	}
	// The flash shows once.
	if _, again := do(t, c, "GET", env.srv.URL+"/settings", nil, nil); strings.Contains(again, `id="saved"`) {
		t.Error("flash shown twice")
	}
	// Nothing changed: nothing sent.
	page = save(form("since", "include", "delete"))
	if len(env.st.updates) != n+1 || !strings.Contains(page, "Nothing was changed") {
		t.Fatalf("no-op save sent an update or said otherwise")
	}
	save(form("all", "include", "delete"))
	if u := env.st.last(t); u.Access == nil || *u.Access != store.POPAll {
		t.Fatalf("all: %+v", u)
	}
	// "all" again without the re-queue box: not sent; with it: sent.
	save(form("all", "exclude", "delete"))
	if u := env.st.last(t); u.Access != nil {
		t.Fatalf("unchanged all was resent: %+v", u)
	}
	f := form("all", "exclude", "delete")
	f.Set("requeue", "1")
	page = save(f)
	if u := env.st.last(t); u.Access == nil || *u.Access != store.POPAll || !strings.Contains(page, "made available to POP again") {
		t.Fatalf("requeue: %+v", u)
	}
	save(form("disabled", "exclude", "keep"))
	if got, _ := env.st.GetPOP(ctx, "taro@skydesk.jp"); got.Access != store.POPDisabled || got.OnDelete != store.KeepOnServer {
		t.Fatalf("disabled: %+v", got)
	}
	// A bad value is refused without a change.
	n = len(env.st.updates)
	if page = save(form("sometimes", "exclude", "keep")); !strings.Contains(page, "could not be read") || len(env.st.updates) != n {
		t.Fatal("bad access value accepted")
	}
}

func TestWeb_AppPasswords(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	ctx := context.Background()
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	key, err := env.st.EnrolTOTP(ctx, "taro@skydesk.jp")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := store.NewAuthenticator(env.st, store.AuthOptions{HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	popLogin := func(pw string) error {
		_, err := auth.Login(ctx, store.LoginRequest{Username: "taro@skydesk.jp", Password: pw,
			Remote: netip.MustParseAddr("192.0.2.1"), Service: store.ServicePOP3})
		return err
	}
	c := env.client()
	page := env.signInCode(c, "taro@skydesk.jp", "correct horse", totpCode(t, key.Secret, 0))
	if !strings.Contains(page, "twostep_on") && !strings.Contains(page, `class="badge on"`) {
		t.Fatalf("two-step status not shown:\n%s", page)
	}
	token := csrfOf(t, page)
	resp, _ := do(t, c, "POST", env.srv.URL+"/settings/app-passwords", url.Values{"csrf": {token}, "name": {"iPhone <Mail>"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	_, page = do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	m := regexp.MustCompile(`id="secret">([a-z ]{19})<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("secret not shown:\n%s", page)
	}
	if !strings.Contains(page, "iPhone &lt;Mail&gt;") {
		t.Error("name not listed (escaped)")
	}
	if _, again := do(t, c, "GET", env.srv.URL+"/settings", nil, nil); strings.Contains(again, m[1]) {
		t.Error("secret shown twice")
	}
	if err := popLogin(m[1]); err != nil {
		t.Fatalf("POP login with the new app password: %v", err)
	}
	if err := popLogin("correct horse"); err == nil {
		t.Fatal("account password worked for POP with two-step on")
	}
	resp, _ = do(t, c, "POST", env.srv.URL+"/settings/app-passwords", url.Values{"csrf": {token}, "name": {"iPhone <Mail>"}}, nil)
	if _, page = do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil); resp.StatusCode != http.StatusSeeOther || !strings.Contains(page, "already have an app password with that name") {
		t.Fatalf("duplicate name: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = do(t, c, "POST", env.srv.URL+"/settings/app-passwords/revoke", url.Values{"csrf": {token}, "name": {"iPhone <Mail>"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if err := popLogin(m[1]); err == nil {
		t.Fatal("revoked app password still works")
	}
	if _, page = do(t, c, "GET", env.srv.URL+"/settings", nil, nil); !strings.Contains(page, `id="apps-empty"`) {
		t.Fatal("revoked password still listed")
	}
}

func TestWeb_Session(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	token := csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse"))
	env.clock.add(29 * time.Minute)
	if _, p := do(t, c, "GET", env.srv.URL+"/settings", nil, nil); !strings.Contains(p, `id="account"`) {
		t.Fatal("session ended before the idle timeout")
	}
	env.clock.add(31 * time.Minute)
	resp, _ := do(t, c, "POST", env.srv.URL+"/settings/pop", url.Values{"csrf": {token}, "access": {"disabled"}, "spam": {"exclude"}, "on_delete": {"keep"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST after idle expiry: %d", resp.StatusCode)
	}
	if _, p := do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil); !strings.Contains(p, "open too long") {
		t.Fatal("expired session not explained")
	}
	// Absolute limit: active all along, still ends after 12 hours.
	token = csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse"))
	for range 25 {
		env.clock.add(29 * time.Minute)
		do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	}
	if _, p := do(t, c, "GET", env.srv.URL+"/settings", nil, nil); strings.Contains(p, `id="account"`) {
		t.Fatal("session outlived its 12-hour limit")
	}
	resp, _ = do(t, c, "POST", env.srv.URL+"/settings/pop", url.Values{"csrf": {token}, "access": {"disabled"}, "spam": {"exclude"}, "on_delete": {"keep"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST after the 12-hour limit: %d", resp.StatusCode)
	}
	// Sign-out ends the session on the server: the old cookie is dead.
	page := env.signIn(c, "taro@skydesk.jp", "correct horse")
	u, _ := url.Parse(env.srv.URL)
	var old *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			old = ck
		}
	}
	resp, _ = do(t, c, "POST", env.srv.URL+"/settings/signout", url.Values{"csrf": {csrfOf(t, page)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	replay := env.client()
	replay.Jar.SetCookies(u, []*http.Cookie{old})
	if _, p := do(t, replay, "GET", env.srv.URL+"/settings", nil, nil); strings.Contains(p, `id="account"`) {
		t.Fatal("signed-out session cookie still works")
	}
}

// The settings screen states the mailbox's size against its quota, and
// follows a quota change.
func TestWeb_MailboxUsage(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	ctx := context.Background()
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	body := "Subject: hello\r\n\r\n" + strings.Repeat("x", 3<<20) + "\r\n"
	if _, err := env.st.Driver.Deliver(ctx, store.Delivery{Recipients: []string{"taro@skydesk.jp"}, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	if err := env.st.Driver.SetQuota(ctx, "taro@skydesk.jp", 10<<20); err != nil {
		t.Fatal(err)
	}
	c := env.client()
	env.signIn(c, "taro@skydesk.jp", "correct horse")
	_, page := do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil)
	if !strings.Contains(page, "Mailbox: 3.0 MiB of 10 MiB used (30%)") {
		t.Fatalf("settings page lacks the mailbox usage:\n%s", page)
	}
	if err := env.st.Driver.SetQuota(ctx, "taro@skydesk.jp", 0); err != nil {
		t.Fatal(err)
	}
	if _, page = do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil); !strings.Contains(page, "Mailbox: 3.0 MiB used (no limit).") {
		t.Fatalf("unlimited quota not shown:\n%s", page)
	}
}

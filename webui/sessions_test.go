package webui

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// signedInPage reports whether c's session shows the settings screen.
func (env *webEnv) signedInPage(c *http.Client) bool {
	env.t.Helper()
	_, p := do(env.t, c, "GET", env.srv.URL+"/settings", nil, nil)
	return strings.Contains(p, `id="account"`)
}

// createApp posts the app-password form (extra fields from a
// re-authentication form) and returns the response and its body.
func (env *webEnv) createApp(c *http.Client, token, name string, extra url.Values) (*http.Response, string) {
	env.t.Helper()
	form := url.Values{"csrf": {token}, "name": {name}}
	for k, v := range extra {
		form[k] = v
	}
	return do(env.t, c, "POST", env.srv.URL+"/settings/app-passwords", form, nil)
}

func (env *webEnv) appCount(t *testing.T, address string) int {
	t.Helper()
	l, err := env.st.ListAppPasswords(context.Background(), address)
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// TestWeb_SessionEndedByTwoStepOn is issue 13 §3: a session signed in
// with the password alone must not outlive two-step verification turned
// on from another session; before, it kept working and could create an
// app password that logs in to POP. The session that turned it on stays.
func TestWeb_SessionEndedByTwoStepOn(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	attacker, owner := env.client(), env.client()
	attackerToken := csrfOf(t, env.signIn(attacker, "taro@skydesk.jp", "correct horse"))
	ownerToken := csrfOf(t, env.signIn(owner, "taro@skydesk.jp", "correct horse"))

	secret := env.twoStep(owner, ownerToken, "start", "").secret
	if p := env.twoStep(owner, ownerToken, "confirm", totpCode(t, secret, 0)); p.notice == "" || !env.twoStepOn(t, "taro@skydesk.jp") {
		t.Fatalf("two-step not turned on:\n%s", p.page)
	}
	if !env.signedInPage(owner) {
		t.Fatal("the session that turned two-step on was signed out")
	}
	if env.signedInPage(attacker) {
		t.Fatal("a password-only session outlived two-step verification turned on")
	}
	resp, _ := env.createApp(attacker, attackerToken, "evil", nil)
	if resp.StatusCode != http.StatusUnauthorized || env.appCount(t, "taro@skydesk.jp") != 0 {
		t.Fatalf("the ended session created an app password: %d", resp.StatusCode)
	}
	// The owner goes on in the same session: a change re-binds it again.
	if resp, _ := env.createApp(owner, ownerToken, "phone", nil); resp.StatusCode != http.StatusSeeOther || env.appCount(t, "taro@skydesk.jp") != 1 {
		t.Fatalf("owner's app password: %d", resp.StatusCode)
	}
	if !env.signedInPage(owner) {
		t.Fatal("creating an app password signed its own session out")
	}
}

// TestWeb_SessionEndedByAdminChange: credential changes made outside the
// settings screen (here through the store, as admin commands do) end
// every session at its next request.
func TestWeb_SessionEndedByAdminChange(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	ctx := context.Background()
	for _, change := range []func() error{
		func() error { return env.st.SetPassword(ctx, "taro@skydesk.jp", "correct horse") },
		func() error { _, err := env.st.CreateAppPassword(ctx, "taro@skydesk.jp", "x"); return err },
		func() error { return env.st.RevokeAppPassword(ctx, "taro@skydesk.jp", "x") },
	} {
		c := env.client()
		env.signIn(c, "taro@skydesk.jp", "correct horse")
		if err := change(); err != nil {
			t.Fatal(err)
		}
		if env.signedInPage(c) {
			t.Fatal("a session outlived a credential change")
		}
	}
}

// TestWeb_SessionSurvivesRestart: the store and the handler start again
// (a new process); the browser's cookie still signs it in, with a
// sign-in time that still counts for the ten-minute rule.
func TestWeb_SessionSurvivesRestart(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	token := csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse"))
	env.clock.add(5 * time.Minute)
	env.restart()
	if !env.signedInPage(c) {
		t.Fatal("session lost in a restart")
	}
	if resp, _ := env.createApp(c, token, "phone", nil); resp.StatusCode != http.StatusSeeOther || env.appCount(t, "taro@skydesk.jp") != 1 {
		t.Fatalf("create after restart: %d", resp.StatusCode)
	}
	// The idle limit still holds across the restart.
	env.clock.add(31 * time.Minute)
	env.restart()
	if env.signedInPage(c) {
		t.Fatal("idle session revived by a restart")
	}
}

var reauthFormRE = regexp.MustCompile(`id="reauth-form"`)

// TestWeb_Reauth_appPassword: with a sign-in older than ten minutes, a
// stolen or forgotten session cannot mint an app password without the
// account password.
func TestWeb_Reauth_appPassword(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	token := csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse"))
	env.clock.add(10*time.Minute + time.Second)
	resp, page := env.createApp(c, token, "iPhone <Mail>", nil)
	if resp.StatusCode != http.StatusOK || !reauthFormRE.MatchString(page) || env.appCount(t, "taro@skydesk.jp") != 0 {
		t.Fatalf("old sign-in created an app password: %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, `name="name" value="iPhone &lt;Mail&gt;"`) || strings.Contains(page, `id="code"`) {
		t.Errorf("re-authentication form does not repeat the request:\n%s", page)
	}
	resp, page = env.createApp(c, csrfOf(t, page), "iPhone <Mail>", url.Values{"password": {"wrong horse"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `id="reauth-error"`) || env.appCount(t, "taro@skydesk.jp") != 0 {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = env.createApp(c, token, "iPhone <Mail>", url.Values{"password": {"correct horse"}})
	if resp.StatusCode != http.StatusSeeOther || env.appCount(t, "taro@skydesk.jp") != 1 {
		t.Fatalf("re-authenticated create: %d", resp.StatusCode)
	}
	// Re-authentication counts as a fresh sign-in for ten minutes.
	env.clock.add(9 * time.Minute)
	if resp, _ := env.createApp(c, token, "PC", nil); resp.StatusCode != http.StatusSeeOther || env.appCount(t, "taro@skydesk.jp") != 2 {
		t.Fatalf("create right after re-authentication: %d", resp.StatusCode)
	}
}

// TestWeb_Reauth_twoStepOff: turning two-step off with an old sign-in
// needs the password and a code, checked together; the code alone is
// not enough.
func TestWeb_Reauth_twoStepOff(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	key := enrolled(t, env, "taro@skydesk.jp")
	c := env.client()
	token := csrfOf(t, env.signInCode(c, "taro@skydesk.jp", "correct horse", totpCode(t, key.Secret, -30*time.Second)))
	env.clock.add(11 * time.Minute)
	resp, page := do(t, c, "POST", env.srv.URL+pathTwoStepOff, url.Values{"csrf": {token}, "code": {totpCode(t, key.Secret, 0)}}, nil)
	if resp.StatusCode != http.StatusOK || !reauthFormRE.MatchString(page) || !strings.Contains(page, `id="code"`) || !env.twoStepOn(t, "taro@skydesk.jp") {
		t.Fatalf("two-step off with an old sign-in and no password: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = do(t, c, "POST", env.srv.URL+pathTwoStepOff, url.Values{"csrf": {token}, "password": {"correct horse"},
		"code": {totpCode(t, key.Secret, 0)}}, nil)
	if resp.StatusCode != http.StatusSeeOther || env.twoStepOn(t, "taro@skydesk.jp") {
		t.Fatalf("re-authenticated two-step off: %d", resp.StatusCode)
	}
	if !env.signedInPage(c) {
		t.Fatal("turning two-step off signed its own session out")
	}
}

// TestWeb_SessionLimits: one account signing in again and again keeps at
// most sessionLimits.PerAccount sessions; the oldest go.
func TestWeb_SessionLimits(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	var clients []*http.Client
	for range sessionLimits.PerAccount + 2 {
		c := env.client()
		env.signIn(c, "taro@skydesk.jp", "correct horse")
		clients = append(clients, c)
		env.clock.add(time.Second)
	}
	for i, c := range clients {
		if got, want := env.signedInPage(c), i >= 2; got != want {
			t.Errorf("session %d signed in = %v, want %v", i, got, want)
		}
	}
}

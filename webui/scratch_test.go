package webui

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

var appSecretRE = regexp.MustCompile(`id="secret">([a-z ]{19})<`)

// nodes makes a second Handler on env's store and secret (another node
// on the shared database, with nothing in memory in common) and returns a
// function that sends the following requests to node A (0) or B (1).
func (env *webEnv) nodes() func(n int) {
	env.t.Helper()
	b, err := New(env.opts)
	if err != nil {
		env.t.Fatal(err)
	}
	a := env.web
	return func(n int) { env.serving.Store([]*Handler{a, b}[n]) }
}

// sessionOf is the signed-in session of c as the handler sees it.
func (env *webEnv) sessionOf(c *http.Client) signedIn {
	env.t.Helper()
	u, _ := url.Parse(env.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			s, ok, err := env.web.sessions.get(context.Background(), ck.Value)
			if !ok || err != nil {
				env.t.Fatalf("session of the cookie: %v, %v", ok, err)
			}
			return s
		}
	}
	env.t.Fatal("no session cookie")
	return signedIn{}
}

// TestScratch_otherNode: behind a balancer without sticky routing, the
// view after a form is served by the other node: a new app password made
// on A is shown by B once, and then by neither; a two-step setup started
// on A is shown by B, counts wrong codes on both against one limit, and
// is confirmed on B.
func TestScratch_otherNode(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	const user = "taro@skydesk.jp"
	storetest.AddUser(t, env.st.Driver, user, "correct horse")
	on := env.nodes()
	c := env.client()
	token := csrfOf(t, env.signIn(c, user, "correct horse"))

	on(0)
	if resp, _ := env.createApp(c, token, "phone", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create on A: %d", resp.StatusCode)
	}
	on(1)
	_, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	m := appSecretRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "phone") {
		t.Fatalf("B does not show the app password made on A:\n%s", page)
	}
	for n := range 2 {
		on(n)
		if _, again := do(t, c, "GET", env.srv.URL+"/settings", nil, nil); strings.Contains(again, m[1]) || appSecretRE.MatchString(again) {
			t.Fatalf("node %d shows the app password a second time", n)
		}
	}

	on(0)
	p := env.twoStep(c, token, "start", "")
	on(1)
	_, page = do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil)
	if p.secret == "" || parseTwoStep(page).secret != p.secret {
		t.Fatalf("B shows setup %q, A started %q", parseTwoStep(page).secret, p.secret)
	}
	wrong := wrongCodes(t, p.secret, 2)
	on(0)
	if q := env.twoStep(c, token, "confirm", wrong[0]); !strings.Contains(q.err, "Tries left: 4") {
		t.Fatalf("wrong code on A: %q", q.err)
	}
	on(1)
	if q := env.twoStep(c, token, "confirm", wrong[1]); !strings.Contains(q.err, "Tries left: 3") || q.secret != p.secret {
		t.Fatalf("wrong code on B after one on A: %q, secret %q", q.err, q.secret)
	}
	if q := env.twoStep(c, token, "confirm", totpCode(t, p.secret, 0)); !strings.Contains(q.notice, "now on") || !env.twoStepOn(t, user) {
		t.Fatalf("confirm on B: notice %q", q.notice)
	}
	on(0)
	if _, page := do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil); parseTwoStep(page).secret != "" || !strings.Contains(page, `id="off-code"`) {
		t.Fatal("A still shows the setup B confirmed")
	}
}

// TestScratch_sealed: what the store holds of a new app password does not
// show it, and opens only with the session's own id, generation and kind:
// a copy of the database, which holds the web secret too, is not enough.
func TestScratch_sealed(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	token := csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse"))
	if resp, _ := env.createApp(c, token, "phone", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	apps, err := env.st.ListAppPasswords(context.Background(), "taro@skydesk.jp")
	if err != nil || len(apps) != 1 {
		t.Fatalf("app passwords: %v, %v", apps, err)
	}
	s := env.sessionOf(c)
	sc, err := env.st.GetScratch(context.Background(), s.key, scratchFlash, env.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sc.Sealed, []byte("phone")) || bytes.Contains(sc.Sealed, []byte("newSecret")) {
		t.Fatalf("the stored flash is not sealed: %q", sc.Sealed)
	}
	var w flashWire
	if err := env.web.sessions.open(s, scratchFlash, sc.Sealed, &w); err != nil || w.NewApp != "phone" || len(w.NewSecret) != 19 {
		t.Fatalf("opening with the session: %+v, %v", w, err)
	}
	if bytes.Contains(sc.Sealed, []byte(w.NewSecret)) || bytes.Contains(sc.Sealed, []byte(strings.ReplaceAll(w.NewSecret, " ", ""))) {
		t.Fatal("the app password is in the store in clear")
	}
	for name, other := range map[string]signedIn{
		"another id, the same key hash": {id: randomToken(), key: s.key, gen: s.gen},
		"an older generation":           {id: s.id, key: s.key, gen: s.gen - 1},
	} {
		if err := env.web.sessions.open(other, scratchFlash, sc.Sealed, &w); !errors.Is(err, errScratchOpen) {
			t.Errorf("opened with %s: %v", name, err)
		}
	}
	if err := env.web.sessions.open(s, scratchEnrol, sc.Sealed, &w); !errors.Is(err, errScratchOpen) {
		t.Errorf("opened as another kind: %v", err)
	}
	// A flash not viewed within flashLifetime is gone.
	env.clock.add(flashLifetime)
	if _, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil); appSecretRE.MatchString(page) {
		t.Fatal("the app password shown after its flash expired")
	}
	if _, err := env.st.GetScratch(context.Background(), s.key, scratchFlash, env.clock.now().Add(-time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the expired flash outlived its view: %v", err)
	}
}

// TestScratch_enrolBoundToGeneration: a pending two-step secret is bound
// to the credential generation it was started under: a credential change
// by the same session (an app password made meanwhile) drops it, and the
// session's sign-out deletes what it held.
func TestScratch_enrolBoundToGeneration(t *testing.T) {
	env, c, token, secret := pendingSetup(t)
	if secret == "" {
		t.Fatal("no setup")
	}
	if resp, _ := env.createApp(c, token, "phone", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	_, page := do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil)
	if !appSecretRE.MatchString(page) || parseTwoStep(page).secret != "" || !strings.Contains(page, `id="twostep-start"`) {
		t.Fatal("the setup outlived the session's credential change, or the app password is not shown")
	}
	if p := env.twoStep(c, token, "confirm", totpCode(t, secret, 0)); !strings.Contains(p.err, "expired or was not started") || env.twoStepOn(t, "taro@skydesk.jp") {
		t.Fatalf("a setup of the old generation confirmed: %q", p.err)
	}

	p := env.twoStep(c, token, "start", "")
	s := env.sessionOf(c)
	if resp, _ := do(t, c, "POST", env.srv.URL+"/settings/signout", url.Values{"csrf": {token}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if p.secret == "" {
		t.Fatal("no second setup")
	}
	if _, err := env.st.GetScratch(context.Background(), s.key, scratchEnrol, env.clock.now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the setup outlived the sign-out: %v", err)
	}
}

// BenchmarkScratch_flash measures what a form and the view it redirects
// to pay for the flash on SQLite: seal and store it (an upsert), then
// take and open it (a DELETE … RETURNING).
func BenchmarkScratch_flash(b *testing.B) {
	env := newWebEnv(b, store.ThrottlePolicy{})
	acc, err := env.st.AddAccount(b.Context(), store.NewAccount{Address: "taro@skydesk.jp", Password: "correct horse"})
	if err != nil {
		b.Fatal(err)
	}
	id, err := env.web.sessions.create(b.Context(), acc, 0)
	if err != nil {
		b.Fatal(err)
	}
	s, ok, err := env.web.sessions.get(b.Context(), id)
	if !ok || err != nil {
		b.Fatal(ok, err)
	}
	f := &flash{newApp: "phone", newSecret: "abcd efgh ijkl mnop"}
	b.ReportAllocs()
	for b.Loop() {
		if err := env.web.sessions.setFlash(b.Context(), s, f); err != nil {
			b.Fatal(err)
		}
		if got, err := env.web.sessions.takeFlash(b.Context(), s); err != nil || got == nil || got.newSecret != f.newSecret {
			b.Fatal(got, err)
		}
	}
}

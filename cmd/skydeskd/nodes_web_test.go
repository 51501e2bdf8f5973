package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

var (
	newAppSecretRE  = regexp.MustCompile(`id="secret">([a-z ]{19})<`)
	totpSecretRE    = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`)
	twoStepNoticeRE = regexp.MustCompile(`id="twostep-notice"`)
)

// Issue 14, the settings screen behind a round-robin balancer: two real
// skydeskd processes on one PostgreSQL database, one browser whose every
// request after a form lands on the other node. An app password created
// on A is shown by B on the view the form redirects to, once: neither
// node shows it again, and it logs in to B's POP3S. A two-step setup
// started on A is shown by B, a wrong code posted to B is counted where
// A sees it, and B confirms the setup with a right code; A then shows
// two-step on. Nothing of it depends on either node's memory (webui
// scratch.go: the store keeps it, sealed).
func TestNodes_webScratchWithoutStickyRouting(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dbURL := pgtest.URL(t)
	var a, b node
	a.dir, a.file = writeNodeConfig(t, dbURL)
	b.dir, b.file = writeNodeConfig(t, dbURL)
	const user, pass = "saburo@skydesk.jp", "saburo-password-1"
	nodeCLI(t, bin, a, pass+"\n", "user", "add", user, "--password-stdin")
	nodeCLI(t, bin, b, "", "pop", "set", user, "--access", "all")
	a.proc = startProc(t, bin, nodeListeners, "serve", "--config", a.file)
	b.proc = startProc(t, bin, nodeListeners, "serve", "--config", b.file)
	tc := trustNodes(t, a, b)

	// One browser (cookies are per host, not port) meeting A and B.
	jar, _ := cookiejar.New(nil)
	onA := &webBrowserless{t: t, w: pagesOf(a, tc)}
	onB := &webBrowserless{t: t, w: pagesOf(b, tc)}
	onA.c, onB.c = onA.w.client, onB.w.client
	onA.c.Jar, onB.c.Jar = jar, jar
	post := func(on *webBrowserless, path, csrf string, form url.Values) {
		t.Helper()
		form.Set("csrf", csrf)
		if code, page := on.do("POST", path, form); code != http.StatusSeeOther {
			t.Fatalf("POST %s: %d\n%s", path, code, page)
		}
	}
	onA.do("GET", "/settings", nil)
	post(onA, "/settings/signin", onA.csr, url.Values{"address": {user}, "password": {pass}})

	t.Run("a new app password made on A is shown by B, once", func(t *testing.T) {
		onA.do("GET", "/settings?lang=en", nil)
		post(onA, "/settings/app-passwords", onA.csr, url.Values{"name": {"phone"}})
		_, page := onB.do("GET", "/settings?lang=en", nil)
		m := newAppSecretRE.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("node B's view after A's form shows no new app password:\n%s", page)
		}
		for name, on := range map[string]*webBrowserless{"B": onB, "A": onA} {
			if _, again := on.do("GET", "/settings?lang=en", nil); newAppSecretRE.MatchString(again) || strings.Contains(again, m[1]) {
				t.Fatalf("node %s shows the new app password a second time", name)
			}
		}
		dialPOP3S(t, b.addrs["pop3s"], tc, user, m[1]).quit()
	})

	t.Run("a two-step setup started on A is confirmed on B", func(t *testing.T) {
		post(onA, "/settings/two-step/start", onA.csr, url.Values{})
		_, page := onB.do("GET", "/settings?lang=en", nil)
		m := totpSecretRE.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("node B does not show the setup A started:\n%s", page)
		}
		app := &authenticatorApp{t: t, secret: strings.ReplaceAll(m[1], " ", ""), last: -1}
		post(onB, "/settings/two-step/confirm", onB.csr, url.Values{"code": {"000000x"}})
		if _, page := onA.do("GET", "/settings?lang=en", nil); !strings.Contains(page, "Tries left: 4") || !strings.Contains(page, m[1]) {
			t.Fatalf("node A after a wrong code on B: want the same setup with 4 tries left:\n%s", page)
		}
		post(onB, "/settings/two-step/confirm", onA.csr, url.Values{"code": {app.code()}})
		_, page = onA.do("GET", "/settings?lang=en", nil)
		if !twoStepNoticeRE.MatchString(page) || !strings.Contains(page, "now on") || !strings.Contains(page, `id="off-code"`) ||
			totpSecretRE.MatchString(page) {
			t.Fatalf("node A after B confirmed the setup: want two-step on, no setup shown:\n%s", page)
		}
		if l := popRefused(t, a.addrs["pop3s"], tc, user, pass); !strings.Contains(l, "app-specific password") {
			t.Errorf("the account password on A's POP3S under two-step: %q", l)
		}
	})
}

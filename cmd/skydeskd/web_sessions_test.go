package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/store/storetest"
)

// webBrowserless is a cookie-keeping HTTPS client of the running service
// (no JavaScript is needed: the pages have none).
type webBrowserless struct {
	t   *testing.T
	w   *webApp
	c   *http.Client
	csr string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *webBrowserless) do(method, path string, form url.Values) (int, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.w.webURL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		b.t.Fatal(err)
	}
	if m := csrfField.FindSubmatch(page); m != nil {
		b.csr = string(m[1])
	}
	return resp.StatusCode, string(page)
}

func (w *webApp) signedInClient(t *testing.T, address, password string) *webBrowserless {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := *w.client
	c.Jar = jar
	b := &webBrowserless{t: t, w: w, c: &c}
	b.do("GET", "/settings", nil)
	if code, page := b.do("POST", "/settings/signin", url.Values{"csrf": {b.csr}, "address": {address}, "password": {password}}); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", code, page)
	}
	if _, page := b.do("GET", "/settings", nil); !strings.Contains(page, `id="account">`+address) {
		t.Fatalf("not signed in:\n%s", page)
	}
	return b
}

// TestWeb_passwdEndsSessions is issue 13 §3 through the real admin
// command: `skydeskd user passwd` run against the service's data
// directory (another process's view of the same database) ends the
// settings session signed in with the old password, and with
// --revoke-app-passwords the app password it made stops working for POP.
func TestWeb_passwdEndsSessions(t *testing.T) {
	w := startWebApp(t)
	storetest.AddUser(t, w.store, "taro@skydesk.jp", "old password")
	b := w.signedInClient(t, "taro@skydesk.jp", "old password")
	if code, page := b.do("POST", "/settings/app-passwords", url.Values{"csrf": {b.csr}, "name": {"phone"}}); code != http.StatusSeeOther {
		t.Fatalf("create app password: %d\n%s", code, page)
	}
	_, page := b.do("GET", "/settings", nil)
	m := regexp.MustCompile(`id="secret">([a-z ]{19})<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no app password shown:\n%s", page)
	}
	token := b.csr
	w.popSubjects(t, "taro@skydesk.jp", m[1], false) // it works, and is in the login cache

	out := mustCLI(t, w.cfg.DataDir, "new password\n", "user", "passwd", "taro@skydesk.jp", "--password-stdin", "--revoke-app-passwords")
	if want := "password set for taro@skydesk.jp; 1 settings sessions ended; 1 app passwords revoked\n"; out != want {
		t.Errorf("user passwd printed %q, want %q", out, want)
	}
	if _, page := b.do("GET", "/settings", nil); strings.Contains(page, `id="account"`) {
		t.Fatal("settings session outlived `skydeskd user passwd`")
	}
	if code, _ := b.do("POST", "/settings/app-passwords", url.Values{"csrf": {token}, "name": {"evil"}}); code != http.StatusUnauthorized {
		t.Errorf("the ended session posted a form: %d", code)
	}
	w.popLoginFails(t, "taro@skydesk.jp", m[1])
	w.signedInClient(t, "taro@skydesk.jp", "new password")
}

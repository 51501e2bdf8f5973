package webui

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// recordingStore wraps the real store and records every POP update, so a
// test can tell "access not sent" from "access sent unchanged".
type recordingStore struct {
	store.Driver
	mu      sync.Mutex
	updates []store.POPUpdate
}

func (r *recordingStore) SetPOP(ctx context.Context, address string, u store.POPUpdate) (store.POPSettings, error) {
	r.mu.Lock()
	r.updates = append(r.updates, u)
	r.mu.Unlock()
	return r.Driver.SetPOP(ctx, address, u)
}

func (r *recordingStore) last(t *testing.T) store.POPUpdate {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.updates) == 0 {
		t.Fatal("no POP update was sent")
	}
	return r.updates[len(r.updates)-1]
}

type webEnv struct {
	t       testing.TB
	st      *recordingStore
	srv     *httptest.Server
	plain   *httptest.Server
	web     *Handler
	clock   *fakeClock
	domains profiles.DomainSet
	// dir is the store's data directory, opts the handler's options and
	// serving the handler the servers use: restart replaces both store
	// and handler behind the same servers.
	dir     string
	opts    Options
	serving atomic.Pointer[Handler]
}

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

const testWebURL = "https://setup.example.test"

func newWebEnv(t testing.TB, policy store.ThrottlePolicy) *webEnv {
	t.Helper()
	dir := t.TempDir()
	s := storetest.NewDriverIn(t, dir)
	auth, err := store.NewAuthenticator(s, store.AuthOptions{Policy: policy, HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	domains := profiles.DomainSet{storetest.HostedDomain: true}
	res := profiles.NewResolver(profiles.Settings{
		Provider:       profiles.Provider{Name: "SkyDesk Mail"},
		PersonalDomain: storetest.PersonalDomain, PersonalPOPHost: "pop.skydesk.jp", OrganizationPOPHost: "poppro.skydesk.jp",
		POPPort: 995, SMTPHost: "smtp.skydesk.jp", SMTPImplicitTLSPort: 465, SMTPSTARTTLSPort: 587,
	}, domains)
	clock := &fakeClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	rs := &recordingStore{Driver: s}
	opts := Options{Resolver: res, Store: rs, Auth: auth, Provider: "SkyDesk Mail",
		WebURL: testWebURL, Secret: []byte(strings.Repeat("k", 32)), Log: slog.New(slog.DiscardHandler), Now: clock.now}
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	env := &webEnv{t: t, st: rs, web: w, clock: clock, domains: domains, dir: dir, opts: opts}
	env.serving.Store(w)
	// As cmd/skydeskd composes it: the pages, and a 404 for what they do
	// not serve (the autoconfig service there).
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := env.serving.Load()
		if !w.Serves(r) {
			http.NotFound(rw, r)
			return
		}
		w.ServeHTTP(rw, r)
	})
	env.srv, env.plain = httptest.NewTLSServer(h), httptest.NewServer(h)
	t.Cleanup(env.srv.Close)
	t.Cleanup(env.plain.Close)
	return env
}

// restart closes the store and opens it again from its directory, with a
// new Handler (and Authenticator) on it, as a restarted process would.
func (env *webEnv) restart() {
	t := env.t
	t.Helper()
	if err := env.st.Close(); err != nil {
		t.Fatal(err)
	}
	s := storetest.NewDriverIn(t, env.dir)
	auth, err := store.NewAuthenticator(s, store.AuthOptions{HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	env.st = &recordingStore{Driver: s}
	env.opts.Store, env.opts.Auth = env.st, auth
	w, err := New(env.opts)
	if err != nil {
		t.Fatal(err)
	}
	env.web = w
	env.serving.Store(w)
}

// client is a browser-like client: a cookie jar, no automatic redirects.
func (env *webEnv) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // test server
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t testing.TB, c *http.Client, method, target string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

// signIn signs c in and returns the settings page.
func (env *webEnv) signIn(c *http.Client, address, password string) string {
	t := env.t
	t.Helper()
	_, page := do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	resp, body := do(t, c, "POST", env.srv.URL+"/settings/signin",
		url.Values{"csrf": {csrfOf(t, page)}, "address": {address}, "password": {password}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d:\n%s", resp.StatusCode, body)
	}
	_, page = do(t, c, "GET", env.srv.URL+"/settings", nil, nil)
	if !strings.Contains(page, `id="account">`+address) {
		t.Fatalf("not signed in:\n%s", page)
	}
	return page
}

func TestWeb_Setup(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	for _, tc := range []struct {
		name, email string
		want        []string
		notWant     []string
	}{
		{"personal", "taro@skydesk.jp", []string{`data-field="pop-host">pop.skydesk.jp<`, `data-field="smtp-host">smtp.skydesk.jp<`,
			`href="/apple/mobileconfig?email=taro%40skydesk.jp"`, `<svg class="qr"`, "465 (SSL/TLS)", "587 (STARTTLS)"}, nil},
		{"organization", "Hanako@Example.CO.JP", []string{`data-field="pop-host">poppro.skydesk.jp<`,
			`aria-label="QR code that opens the profile download: ` + testWebURL + `/apple/mobileconfig?email=Hanako%40example.co.jp"`}, nil},
		{"unknown", "someone@gmail.com", []string{"gmail.com does not use SkyDesk Mail"}, []string{"pop.skydesk.jp", "<svg"}},
		{"plus unencoded", "taro+news@skydesk.jp", []string{`href="/apple/mobileconfig?email=taro%2Bnews%40skydesk.jp"`}, nil},
		{"invalid", "not-an-address", []string{"does not look like an email address"}, []string{"<svg"}},
		{"markup", `"><script>x</script>@skydesk.jp`, []string{"does not look like an email address", "&lt;script&gt;"}, []string{"<script>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.QueryEscape(tc.email)
			if strings.HasPrefix(tc.name, "plus") {
				q = tc.email // as a hand-written link: '+' decodes to a space
			}
			resp, body := do(t, c, "GET", env.srv.URL+"/?email="+q, nil, map[string]string{"Accept-Language": "en"})
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=UTF-8" {
				t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"} {
				if resp.Header.Get(h) == "" {
					t.Errorf("header %s missing", h)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %q", w)
				}
			}
		})
	}
}

// TestWeb_Setup_noEnumeration: an address with a mailbox and one without
// get the same page, byte for byte, once the local part is swapped.
func TestWeb_Setup_noEnumeration(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "kenta@skydesk.jp", "correct horse")
	c := env.client()
	qr := regexp.MustCompile(`<svg class="qr".*?</svg>`)
	page := func(local string) string {
		_, b := do(t, c, "GET", env.srv.URL+"/?email="+local+"%40skydesk.jp", nil, nil)
		return strings.ReplaceAll(qr.ReplaceAllString(b, ""), local, "LOCAL")
	}
	if a, b := page("kenta"), page("jiro"); a != b {
		t.Fatal("pages differ between an existing and a missing mailbox")
	}
}

func TestWeb_Lang(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	c := env.client()
	for _, tc := range []struct{ accept, query, want string }{
		{"ja,en;q=0.8", "", `<html lang="ja">`},
		{"en-US,en;q=0.9,ja;q=0.5", "", `<html lang="en">`},
		{"", "", `<html lang="ja">`},
		{"fr", "", `<html lang="en">`},
		{"ja", "?lang=en", `<html lang="en">`},
	} {
		_, body := do(t, c, "GET", env.srv.URL+"/"+tc.query, nil, map[string]string{"Accept-Language": tc.accept})
		if !strings.Contains(body, tc.want) {
			t.Errorf("Accept-Language %q %s: want %s", tc.accept, tc.query, tc.want)
		}
		if tc.query != "" {
			// The switch is remembered.
			_, body = do(t, c, "GET", env.srv.URL+"/", nil, map[string]string{"Accept-Language": tc.accept})
			if !strings.Contains(body, tc.want) {
				t.Errorf("language switch not remembered")
			}
		}
	}
}

func TestWeb_PlainHTTP(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	c := env.client()
	resp, _ := do(t, c, "GET", env.plain.URL+"/?email=taro%40skydesk.jp", nil, nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != testWebURL+"/?email=taro%40skydesk.jp" {
		t.Errorf("GET /: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = do(t, c, "POST", env.plain.URL+"/settings/signin", url.Values{"address": {"a@skydesk.jp"}}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST over plain HTTP: %d, want 403", resp.StatusCode)
	}
}

func TestWeb_Assets(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	c := env.client()
	resp, body := do(t, c, "GET", env.srv.URL+"/assets/site.css", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, ":root") {
		t.Fatalf("site.css: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, _ = do(t, c, "GET", env.srv.URL+"/assets/site.css", nil, map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: %d", resp.StatusCode)
	}
	for _, p := range []string{"/assets/..%2fweb.go", "/assets/nope.css", "/assets/web.go"} {
		if resp, _ := do(t, c, "GET", env.srv.URL+p, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

// TestWeb_Setup_domainChange: the page cache never hides a domain added
// or removed after a page was shown.
func TestWeb_Setup_domainChange(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	c := env.client()
	get := func() string {
		_, b := do(t, c, "GET", env.srv.URL+"/?email=ken%40newco.example&lang=en", nil, nil)
		return b
	}
	if b := get(); !strings.Contains(b, "newco.example does not use") {
		t.Fatal("unknown domain not reported")
	}
	env.domains["newco.example"] = true
	if b := get(); !strings.Contains(b, `data-field="pop-host">poppro.skydesk.jp<`) {
		t.Fatal("a domain added after the first lookup still shows as unknown")
	}
	delete(env.domains, "newco.example")
	if b := get(); !strings.Contains(b, "newco.example does not use") {
		t.Fatal("a removed domain still shows settings")
	}
}

func TestWeb_NoIndex(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	c := env.client()
	for _, tc := range []struct {
		path string
		want bool
	}{{"/", false}, {"/?lang=en", false}, {"/?email=taro%40skydesk.jp", true}, {"/settings", true}} {
		_, body := do(t, c, "GET", env.srv.URL+tc.path, nil, nil)
		if got := strings.Contains(body, `<meta name="robots" content="noindex">`); got != tc.want {
			t.Errorf("%s: noindex %v, want %v", tc.path, got, tc.want)
		}
	}
}

// TestWeb_Offline: pages load nothing from another origin (no CDN): every
// src and href is a path on this server (or the configured help link).
func TestWeb_Offline(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	c := env.client()
	ref := regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	for _, p := range []string{"/?email=taro%40skydesk.jp", "/settings", "/?email=x%40gmail.com"} {
		_, body := do(t, c, "GET", env.srv.URL+p, nil, nil)
		for _, m := range ref.FindAllStringSubmatch(body, -1) {
			if !strings.HasPrefix(m[1], "#") && (!strings.HasPrefix(m[1], "/") || strings.HasPrefix(m[1], "//")) {
				t.Errorf("%s refers to %q", p, m[1])
			}
		}
	}
}

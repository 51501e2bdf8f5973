package webui

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"

	"github.com/skydesk/skydeskd/store"
)

// TestRoutes: what the pages answer besides pages, as they always have
// (echo served them before net/http's ServeMux did): 405 with Allow, 204
// to OPTIONS, the GET of a form target, plain HTTP redirected or refused.
func TestRoutes(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	for _, tc := range []struct {
		tls                   bool
		method, target        string
		status                int
		allow, location, body string
	}{
		{true, "OPTIONS", "/settings", 204, allowGet, "", ""},
		{true, "OPTIONS", "/settings/pop", 204, allowForm, "", ""},
		{true, "PUT", "/", 405, allowGet, "", "method not allowed\n"},
		{true, "DELETE", "/assets/site.css", 405, allowGet, "", "method not allowed\n"},
		{true, "PUT", "/settings/signin", 405, allowForm, "", "method not allowed\n"},
		{true, "HEAD", "/settings/two-step/off", 303, "", "/settings", ""},
		{true, "GET", "/settings/app-passwords/revoke", 303, "", "/settings", ""},
		{true, "GET", "/assets/a/b", 404, "", "", "not found\n"},
		{false, "GET", "/settings/nope?x=1", 301, "", testWebURL + "/settings/nope?x=1", ""},
		{false, "OPTIONS", "/assets/site.css", 403, "", "", "Use HTTPS: " + testWebURL + "/\n"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if !env.web.Serves(r) {
			t.Errorf("%s %s: not served by the pages", tc.method, tc.target)
			continue
		}
		rec := httptest.NewRecorder()
		env.web.ServeHTTP(rec, r)
		h := rec.Header()
		if rec.Code != tc.status || h.Get("Allow") != tc.allow || h.Get("Location") != tc.location || rec.Body.String() != tc.body {
			t.Errorf("%s %s (tls %v): %d Allow %q Location %q body %q", tc.method, tc.target, tc.tls, rec.Code, h.Get("Allow"), h.Get("Location"), rec.Body)
		}
		if tc.status == 405 && (h.Get("Content-Type") != ctypeText || h.Get("Cache-Control") != "no-store") {
			t.Errorf("%s %s: headers %v", tc.method, tc.target, h)
		}
	}
}

// TestServes: which requests are the pages', matched on the path as sent.
func TestServes(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	for _, tc := range []struct {
		target     string
		tls, plain bool
	}{
		{"/", true, true},
		{"/?email=a%40b.jp", true, true},
		{"/settings", true, true},
		{"/settings/pop", true, true},
		{"/settings/", false, true},
		{"/settings/nope", false, true},
		{"/assets/site.css", true, true},
		{"/assets/a/b", true, true},
		{"/assets/", false, true},
		{"/assets", false, false},
		{"/settin%67s", false, false},
		{"/Settings", false, false},
		{"/index.html", false, false},
		{"/mail/config-v1.1.xml", false, false},
		{"/apple/mobileconfig?email=a%40b.jp", false, false},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		if got := env.web.Serves(r); got != tc.plain {
			t.Errorf("plain %s: %v, want %v", tc.target, got, tc.plain)
		}
		r.TLS = &tls.ConnectionState{}
		if got := env.web.Serves(r); got != tc.tls {
			t.Errorf("TLS %s: %v, want %v", tc.target, got, tc.tls)
		}
	}
}

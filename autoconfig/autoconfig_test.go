package autoconfig

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/templates"
)

// testSettings are the shipped defaults (config.Default).
var testSettings = profiles.Settings{
	Provider: profiles.Provider{
		ID: "skydesk.jp", Name: "SkyDesk Mail", ShortName: "SkyDesk",
		HelpURL:          "https://www.skydesk.jp/help/mail/client-settings",
		WebURL:           "https://autoconfig.skydesk.jp",
		AutoconfigHost:   "autoconfig.skydesk.jp",
		AutodiscoverHost: "autodiscover.skydesk.jp",
	},
	PersonalDomain:      "skydesk.jp",
	PersonalPOPHost:     "pop.skydesk.jp",
	OrganizationPOPHost: "poppro.skydesk.jp",
	POPPort:             995,
	SMTPHost:            "smtp.skydesk.jp",
	SMTPImplicitTLSPort: 465,
	SMTPSTARTTLSPort:    587,
}

// fixedNow makes Autodiscover error documents reproducible.
func fixedNow() time.Time { return time.Date(2026, 4, 1, 21, 25, 4, 889708300, time.UTC) }

func testResolver(t testing.TB) *profiles.Resolver {
	t.Helper()
	idn, err := profiles.ParseDomain("例え.jp")
	if err != nil {
		t.Fatal(err)
	}
	return profiles.NewResolver(testSettings, profiles.DomainSet{"example.co.jp": true, idn: true})
}

type testServer struct {
	*Server
	reg *recorder
	// plain and secure are Handler() as each listener calls it.
	plain, secure http.Handler
}

func newTestServer(t testing.TB, src profiles.Source, signer *templates.Signer) *testServer {
	t.Helper()
	if src == nil {
		src = testResolver(t)
	}
	reg := &recorder{}
	s, err := New(Options{Source: src, Signer: signer, Observer: reg, Now: fixedNow,
		RedirectBase: "https://autodiscover.skydesk.jp", ServerName: "autodiscover.skydesk.jp"})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, reg: reg, plain: s.Handler(), secure: overTLS(s.Handler())}
}

// overTLS hands h its requests as the HTTPS listener does: with
// Request.TLS set (httptest.NewRequest leaves it nil for a path target).
// The tests' requests are their own, so it is set in place: no copy
// that the benchmarks would count.
func overTLS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			r.TLS = testTLSState
		}
		h.ServeHTTP(w, r)
	})
}

var testTLSState = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13}

// do sends one request to a handler and returns the recorded response.
func serveReq(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.Host = "autoconfig.skydesk.jp"
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// dump is the golden form of a response: status, the headers a client
// acts on, a blank line, the body.
func dump(rec *httptest.ResponseRecorder) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP %d\n", rec.Code)
	for _, h := range []string{"Content-Type", "Content-Disposition", "Location", "Allow", "X-Content-Type-Options", "Cache-Control"} {
		if v := rec.Header().Get(h); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
		}
	}
	b.WriteString("\n")
	b.Write(rec.Body.Bytes())
	return b.Bytes()
}

// recorder is a test Observer counting each observation by its label
// values, as cmd/skydeskd's Prometheus adapter does (and as cheaply: the
// benchmarks run with it).
type recorder struct {
	reqs   [NumFormats][NumOutcomes][NumClients]atomic.Int64
	cache  [NumFormats][2]atomic.Int64
	signed atomic.Int64
}

func (r *recorder) Request(f Format, o Outcome, c Client, _ time.Duration) { r.reqs[f][o][c].Add(1) }

func (r *recorder) Cache(f Format, hit bool) {
	i := 0
	if hit {
		i = 1
	}
	r.cache[f][i].Add(1)
}

func (r *recorder) Signed() { r.signed.Add(1) }

// counter sums the observations of the metric name (as cmd/skydeskd
// exports it) whose labels match the given ones.
func counter(t testing.TB, r *recorder, name string, labels map[string]string) float64 {
	t.Helper()
	match := func(k, v string) bool { w, ok := labels[k]; return !ok || w == v }
	n := int64(0)
	switch name {
	case "skydeskd_autoconfig_requests_total":
		for f := range Format(NumFormats) {
			for o := range Outcome(NumOutcomes) {
				for c := range Client(NumClients) {
					if match("format", f.String()) && match("outcome", o.String()) && match("client", c.String()) {
						n += r.reqs[f][o][c].Load()
					}
				}
			}
		}
	case "skydeskd_autoconfig_cache_total":
		for f := range Format(NumFormats) {
			for i, result := range []string{"miss", "hit"} {
				if match("format", f.String()) && match("result", result) {
					n += r.cache[f][i].Load()
				}
			}
		}
	case "skydeskd_autoconfig_signatures_total":
		n = r.signed.Load()
	default:
		t.Fatalf("no metric %s", name)
	}
	return float64(n)
}

// fakeSource fails for one domain, to test internal errors.
type fakeSource struct{ profiles.Source }

func (f fakeSource) Lookup(ctx context.Context, d string) (profiles.Profile, error) {
	if d == "panic.example" {
		panic("secret detail")
	}
	if d == "broken.example" {
		return profiles.Profile{}, fmt.Errorf("store: database is locked (/var/lib/skydeskd/skydeskd.db)")
	}
	return f.Source.Lookup(ctx, d)
}

package autoconfig

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"howett.net/plist"

	"github.com/skydesk/skydeskd/internal/httpfront"
	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store/storetest"
	"github.com/skydesk/skydeskd/templates"
)

func signerOf(t testing.TB) (*templates.Signer, string) {
	t.Helper()
	c := storetest.Certificate(t)
	return &templates.Signer{Cert: c.Leaf, Chain: c.Chain, Key: c.Key}, c.CertFile
}

// TestMobileConfig_signedCachedVerified: the served profile is CMS
// SignedData that `openssl cms -verify` accepts against the service
// certificate; the content is the unsigned plist; a repeat (in any letter
// case) is served from the cache without a new signature, and a new
// certificate signs anew.
func TestMobileConfig_signedCachedVerified(t *testing.T) {
	openssl := storetest.RequireTool(t, "openssl")
	signer, certFile := signerOf(t)
	ts := newTestServer(t, nil, signer)
	rec := serveReq(ts.secure, "GET", "/apple/mobileconfig?email=hanako%40example.co.jp", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != templates.MobileConfigContentType {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	first := rec.Body.Bytes()
	if bytes.HasPrefix(first, []byte("<?xml")) {
		t.Fatal("profile served unsigned")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "p.mobileconfig"), filepath.Join(dir, "content.plist")
	if err := os.WriteFile(in, first, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(openssl, "cms", "-verify", "-inform", "DER", "-in", in, "-CAfile", certFile,
		"-purpose", "any", "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -verify: %v\n%s", err, msg)
	}
	content, _ := os.ReadFile(out)
	p, a := resolveT(t, "hanako@example.co.jp")
	want, err := templates.MobileConfig(p, a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(content, want) {
		t.Errorf("signed content differs from the unsigned profile")
	}
	var doc map[string]any
	if _, err := plist.Unmarshal(content, &doc); err != nil || doc["PayloadType"] != "Configuration" {
		t.Errorf("content is not a profile plist: %v", err)
	}
	if n := counter(t, ts.reg, "skydeskd_autoconfig_signatures_total", nil); n != 1 {
		t.Fatalf("signatures = %v after one request", n)
	}
	again := serveReq(ts.secure, "GET", "/apple/mobileconfig?email=HANAKO%40Example.CO.JP", "")
	if !bytes.Equal(again.Body.Bytes(), first) {
		t.Errorf("repeat (upper case) was not served from the cache")
	}
	if n := counter(t, ts.reg, "skydeskd_autoconfig_signatures_total", nil); n != 1 {
		t.Errorf("signatures = %v after a repeat, want 1", n)
	}
	other, _ := signerOf(t)
	ts.SetSigner(other)
	renewed := serveReq(ts.secure, "GET", "/apple/mobileconfig?email=hanako%40example.co.jp", "")
	if bytes.Equal(renewed.Body.Bytes(), first) || counter(t, ts.reg, "skydeskd_autoconfig_signatures_total", nil) != 2 {
		t.Errorf("a new certificate did not sign anew")
	}
}

func resolveT(t testing.TB, addr string) (profiles.Profile, profiles.Address) {
	t.Helper()
	a, p, err := testResolver(t).Resolve(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return p, a.Fold()
}

// TestNoMailboxEnumeration runs against the real store: an address with
// a mailbox and one without, in the same hosted domain, get the same
// status, headers and document (after substituting the address) in
// every format; an unknown domain gets the same answer whatever the
// local part.
func TestNoMailboxEnumeration(t *testing.T) {
	st := storetest.NewDriver(t)
	storetest.AddUser(t, st, "taro@example.co.jp", "correct horse battery staple")
	ts := newTestServer(t, profiles.NewResolver(testSettings, st), nil)
	targets := []struct{ method, target, body string }{
		{"GET", "/mail/config-v1.1.xml?emailaddress=%s%40example.co.jp", ""},
		{"POST", "/autodiscover/autodiscover.xml", pox("%s@example.co.jp")},
		{"GET", "/autodiscover/autodiscover.json/v1.0/%s@example.co.jp?Protocol=AutodiscoverV1", ""},
		{"GET", "/apple/mobileconfig?email=%s%40example.co.jp", ""},
	}
	for _, tc := range targets {
		run := func(local string) (int, string, string) {
			rec := serveReq(ts.secure, tc.method, strings.ReplaceAll(tc.target, "%s", local), strings.ReplaceAll(tc.body, "%s", local))
			body := strings.ReplaceAll(rec.Body.String(), local, "LOCAL")
			hdr := strings.ReplaceAll(rec.Header().Get("Content-Disposition"), local, "LOCAL")
			return rec.Code, rec.Header().Get("Content-Type") + hdr, body
		}
		c1, h1, b1 := run("taro")
		c2, h2, b2 := run("nobody")
		if c1 != 200 || c1 != c2 || h1 != h2 {
			t.Errorf("%s: existing %d %q, missing %d %q", tc.target, c1, h1, c2, h2)
		}
		// The Apple identifiers are derived from the address, so they differ by design.
		if !strings.Contains(tc.target, "apple") && b1 != b2 {
			t.Errorf("%s: bodies differ for existing and missing mailboxes", tc.target)
		}
	}
	for _, tc := range targets {
		a := serveReq(ts.secure, tc.method, strings.ReplaceAll(strings.ReplaceAll(tc.target, "example.co.jp", "gmail.com"), "%s", "taro"),
			strings.ReplaceAll(strings.ReplaceAll(tc.body, "example.co.jp", "gmail.com"), "%s", "taro"))
		b := serveReq(ts.secure, tc.method, strings.ReplaceAll(strings.ReplaceAll(tc.target, "example.co.jp", "gmail.com"), "%s", "x"),
			strings.ReplaceAll(strings.ReplaceAll(tc.body, "example.co.jp", "gmail.com"), "%s", "x"))
		if a.Code != b.Code || a.Body.String() != b.Body.String() {
			t.Errorf("%s: unknown-domain answers depend on the local part", tc.target)
		}
	}
}

// TestRealTLS_curl serves both listeners on 127.0.0.1:0 (HTTPS with the
// service certificate) and fetches with curl as a client would: the
// Thunderbird document over HTTPS and plain HTTP, the Autodiscover POST
// in Outlook's casing, the plain-HTTP redirect followed with the POST
// re-sent, and the signed profile, which openssl then verifies.
func TestRealTLS_curl(t *testing.T) {
	curl := storetest.RequireTool(t, "curl")
	openssl := storetest.RequireTool(t, "openssl")
	cert := storetest.Certificate(t)
	signer := &templates.Signer{Cert: cert.Leaf, Chain: cert.Chain, Key: cert.Key}
	s, err := New(Options{Source: testResolver(t), Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	secureHot, plainHot := &countingResponder{Responder: s.Hot()}, &countingResponder{Responder: s.Hot()}
	secureAddr := serveT(t, s.Handler(), secureHot, &tls.Config{Certificates: []tls.Certificate{cert.TLS},
		MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	s.redirectBase = "https://" + secureAddr // as --dev does: the local HTTPS listener
	plainAddr := serveT(t, s.Handler(), plainHot, nil)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-sS", "--max-time", "10", "--cacert", cert.CertFile,
			"--resolve", "autoconfig.skydesk.jp:" + portOf(secureAddr) + ":127.0.0.1"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	https := "https://autoconfig.skydesk.jp:" + portOf(secureAddr)
	tb := run("-i", https+"/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp")
	if !strings.Contains(tb, "200") || !strings.Contains(strings.ToLower(tb), "content-type: text/xml; charset=utf-8") || !strings.Contains(tb, "<hostname>pop.skydesk.jp</hostname>") {
		t.Errorf("thunderbird over TLS:\n%s", tb)
	}
	plainTB := run("http://" + plainAddr + "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=hanako%40example.co.jp")
	if !strings.Contains(plainTB, "<hostname>poppro.skydesk.jp</hostname>") {
		t.Errorf("thunderbird over plain HTTP:\n%s", plainTB)
	}
	ad := run("-H", "Content-Type: text/xml; charset=utf-8", "--data-binary", pox("hanako@example.co.jp"), https+"/Autodiscover/Autodiscover.xml")
	if !strings.Contains(ad, "<LoginName>hanako@example.co.jp</LoginName>") {
		t.Errorf("autodiscover over TLS:\n%s", ad)
	}
	// curl -L re-POSTs on 302 only with --post302, as Thunderbird does.
	redirected := run("-L", "--post302", "--data-binary", pox("hanako@example.co.jp"), "http://"+plainAddr+"/autodiscover/autodiscover.xml")
	if !strings.Contains(redirected, "<Type>POP3</Type>") {
		t.Errorf("plain-HTTP autodiscover redirect:\n%s", redirected)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "skydesk.mobileconfig")
	hdr := run("-D", "-", "-o", file, https+"/apple/mobileconfig?email=hanako%40example.co.jp")
	if !strings.Contains(strings.ToLower(hdr), "content-type: application/x-apple-aspen-config") || !strings.Contains(hdr, `filename="skydesk-hanako_example.co.jp.mobileconfig"`) {
		t.Errorf("apple headers:\n%s", hdr)
	}
	if msg, err := exec.Command(openssl, "cms", "-verify", "-inform", "DER", "-in", file, "-CAfile", cert.CertFile,
		"-purpose", "any", "-out", filepath.Join(dir, "c.plist")).CombinedOutput(); err != nil {
		t.Errorf("downloaded profile does not verify: %v\n%s", err, msg)
	}

	// Repeats on one keep-alive connection: the connection front
	// (httpfront) answers them over HTTP/1.1, net/http over HTTP/2; curl
	// gets the same bytes either way.
	profile, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	apple := https + "/apple/mobileconfig?email=hanako%40example.co.jp"
	for _, proto := range []string{"--http1.1", "--http2"} {
		before := secureHot.n.Load()
		out := run(proto, "-w", "%{http_version} %{num_connects}\n", "-o", file+"1", apple, "-o", file+"2", apple)
		wantVersion, wantFront := "1.1", int64(2)
		if proto == "--http2" {
			wantVersion, wantFront = "2", 0
		}
		if out != wantVersion+" 1\n"+wantVersion+" 0\n" {
			t.Errorf("curl %s: versions and connects %q", proto, out)
		}
		if got := secureHot.n.Load() - before; got != wantFront {
			t.Errorf("curl %s: the front answered %d of 2", proto, got)
		}
		for _, f := range []string{file + "1", file + "2"} {
			if b, err := os.ReadFile(f); err != nil || !bytes.Equal(b, profile) {
				t.Errorf("curl %s: repeat download differs (%v)", proto, err)
			}
		}
	}
	before := plainHot.n.Load()
	tbURL := "http://" + plainAddr + "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp"
	if out := run(tbURL, tbURL, tbURL); strings.Count(out, "<hostname>pop.skydesk.jp</hostname>") != 3 {
		t.Errorf("three documents over plain HTTP keep-alive:\n%s", out)
	}
	// The HTTPS request above cached this document (one cache serves both
	// listeners): all three are the front's.
	if got := plainHot.n.Load() - before; got != 3 {
		t.Errorf("plain HTTP: the front answered %d of 3", got)
	}
}

// serveT serves h behind an httpfront loop with hot, as the service
// does, on 127.0.0.1:0 (with TLS if cfg is set) until the test ends and
// returns the address. Readiness: the listener is bound before Serve
// starts, so connections queue; no sleep is needed.
func serveT(t *testing.T, h http.Handler, hot httpfront.Responder, cfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5e9, TLSConfig: cfg}
	f := httpfront.New(hot, srv, nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Serve(l) }()
	t.Cleanup(func() { _ = f.Close(); <-done })
	return l.Addr().String()
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

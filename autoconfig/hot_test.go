package autoconfig

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/internal/httpfront"
	"github.com/skydesk/skydeskd/store/storetest"
)

// countingResponder counts the answers the front gives itself.
type countingResponder struct {
	httpfront.Responder
	n atomic.Int64
}

func (c *countingResponder) Respond(r *httpfront.Request) (httpfront.Answer, bool) {
	a, ok := c.Responder.Respond(r)
	if ok {
		c.n.Add(1)
	}
	return a, ok
}

// serveFront runs Hot() in an httpfront loop over loopback in front of
// Handler(), as cmd/skydeskd does; cfg non-nil makes it the HTTPS
// listener, and the connection tells both which one they serve.
func serveFront(t *testing.T, ts *testServer, cfg *tls.Config) (string, *countingResponder) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	resp := &countingResponder{Responder: ts.Hot()}
	f := httpfront.New(resp, &http.Server{Handler: ts.Handler(), ReadHeaderTimeout: 5 * time.Second, TLSConfig: cfg}, nil)
	done := make(chan error, 1)
	go func() { done <- f.Serve(l) }()
	t.Cleanup(func() {
		_ = f.Close()
		if err := <-done; !errors.Is(err, httpfront.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String(), resp
}

type wireResponse struct {
	status int
	header http.Header
	body   []byte
}

// roundTrip sends one request on a new connection, over TLS if cfg is
// set.
func roundTrip(t *testing.T, cfg *tls.Config, addr, method, target, host string) wireResponse {
	t.Helper()
	var c net.Conn
	var err error
	if cfg != nil {
		c, err = tls.Dial("tcp", addr, cfg)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, method+" "+target+" HTTP/1.1\r\nHost: "+host+"\r\nUser-Agent: Thunderbird/128.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, target, nil)
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Header.Del("Date")
	return wireResponse{resp.StatusCode, resp.Header, body}
}

// TestHot_sameAsHandler: once an answer is cached, the httpfront loop
// sends it itself, and it is the handler's answer: status, every header
// (Date aside, Content-Length included) and body.
func TestHot_sameAsHandler(t *testing.T) {
	signer, _ := signerOf(t)
	ts := newTestServer(t, nil, signer)
	cert := storetest.Certificate(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	clientTLS := &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "autoconfig.skydesk.jp", NextProtos: []string{"http/1.1"}}
	clientTLS.RootCAs.AddCert(cert.Leaf)
	plainAddr, plainHot := serveFront(t, ts, nil)
	secureAddr, secureHot := serveFront(t, ts, serverTLS)
	for _, tc := range []struct {
		secure       bool
		method       string
		target, host string
		hot          bool // the front answers the repeat itself
	}{
		{true, "GET", "/mail/config-v1.1.xml?emailaddress=hanako%40example.co.jp", "autoconfig.skydesk.jp", true},
		{false, "GET", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", "skydesk.jp", true},
		{false, "GET", "/mail/config-v1.1.xml", "autoconfig.example.co.jp", true},
		{true, "GET", "/mail/config-v1.1.xml?emailaddress=xn--r8jz45g%40example.co.jp", "autoconfig.skydesk.jp", true},
		{true, "GET", "/mail/config-v1.1.xml?emailaddress=taro%40gmail.com", "autoconfig.skydesk.jp", true},
		{true, "HEAD", "/mail/config-v1.1.xml?emailaddress=hanako%40example.co.jp", "autoconfig.skydesk.jp", true},
		{true, "GET", "/apple/mobileconfig?email=hanako%2Bnews%40example.co.jp", "autoconfig.skydesk.jp", true},
		{true, "HEAD", "/apple/mobileconfig?email=hanako%40example.co.jp", "autoconfig.skydesk.jp", true},
		{true, "GET", "/apple/mobileconfig?email=taro%40gmail.com", "autoconfig.skydesk.jp", true},
		{true, "HEAD", "/apple/mobileconfig?email=taro%40gmail.com", "autoconfig.skydesk.jp", true},
		{false, "HEAD", "/mail/config-v1.1.xml?emailaddress=taro%40gmail.com", "autoconfig.skydesk.jp", true},
		// Not the front's: a redirect on plain HTTP, other spellings, errors.
		{false, "GET", "/apple/mobileconfig?email=hanako%40example.co.jp", "autoconfig.skydesk.jp", false},
		{true, "GET", "/Mail/Config-v1.1.xml?emailaddress=hanako%40example.co.jp", "autoconfig.skydesk.jp", false},
		{true, "GET", "/apple/mobileconfig", "autoconfig.skydesk.jp", false},
		{true, "GET", "/mail/config-v1.1.xml?emailaddress=bad", "autoconfig.skydesk.jp", false},
	} {
		addr, hot, h, cfg := secureAddr, secureHot, ts.secure, clientTLS
		if !tc.secure {
			addr, hot, h, cfg = plainAddr, plainHot, ts.plain, nil
		}
		name := tc.method + " " + tc.target
		roundTrip(t, cfg, addr, tc.method, tc.target, tc.host) // fills the cache through the handler
		before := hot.n.Load()
		got := roundTrip(t, cfg, addr, tc.method, tc.target, tc.host)
		if answered := hot.n.Load() - before; answered != map[bool]int64{true: 1, false: 0}[tc.hot] {
			t.Errorf("%s: front answered %d times, want hot=%v", name, answered, tc.hot)
		}
		// The handler alone, through net/http.
		ref := httpOnly(t, h)
		want := roundTrip(t, nil, ref, tc.method, tc.target, tc.host)
		if got.status != want.status || !bytes.Equal(got.body, want.body) {
			t.Errorf("%s: front %d (%d bytes), handler %d (%d bytes)", name, got.status, len(got.body), want.status, len(want.body))
		}
		if !maps.EqualFunc(got.header, want.header, func(a, b []string) bool { return len(a) == len(b) && (len(a) == 0 || a[0] == b[0]) }) {
			t.Errorf("%s: headers differ\nfront   %v\nhandler %v", name, got.header, want.header)
		}
		if tc.hot && got.header.Get("Content-Length") == "" {
			t.Errorf("%s: no Content-Length", name)
		}
	}
}

// httpOnly serves h with a plain net/http server.
func httpOnly(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

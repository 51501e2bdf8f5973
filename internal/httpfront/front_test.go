package httpfront

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// mapResponder answers fixed paths; it counts what it answered.
type mapResponder struct {
	answers map[string]Answer
	hits    atomic.Int64
	block   chan struct{} // if set, Respond waits for it (shutdown tests)
	entered chan struct{}
	panics  bool
}

func (m *mapResponder) Respond(r *Request) (Answer, bool) {
	a, ok := m.answers[r.Path]
	if !ok {
		return Answer{}, false
	}
	if m.panics {
		panic("responder failed")
	}
	if m.block != nil {
		m.entered <- struct{}{}
		<-m.block
	}
	m.hits.Add(1)
	return a, true
}

func testResponder() *mapResponder {
	return &mapResponder{answers: map[string]Answer{
		"/hot": {Status: 200, Header: []byte("Content-Type: text/xml; charset=utf-8\r\n"), Body: []byte("<hot/>\n")},
		"/.well-known/hot": {Status: 200, Header: []byte("Cache-Control: private, no-store\r\nContent-Disposition: attachment; filename=\"a.x\"\r\nContent-Type: application/x\r\nX-Content-Type-Options: nosniff\r\n"),
			Body: bytes.Repeat([]byte("0123456789abcdef"), 300)},
		"/missing": {Status: 404, Header: []byte("Cache-Control: no-store\r\nContent-Type: text/plain; charset=UTF-8\r\n"), Body: []byte("no configuration\n")},
	}}
}

// reference is the handler that answers what the front would, through
// net/http, plus a "cold" route only net/http serves: a plain net/http
// server with it is the model the front must match byte for byte.
func reference(m *mapResponder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := m.answers[r.URL.Path]; ok {
			for _, line := range strings.Split(strings.TrimSuffix(string(a.Header), "\r\n"), "\r\n") {
				k, v, _ := strings.Cut(line, ": ")
				w.Header().Add(k, v)
			}
			// Answers carry their length (net/http would chunk a body
			// over 2 KiB without it).
			w.Header().Set("Content-Length", strconv.Itoa(len(a.Body)))
			w.WriteHeader(a.Status)
			_, _ = w.Write(a.Body)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "cold "+r.Method+" "+r.URL.Path+" "+r.Proto+" tls="+boolStr(r.TLS != nil)+"\n")
	})
}

func boolStr(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func testServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       20 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// startFront serves a Front on loopback; tlsConf non-nil serves TLS.
func startFront(t testing.TB, m Responder, srv *http.Server, tlsConf *tls.Config) (string, *Front) {
	t.Helper()
	l := listen(t)
	addr := l.Addr().String()
	if tlsConf != nil {
		srv.TLSConfig = tlsConf
		l = tls.NewListener(l, tlsConf)
	}
	f := New(m, srv, nil)
	done := make(chan error, 1)
	go func() { done <- f.Serve(l) }()
	t.Cleanup(func() {
		_ = f.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return addr, f
}

func startNetHTTP(t testing.TB, srv *http.Server) string {
	t.Helper()
	l := listen(t)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// exchange writes raw on a new connection, half-closes it and returns
// everything the server sends until it closes.
func exchange(t *testing.T, addr string, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v (after %q)", err, b)
	}
	return string(b)
}

var (
	dateRE = regexp.MustCompile(`(?m)^Date: [A-Za-z0-9 ,:]+ GMT\r$`)
	headRE = regexp.MustCompile(`HTTP/1\.[01] \d{3}[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n`)
)

// normalize makes two response streams comparable: the Date value goes,
// and header lines are sorted (their order carries no meaning between
// different names, RFC 9110 §5.3; net/http sorts a handler's headers,
// the front puts Content-Length after Date).
func normalize(s string) string {
	s = dateRE.ReplaceAllString(s, "Date: X\r")
	return headRE.ReplaceAllStringFunc(s, func(h string) string {
		lines := strings.Split(strings.TrimSuffix(h, "\r\n\r\n"), "\r\n")
		slices.Sort(lines[1:])
		return strings.Join(lines, "\r\n") + "\r\n\r\n"
	})
}

// TestFront_sameBytesAsNetHTTP: for every request, well-formed or not,
// the front and a plain net/http server with the reference handler send
// the same bytes (Date aside): the front either answers as net/http
// would, or leaves the request to net/http.
func TestFront_sameBytesAsNetHTTP(t *testing.T) {
	m := testResponder()
	frontAddr, _ := startFront(t, m, testServer(reference(m)), nil)
	refAddr := startNetHTTP(t, testServer(reference(m)))

	get := func(target string, hdrs ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: autoconfig.example.jp\r\n" + strings.Join(hdrs, "") + "\r\n"
	}
	big := "X-Pad: " + strings.Repeat("a", 5000) + "\r\n"
	huge := "X-Pad: " + strings.Repeat("a", 40<<10) + "\r\n"
	for _, tc := range []struct {
		name    string
		raw     string
		frontOK int // answers the front itself gives
	}{
		{"hot", get("/hot?emailaddress=a%40b.jp"), 1},
		{"hot with user agent", get("/hot", "User-Agent: Thunderbird/128\r\n"), 1},
		{"not found", get("/missing"), 1},
		{"large body", get("/.well-known/hot"), 1},
		{"head", "HEAD /hot HTTP/1.1\r\nHost: a\r\n\r\n", 1},
		{"head large", "HEAD /.well-known/hot HTTP/1.1\r\nHost: a\r\n\r\n", 1},
		{"pipelined", get("/hot") + get("/missing") + get("/hot?x=1"), 3},
		{"pipelined then cold", get("/hot") + get("/cold") + get("/hot"), 1},
		{"cold", get("/cold"), 0},
		{"connection close", get("/hot", "Connection: close\r\n") + get("/hot"), 1},
		{"connection keep-alive", get("/hot", "Connection: keep-alive\r\n"), 1},
		{"connection upgrade", get("/hot", "Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"), 0},
		{"http/1.0", "GET /hot HTTP/1.0\r\n\r\n", 0},
		{"http/1.0 keep-alive", "GET /hot HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\n\r\n", 0},
		{"http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0},
		{"no host", "GET /hot HTTP/1.1\r\n\r\n", 0},
		{"two hosts", "GET /hot HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0},
		{"bad host", "GET /hot HTTP/1.1\r\nHost: a b\r\n\r\n", 0},
		{"host with userinfo", "GET /hot HTTP/1.1\r\nHost: u@a\r\n\r\n", 0},
		{"empty host", "GET /hot HTTP/1.1\r\nHost:\r\n\r\n", 0},
		{"bad header name", get("/hot", "Bad Name: x\r\n"), 0},
		{"header without colon", get("/hot", "NoColon\r\n"), 0},
		{"obs-fold", get("/hot", "X-A: a\r\n b\r\n"), 0},
		{"ctl in value", get("/hot", "X-A: a\x01b\r\n"), 0},
		{"bare LF", "GET /hot HTTP/1.1\nHost: a\n\n", 0},
		{"leading blank line", "\r\nGET /hot HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"content-length body", get("/hot", "Content-Length: 5\r\n") + "hello", 0},
		{"content-length zero", get("/hot", "Content-Length: 0\r\n"), 1},
		{"chunked", get("/hot", "Transfer-Encoding: chunked\r\n") + "0\r\n\r\n", 0},
		{"expect", get("/hot", "Expect: 100-continue\r\n"), 0},
		{"absolute form", "GET http://a/hot HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"percent path", get("/h%6Ft"), 0},
		{"dot segment", get("/x/../hot"), 0},
		{"double slash", get("//hot"), 0},
		{"fragment", get("/hot#x"), 0},
		{"lower-case method", "get /hot HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"post", "POST /hot HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab", 0},
		{"garbage", "HELLO\r\n\r\n", 0},
		{"two spaces", "GET  /hot HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"non-ascii target", get("/hot?q=\xff"), 0},
		{"head over 4 KiB", get("/hot", big), 0},
		{"head over 32 KiB", get("/hot", huge), 0},
		{"truncated", "GET /hot HTTP/1.1\r\nHost: a\r\n", 0},
		{"empty", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := m.hits.Load()
			got := normalize(exchange(t, frontAddr, tc.raw))
			front := m.hits.Load() - before
			want := normalize(exchange(t, refAddr, tc.raw))
			if got != want {
				t.Errorf("front and net/http differ\nfront:   %q\nnet/http %q", got, want)
			}
			if front != int64(tc.frontOK) {
				t.Errorf("the front answered %d requests, want %d", front, tc.frontOK)
			}
		})
	}
}

// TestFront_byteByByte: a head that arrives a byte at a time is answered
// the same as one that arrives whole.
func TestFront_byteByByte(t *testing.T) {
	m := testResponder()
	addr, f := startFront(t, m, testServer(reference(m)), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for range 2 {
		for _, b := range []byte("GET /hot HTTP/1.1\r\nHost: a\r\n\r\n") {
			if _, err := c.Write([]byte{b}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "<hot/>\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
	if m.hits.Load() != 2 {
		t.Errorf("front answered %d, want 2", m.hits.Load())
	}
	c.Close()
	// The counts are taken before an answer is written or a connection
	// handed on: once the answer is read, they are there.
	if got := exchange(t, addr, "GET /cold HTTP/1.1\r\nHost: a\r\n\r\n"); !strings.Contains(got, "cold GET") {
		t.Fatalf("cold: %q", got)
	}
	if st := f.Stats(); st != (Stats{Connections: 2, Answers: 2, HandedOff: 1}) {
		t.Errorf("Stats = %+v", st)
	}
}

func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	return server, &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// TestFront_TLS: HTTP/1.1 over TLS is answered by the front; HTTP/2
// (ALPN) goes to net/http with its TLS state; plain HTTP on the TLS port
// gets net/http's 400.
func TestFront_TLS(t *testing.T) {
	m := testResponder()
	serverTLS, clientTLS := testTLS(t)
	addr, _ := startFront(t, m, testServer(reference(m)), serverTLS)

	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: clientTLS.Clone(), ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		before := m.hits.Load()
		for _, path := range []string{"/hot", "/cold"} {
			resp, err := cl.Get("https://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			wantProto := map[bool]int{false: 1, true: 2}[h2]
			if resp.ProtoMajor != wantProto || resp.StatusCode != 200 {
				t.Errorf("h2=%v %s: HTTP/%d %d", h2, path, resp.ProtoMajor, resp.StatusCode)
			}
			if path == "/cold" && h2 && !strings.Contains(string(body), "HTTP/2.0 tls=yes") {
				t.Errorf("h2 cold answer %q: not served by net/http over TLS", body)
			}
		}
		wantHits := map[bool]int64{false: 1, true: 0}[h2]
		if got := m.hits.Load() - before; got != wantHits {
			t.Errorf("h2=%v: front answered %d, want %d", h2, got, wantHits)
		}
		tr.CloseIdleConnections()
	}

	got := exchange(t, addr, "GET /hot HTTP/1.1\r\nHost: a\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.0 400 Bad Request\r\n") || !strings.Contains(got, "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP on the TLS port: %q", got)
	}
}

// TestFront_timeouts: a connection that never starts a request, one
// that stops mid-head and one idle after an answer are all closed by
// their timeouts.
func TestFront_timeouts(t *testing.T) {
	m := testResponder()
	srv := testServer(reference(m))
	srv.ReadHeaderTimeout, srv.IdleTimeout = 200*time.Millisecond, 400*time.Millisecond
	addr, _ := startFront(t, m, srv, nil)
	for _, tc := range []struct {
		name, send string
		min        time.Duration
	}{
		{"silent", "", 150 * time.Millisecond},
		{"partial head", "GET /hot HTTP/1.1\r\nHo", 150 * time.Millisecond},
		{"idle after answer", "GET /hot HTTP/1.1\r\nHost: a\r\n\r\n", 350 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			_, _ = io.WriteString(c, tc.send)
			b, err := io.ReadAll(c) // returns when the server closes
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if el := time.Since(start); el < tc.min || el > 5*time.Second {
				t.Errorf("closed after %v, want about %v", el, tc.min)
			}
			if tc.name == "idle after answer" && !strings.HasPrefix(string(b), "HTTP/1.1 200 OK") {
				t.Errorf("answer %q", b)
			}
		})
	}
}

// TestFront_handshakeTimeout: a TLS client that never finishes its
// handshake is dropped after the head timeout.
func TestFront_handshakeTimeout(t *testing.T) {
	m := testResponder()
	srv := testServer(reference(m))
	srv.ReadHeaderTimeout = 200 * time.Millisecond
	serverTLS, _ := testTLS(t)
	addr, f := startFront(t, m, srv, serverTLS)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, _ = c.Write([]byte{0x16, 0x03, 0x01}) // a record header, cut short
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 5*time.Second {
		t.Errorf("closed after %v, want about 200ms", el)
	}
	if st := f.Stats(); st.Answers != 0 || st.HandedOff != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestFront_shutdown: Shutdown closes idle connections, lets an answer
// in progress finish (with Connection: close), and closes connections
// handed to net/http; Serve returns ErrClosed.
func TestFront_shutdown(t *testing.T) {
	m := testResponder()
	m.block, m.entered = make(chan struct{}), make(chan struct{}, 1)
	srv := testServer(reference(m))
	l := listen(t)
	f := New(m, srv, nil)
	served := make(chan error, 1)
	go func() { served <- f.Serve(l) }()
	addr := l.Addr().String()

	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	// A connection handed to net/http, idle there.
	cold, coldR := dial()
	_, _ = io.WriteString(cold, "GET /cold HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, err := http.ReadResponse(coldR, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("cold: %v", err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	// A connection the front holds idle: it has had one answer.
	idle, idleR := dial()
	_, _ = io.WriteString(idle, "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n")
	go func() { <-m.entered; m.block <- struct{}{} }()
	if resp, err := http.ReadResponse(idleR, nil); err != nil || resp.StatusCode != 404 {
		t.Fatalf("idle: %v", err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	// A connection in the middle of an answer.
	busy, busyR := dial()
	_, _ = io.WriteString(busy, "GET /hot HTTP/1.1\r\nHost: a\r\n\r\n")
	<-m.entered

	shut := make(chan error, 1)
	go func() { shut <- f.Shutdown(context.Background()) }()
	for _, r := range []*bufio.Reader{idleR, coldR} {
		if b, err := io.ReadAll(r); err != nil || len(b) != 0 {
			t.Errorf("idle connection (front's, net/http's): read %q, %v; want EOF", b, err)
		}
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the answer in progress", err)
	default:
	}
	close(m.block)
	resp, err := http.ReadResponse(busyR, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "<hot/>\n" || !resp.Close {
		t.Errorf("answer during shutdown: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrClosed) {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("listener still accepts after Shutdown")
	}
}

// TestFront_responderPanic: a panicking Responder costs its connection,
// not the server.
func TestFront_responderPanic(t *testing.T) {
	m := testResponder()
	m.panics = true
	addr, _ := startFront(t, m, testServer(reference(m)), nil)
	if got := exchange(t, addr, "GET /hot HTTP/1.1\r\nHost: a\r\n\r\n"); got != "" {
		t.Errorf("got %q, want the connection closed", got)
	}
	if got := exchange(t, addr, "GET /cold HTTP/1.1\r\nHost: a\r\n\r\n"); !strings.Contains(got, "cold GET /cold") {
		t.Errorf("after a panic: %q", got)
	}
}

// TestFront_concurrent: many connections at once, mixing answers of the
// front and of net/http on the same connections (run with -race).
func TestFront_concurrent(t *testing.T) {
	m := testResponder()
	addr, _ := startFront(t, m, testServer(reference(m)), nil)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for j := range 50 {
				path := "/hot"
				if i%4 == 0 && j == 25 {
					path = "/cold"
				}
				if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
					t.Error(err)
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || (path == "/hot" && string(body) != "<hot/>\n") {
					t.Errorf("%s: %d %q", path, resp.StatusCode, body)
					return
				}
			}
		})
	}
	wg.Wait()
}

// flakyListener fails its first Accept with EMFILE, as a process out of
// file descriptors sees.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestFront_acceptRetry: a temporary accept error does not stop the
// listener (net/http's behaviour); a closed listener does.
func TestFront_acceptRetry(t *testing.T) {
	m := testResponder()
	l := &flakyListener{Listener: listen(t)}
	f := New(m, testServer(reference(m)), nil)
	done := make(chan error, 1)
	go func() { done <- f.Serve(l) }()
	if got := exchange(t, l.Addr().String(), "GET /hot HTTP/1.1\r\nHost: a\r\n\r\n"); !strings.Contains(got, "<hot/>") {
		t.Fatalf("after EMFILE: %q", got)
	}
	if !l.failed.Load() {
		t.Fatal("the failing Accept was not called")
	}
	_ = l.Listener.Close() // closed under the front, not by Shutdown
	if err := <-done; err == nil || errors.Is(err, ErrClosed) {
		t.Errorf("Serve after its listener closed: %v, want the accept error", err)
	}
	_ = f.Close()
}

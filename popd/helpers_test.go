package popd_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/popd/popdmem"
	"github.com/skydesk/skydeskd/store/storetest"
)

// testServer is a popd.Server on 127.0.0.1:0 with an implicit-TLS and a
// plaintext (STLS) listener.
type testServer struct {
	srv       *popd.Server
	tlsAddr   string
	plainAddr string
	client    *tls.Config
}

func newTestServer(t testing.TB, be popd.Backend, opts popd.Options) *testServer {
	t.Helper()
	cert := storetest.Certificate(t)
	opts.TLSConfig = cert.ServerTLS()
	if opts.Hostname == "" {
		opts.Hostname = "pop.skydesk.jp"
	}
	srv := popd.NewServer(be, opts)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	ts := &testServer{srv: srv, client: &tls.Config{RootCAs: pool, ServerName: "pop.skydesk.jp"}}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.tlsAddr, ts.plainAddr = tl.Addr().String(), pl.Addr().String()
	done := make(chan error, 2)
	go func() { done <- srv.Serve(tls.NewListener(tl, opts.TLSConfig)) }()
	go func() { done <- srv.Serve(pl) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		for range 2 {
			if err := <-done; err != popd.ErrServerClosed {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
	})
	return ts
}

// client is a minimal POP3 client that shows the raw wire.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (ts *testServer) dial(t testing.TB) *client {
	t.Helper()
	conn, err := tls.Dial("tcp", ts.tlsAddr, ts.client)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	c.expect("+OK pop.skydesk.jp POP3 server ready")
	return c
}

func (ts *testServer) dialPlain(t testing.TB) *client {
	t.Helper()
	conn, err := net.Dial("tcp", ts.plainAddr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	c.expect("+OK pop.skydesk.jp POP3 server ready")
	return c
}

// starttls upgrades after "+OK Begin TLS negotiation".
func (c *client) starttls(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func (c *client) send(line string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// line reads one response line without CRLF, failing on a bare LF.
func (c *client) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading response: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		c.t.Fatalf("line without CRLF: %q", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

func (c *client) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.line()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got %q, want prefix %q", got, prefix)
	}
	return got
}

// cmd sends line and checks the first response line's prefix.
func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line)
	return c.expectPrefix(prefix)
}

// multi reads a multi-line body up to ".", un-stuffing dots, and returns
// the raw octets (CRLF kept).
func (c *client) multi() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		if l == "." {
			return b.String()
		}
		l = strings.TrimPrefix(l, ".")
		b.WriteString(l + "\r\n")
	}
}

// closed checks the server closed the connection.
func (c *client) closed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if s, err := c.r.ReadString('\n'); err != io.EOF {
		c.t.Fatalf("want EOF, got %q, %v", s, err)
	}
}

func (c *client) login(user, pass string) {
	c.t.Helper()
	c.cmd("USER "+user, "+OK")
	c.cmd("PASS "+pass, "+OK logged in")
}

func newMem(t *testing.T) *popdmem.Backend {
	t.Helper()
	be := popdmem.New()
	be.AddUser("taro@skydesk.jp", "secret pw")
	return be
}

var _ = context.Background

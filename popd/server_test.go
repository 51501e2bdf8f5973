package popd_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/popd/popdmem"
)

func TestServer_Capa(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{Implementation: "skydeskd-test"})
	want := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER",
		"USER", "SASL PLAIN LOGIN", "IMPLEMENTATION skydeskd-test"}

	c := ts.dial(t)
	c.cmd("CAPA", "+OK")
	if got := strings.Split(strings.TrimSuffix(c.multi(), "\r\n"), "\r\n"); !slices.Equal(got, want) {
		t.Errorf("CAPA over TLS = %q, want %q", got, want)
	}
	// RFC 2449 §5: what AUTHORIZATION announces, TRANSACTION announces too.
	c.login("taro@skydesk.jp", "secret pw")
	c.cmd("CAPA", "+OK")
	if got := strings.Split(strings.TrimSuffix(c.multi(), "\r\n"), "\r\n"); !slices.Equal(got, want) {
		t.Errorf("CAPA in TRANSACTION = %q, want %q", got, want)
	}
	c.cmd("QUIT", "+OK")
	c.closed()

	// Port 110: no USER, no SASL before STLS (RFC 2595 §4).
	p := ts.dialPlain(t)
	p.cmd("CAPA", "+OK")
	plain := p.multi()
	if strings.Contains(plain, "USER") || strings.Contains(plain, "SASL") || !strings.Contains(plain, "STLS\r\n") {
		t.Errorf("CAPA before STLS = %q: want STLS and neither USER nor SASL", plain)
	}
	p.cmd("STLS", "+OK Begin TLS negotiation")
	p.starttls(ts.client)
	p.cmd("CAPA", "+OK")
	if got := strings.Split(strings.TrimSuffix(p.multi(), "\r\n"), "\r\n"); !slices.Equal(got, want) {
		t.Errorf("CAPA after STLS = %q, want %q", got, want)
	}
	p.cmd("STLS", "-ERR TLS is already active")
}

func TestServer_plaintextRefusesCredentials(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{})
	p := ts.dialPlain(t)
	for _, line := range []string{"USER taro@skydesk.jp", "PASS secret pw", "AUTH PLAIN " + plain("", "taro@skydesk.jp", "secret pw"), "AUTH"} {
		p.cmd(line, "-ERR [AUTH] TLS required")
	}
	p.cmd("STAT", "-ERR not logged in")
	p.cmd("QUIT", "+OK")
	p.closed()
}

// RFC 2595 §4: plaintext pipelined behind STLS is discarded, not run as
// if it came over TLS (the CVE-2011-0411 injection).
func TestServer_Stls_discardsPipelinedPlaintext(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{})
	p := ts.dialPlain(t)
	p.send("STLS\r\nQUIT")
	p.expect("+OK Begin TLS negotiation")
	p.starttls(ts.client)
	// If the injected QUIT had run, the connection would be gone.
	p.cmd("NOOP", "-ERR not logged in")
	p.login("taro@skydesk.jp", "secret pw")
	p.cmd("STAT", "+OK 0 0")
}

func plain(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestServer_Auth(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{})
	for _, tc := range []struct {
		name  string
		lines []string // client lines; responses checked by prefix in want
		want  []string
	}{
		{"user-pass", []string{"USER taro@skydesk.jp", "PASS secret pw"}, []string{"+OK send PASS", "+OK logged in, 0 messages (0 octets)"}},
		{"pass-without-user", []string{"PASS secret pw"}, []string{"-ERR send USER first"}},
		{"wrong-password", []string{"USER taro@skydesk.jp", "PASS nope", "PASS secret pw"}, []string{"+OK", "-ERR [AUTH] authentication failed", "-ERR send USER first"}},
		{"unknown-user-same-answer", []string{"USER nobody@skydesk.jp", "PASS secret pw"}, []string{"+OK send PASS", "-ERR [AUTH] authentication failed"}},
		{"plain-initial-response", []string{"AUTH PLAIN " + plain("", "taro@skydesk.jp", "secret pw")}, []string{"+OK logged in"}},
		{"plain-authz-equal", []string{"AUTH PLAIN " + plain("taro@skydesk.jp", "taro@skydesk.jp", "secret pw")}, []string{"+OK logged in"}},
		{"plain-authz-other", []string{"AUTH PLAIN " + plain("hanako@skydesk.jp", "taro@skydesk.jp", "secret pw")}, []string{"-ERR [AUTH] authorization identity"}},
		{"plain-challenge", []string{"AUTH plain", plain("", "taro@skydesk.jp", "secret pw")}, []string{"+ ", "+OK logged in"}},
		{"plain-empty-ir", []string{"AUTH PLAIN ="}, []string{"-ERR [AUTH] malformed SASL response"}},
		{"plain-wrong", []string{"AUTH PLAIN " + plain("", "taro@skydesk.jp", "x")}, []string{"-ERR [AUTH] authentication failed"}},
		{"plain-cancel", []string{"AUTH PLAIN", "*"}, []string{"+ ", "-ERR authentication cancelled"}},
		{"plain-bad-base64", []string{"AUTH PLAIN !!!"}, []string{"-ERR invalid base64"}},
		{"plain-bad-base64-continuation", []string{"AUTH PLAIN", "!!!"}, []string{"+ ", "-ERR invalid base64"}},
		{"login", []string{"AUTH LOGIN", b64("taro@skydesk.jp"), b64("secret pw")}, []string{"+ " + b64("Username:"), "+ " + b64("Password:"), "+OK logged in"}},
		{"login-initial-response", []string{"AUTH LOGIN " + b64("taro@skydesk.jp"), b64("secret pw")}, []string{"+ " + b64("Password:"), "+OK logged in"}},
		{"list-mechanisms", []string{"AUTH"}, []string{"+OK SASL mechanisms follow", "PLAIN", "LOGIN", "."}},
		{"unsupported", []string{"AUTH CRAM-MD5"}, []string{"-ERR unsupported mechanism; use one of: PLAIN LOGIN"}},
		{"syntax", []string{"AUTH PLAIN a b"}, []string{"-ERR syntax: AUTH mechanism [initial-response]"}},
		{"apop", []string{"APOP taro@skydesk.jp 0123456789abcdef"}, []string{"-ERR APOP is not supported"}},
		{"empty-user", []string{"USER"}, []string{"-ERR USER needs a user name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			i := 0
			for _, l := range tc.lines {
				c.send(l)
				// Read until the server waits for the next line.
				for i < len(tc.want) {
					got := c.line()
					if !strings.HasPrefix(got, tc.want[i]) {
						t.Fatalf("after %q: got %q, want prefix %q", l, got, tc.want[i])
					}
					i++
					if got == "." || !strings.HasPrefix(got, "+OK SASL") {
						break
					}
				}
			}
			for ; i < len(tc.want); i++ {
				c.expectPrefix(tc.want[i])
			}
			c.cmd("QUIT", "+OK")
			c.closed()
		})
	}
}

func TestServer_Auth_tooManyFailuresCloses(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{MaxAuthFailures: 3})
	c := ts.dial(t)
	for range 2 {
		c.login2("taro@skydesk.jp", "wrong", "-ERR [AUTH]")
	}
	c.login2("taro@skydesk.jp", "wrong", "-ERR [AUTH]")
	c.closed()
}

func (c *client) login2(user, pass, want string) {
	c.t.Helper()
	c.cmd("USER "+user, "+OK")
	c.cmd("PASS "+pass, want)
}

func TestServer_states(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{MaxErrors: 100})
	c := ts.dial(t)
	for _, cmd := range []string{"STAT", "LIST", "UIDL", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP"} {
		c.cmd(cmd, "-ERR not logged in")
	}
	c.login("taro@skydesk.jp", "secret pw")
	for _, cmd := range []string{"USER x", "PASS y", "AUTH PLAIN", "APOP a b", "STLS"} {
		c.cmd(cmd, "-ERR already logged in")
	}
	c.cmd("XYZZY", "-ERR unknown command")
	c.cmd("NOOP", "+OK")

	// An unknown command before login ends the connection (go-imap does
	// the same): it is not a POP3 client.
	d := ts.dial(t)
	d.cmd("GET / HTTP/1.1", "-ERR")
	d.closed()
}

func TestServer_tooManyBadCommands(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{MaxErrors: 3})
	c := ts.dial(t)
	c.login("taro@skydesk.jp", "secret pw")
	c.cmd("RETR", "-ERR syntax")
	c.cmd("XYZZY", "-ERR unknown command")
	c.send("LIST 1 2 3")
	c.expect("-ERR too many arguments")
	c.cmd("DELE", "-ERR syntax")
	c.expect("-ERR too many bad commands, closing connection")
	c.closed()
}

func TestServer_lineTooLong(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{MaxLineLength: 600})
	c := ts.dial(t)
	c.cmd("USER "+strings.Repeat("a", 700), "-ERR line too long (limit 600 octets)")
	// The connection resynchronises on the next line.
	c.login("taro@skydesk.jp", "secret pw")
	c.cmd("NOOP "+strings.Repeat("b", 1000), "-ERR line too long")
	c.cmd("NOOP", "+OK")
}

func TestServer_idleTimeout(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{ReadTimeout: 100 * time.Millisecond})
	c := ts.dial(t)
	c.expect("-ERR autologout: idle for too long")
	c.closed()
}

// failing is a backend whose errors carry internal details that must never
// reach the wire.
type failing struct{ *popdmem.Backend }

type failingSession struct{ popd.Session }

func (f failing) NewSession(c *popd.Conn) (popd.Session, error) {
	s, err := f.Backend.NewSession(c)
	return failingSession{s}, err
}

var errSecret = errors.New("open /var/lib/skydeskd/skydeskd.db: disk I/O error")

func (failingSession) Open(context.Context, int) (io.ReadCloser, error) { return nil, errSecret }
func (failingSession) Expunge(context.Context, []int) error             { return errSecret }

func TestServer_internalErrorsStayInternal(t *testing.T) {
	be := newMem(t)
	be.Deliver("taro@skydesk.jp", []byte("Subject: x\r\n\r\nhi\r\n"))
	ts := newTestServer(t, failing{be}, popd.Options{})
	c := ts.dial(t)
	c.login("taro@skydesk.jp", "secret pw")
	c.cmd("RETR 1", "-ERR [SYS/TEMP] internal error, try again later")
	c.cmd("DELE 1", "+OK")
	got := c.cmd("QUIT", "-ERR [SYS/TEMP] deleted messages could not be removed")
	if strings.Contains(got, "disk") {
		t.Errorf("internal detail leaked: %q", got)
	}
	c.closed()
	if len(be.UIDs("taro@skydesk.jp")) != 1 {
		t.Error("message removed despite the failure")
	}
}

func TestServer_pipelining(t *testing.T) {
	be := newMem(t)
	for i := range 3 {
		be.Deliver("taro@skydesk.jp", fmt.Appendf(nil, "Subject: %d\r\n\r\nbody %d\r\n", i, i))
	}
	ts := newTestServer(t, be, popd.Options{})
	c := ts.dial(t)
	// One write, every answer in order (RFC 2449 §6.6).
	c.send("USER taro@skydesk.jp\r\nPASS secret pw\r\nSTAT\r\nRETR 1\r\nDELE 2\r\nUIDL\r\nQUIT")
	c.expect("+OK send PASS")
	c.expectPrefix("+OK logged in, 3 messages")
	c.expectPrefix("+OK 3 ")
	c.expectPrefix("+OK ")
	if got := c.multi(); got != "Subject: 0\r\n\r\nbody 0\r\n" {
		t.Errorf("RETR 1 = %q", got)
	}
	c.expect("+OK message 2 deleted")
	c.expect("+OK 2 messages (44 octets)")
	if got := c.multi(); got != "1 m1\r\n3 m3\r\n" {
		t.Errorf("UIDL = %q", got)
	}
	c.expect("+OK bye, 1 messages deleted")
	c.closed()
	if got := be.UIDs("taro@skydesk.jp"); !slices.Equal(got, []string{"m1", "m3"}) {
		t.Errorf("after QUIT: %v", got)
	}
}

func TestServer_Shutdown(t *testing.T) {
	be := newMem(t)
	be.Deliver("taro@skydesk.jp", []byte("Subject: x\r\n\r\nhi\r\n"))
	ts := newTestServer(t, be, popd.Options{})
	c := ts.dial(t)
	c.login("taro@skydesk.jp", "secret pw")
	c.cmd("DELE 1", "+OK")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.expect("-ERR [SYS/TEMP] server shutting down, try again shortly")
	c.closed()
	if len(be.UIDs("taro@skydesk.jp")) != 1 {
		t.Error("shutdown applied a DELE mark without QUIT")
	}
	if _, err := net.Dial("tcp", ts.tlsAddr); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
}

func TestServer_debugTraceRedactsSecrets(t *testing.T) {
	var trace syncBuffer
	ts := newTestServer(t, newMem(t), popd.Options{DebugWriter: &trace})
	c := ts.dial(t)
	c.login("taro@skydesk.jp", "secret pw")
	c.cmd("QUIT", "+OK")
	c.closed()
	d := ts.dial(t)
	d.cmd("AUTH PLAIN "+plain("", "taro@skydesk.jp", "secret pw"), "+OK")
	d.cmd("QUIT", "+OK")
	d.closed()
	e := ts.dial(t)
	e.cmd("AUTH LOGIN", "+ ")
	e.cmd(b64("taro@skydesk.jp"), "+ ")
	e.cmd(b64("secret pw"), "+OK")
	got := trace.String()
	for _, secret := range []string{"secret pw", plain("", "taro@skydesk.jp", "secret pw"), b64("secret pw")} {
		if strings.Contains(got, secret) {
			t.Errorf("trace contains %q:\n%s", secret, got)
		}
	}
	if !strings.Contains(got, "C: PASS <redacted>") || !strings.Contains(got, "C: USER taro@skydesk.jp") {
		t.Errorf("trace lacks the expected lines:\n%s", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServer_garbageBeforeLogin(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{})
	c := ts.dial(t)
	c.cmd("", "-ERR invalid command line") // an empty line is only a bad command
	c.cmd("CAPA", "+OK")
	c.multi()
	c.cmd("\x16\x03\x01 hello", "-ERR invalid command line")
	c.closed()
}

// Without a TLS configuration there is no STLS and no way to log in.
func TestServer_noTLSConfig(t *testing.T) {
	srv := popd.NewServer(newMem(t), popd.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	c.expect("+OK POP3 server ready")
	c.cmd("CAPA", "+OK")
	if caps := c.multi(); strings.Contains(caps, "STLS") || strings.Contains(caps, "USER") {
		t.Errorf("CAPA = %q", caps)
	}
	c.cmd("STLS", "-ERR STLS is not available on this port")
	c.cmd("USER taro@skydesk.jp", "-ERR [AUTH] TLS required")
}

// A client that keeps talking but never logs in loses its connection slot
// after LoginTimeout, however busy it keeps the read timer.
func TestServer_loginTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	ts := newTestServer(t, newMem(t), popd.Options{LoginTimeout: timeout, ReadTimeout: time.Minute})
	start := time.Now()
	c := ts.dial(t)
	// Busy for half the timeout: each command resets the read timer but
	// not the login deadline. (Stop sending well before the deadline: a
	// write after the server's close could reset the connection before
	// the last reply is read.)
	for time.Since(start) < timeout/2 {
		c.cmd("CAPA", "+OK")
		c.multi()
	}
	c.expectPrefix("-ERR login timeout")
	if d := time.Since(start); d < timeout {
		t.Fatalf("closed after %v, before the login timeout", d)
	}
	c.closed()
}

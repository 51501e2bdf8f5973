package smtpd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/popstore"
	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// Test accounts.
const (
	taro     = "taro@skydesk.jp"
	taroPW   = "taro-password-1"
	hanako   = "hanako@example.co.jp"
	hanakoPW = "hanako-password-1"
)

// recordingStore is the real store, remembering what Accept was given
// (the spam verdict is checked through it).
type recordingStore struct {
	store.Driver
	mu       sync.Mutex
	accepted []store.Accepted
}

func (r *recordingStore) Accept(ctx context.Context, a store.Accepted) ([]int64, int64, error) {
	uids, q, err := r.Driver.Accept(ctx, a)
	if err == nil {
		r.mu.Lock()
		r.accepted = append(r.accepted, a)
		r.mu.Unlock()
	}
	return uids, q, err
}

func (r *recordingStore) last(t *testing.T) store.Accepted {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.accepted) == 0 {
		t.Fatal("no message was accepted")
	}
	return r.accepted[len(r.accepted)-1]
}

func (r *recordingStore) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.accepted)
}

// fixture runs the three listeners on 127.0.0.1:0 over a real store.
type fixture struct {
	st                    *recordingStore
	auth                  *store.Authenticator
	clientTLS             *tls.Config
	smtps, submission, mx string
	maxSize               int64
	certFile              string // PEM the real clients trust
	cert                  *config.Certificate
	srv                   *smtpd.Server // serving the three listeners

	tb      testing.TB // newFixture's test: owns the lazily started POP3S server
	popOnce sync.Once
	pop     string // POP3S address of mailbox's server
}

type fixtureOpts struct {
	policy store.ThrottlePolicy
	// relay takes mail for other domains (handRelay: queued, then
	// relayed only when the test calls RunOnce).
	relay   smtpd.Relayer
	maxSize int64
	// batch serves through a smtpd.Batcher (group commit) as serve does;
	// the recording store then sees nothing.
	batch bool
	// postmaster is Options.Postmaster ("" for none).
	postmaster string
	// log replaces the test logger (to check what was logged).
	log *slog.Logger
	// store, if set, is the store to use (else a new one).
	store store.Driver
	// tune, if set, changes the Options last.
	tune func(*smtpd.Options)
	// scanner is Options.Scanner (rspamd on the MX).
	scanner smtpd.Scanner
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SMTPD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newFixture(t testing.TB, fo fixtureOpts) *fixture {
	t.Helper()
	s := fo.store
	if s == nil {
		s = storetest.NewDriver(t)
	}
	storetest.AddUser(t, s, taro, taroPW)
	storetest.AddUser(t, s, hanako, hanakoPW)
	if fo.policy == (store.ThrottlePolicy{}) {
		// Generous: the credential table must not lock 127.0.0.1.
		fo.policy = store.ThrottlePolicy{FreeFailures: 100, LockAfter: 1000, LockFor: time.Minute,
			BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour}
	}
	auth, err := store.NewAuthenticator(s, store.AuthOptions{Policy: fo.policy, HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	cert := storetest.Certificate(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	if fo.maxSize == 0 {
		fo.maxSize = 64 << 10
	}
	f := &fixture{st: &recordingStore{Driver: s}, auth: auth, maxSize: fo.maxSize, certFile: cert.CertFile, cert: cert, tb: t,
		clientTLS: &tls.Config{RootCAs: pool, ServerName: "smtp.skydesk.jp", MinVersion: tls.VersionTLS12}}
	o := smtpd.Options{Hostname: "smtp.skydesk.jp", TLSConfig: cert.ServerTLS(), MaxMessageSize: fo.maxSize,
		Relay: fo.relay, Logger: testLogger(t), Postmaster: fo.postmaster, Scanner: fo.scanner,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	if fo.log != nil {
		o.Logger = fo.log
	}
	if fo.tune != nil {
		fo.tune(&o)
	}
	var st smtpd.Store = f.st
	if fo.batch {
		st = smtpd.NewBatcher(s)
	}
	f.srv = smtpd.NewServer(st, auth, o)
	f.smtps = serveOn(t, f.srv.ServeTLS)
	f.submission = serveOn(t, f.srv.Serve)
	f.mx = serveOn(t, f.srv.ServeMX)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// serveOn runs serve (a Server's Serve, ServeTLS or ServeMX) on a new
// listener on 127.0.0.1:0 and returns its address; the test's cleanup
// waits for serve to return.
func serveOn(t testing.TB, serve func(net.Listener) error) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, serve, l)
	return l.Addr().String()
}

// serveListener runs serve on l until the test's cleanup, which checks
// that it returned ErrServerClosed.
func serveListener(t testing.TB, serve func(net.Listener) error, l net.Listener) {
	done := make(chan error, 1)
	go func() { done <- serve(l) }()
	t.Cleanup(func() {
		if err := <-done; !errors.Is(err, smtpd.ErrServerClosed) {
			t.Errorf("serve returned %v, want ErrServerClosed", err)
		}
	})
}

// handRelay takes queued mail without a worker: the test relays by
// calling Relay.RunOnce itself. Wake signals woke, if set.
type handRelay struct{ woke chan<- struct{} }

func (h handRelay) Wake() {
	if h.woke != nil {
		h.woke <- struct{}{}
	}
}

func (handRelay) Run(ctx context.Context) { <-ctx.Done() }

// wire is a raw SMTP client: exact replies, no library smoothing.
type wire struct {
	t    *testing.T
	conn net.Conn
	text *textproto.Conn
}

func (f *fixture) dial(t *testing.T, addr string, implicit bool) *wire {
	t.Helper()
	var c net.Conn
	var err error
	d := net.Dialer{Timeout: 10 * time.Second}
	if implicit {
		c, err = tls.DialWithDialer(&d, "tcp", addr, f.clientTLS)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	w := &wire{t: t, conn: c, text: textproto.NewConn(c)}
	t.Cleanup(func() { c.Close() })
	w.expect(220)
	return w
}

// reply reads one (multi-line) reply.
func (w *wire) reply() (int, string) {
	w.t.Helper()
	var lines []string
	code := 0
	for {
		l, err := w.text.ReadLine()
		if err != nil {
			w.t.Fatalf("reading reply: %v", err)
		}
		if len(l) < 4 {
			w.t.Fatalf("short reply %q", l)
		}
		fmt.Sscanf(l[:3], "%d", &code)
		lines = append(lines, l[4:])
		if l[3] == ' ' {
			return code, strings.Join(lines, "\n")
		}
	}
}

func (w *wire) expect(code int) string {
	w.t.Helper()
	c, msg := w.reply()
	if c != code {
		w.t.Fatalf("got %d %q, want %d", c, msg, code)
	}
	return msg
}

// cmd sends one line and returns the reply.
func (w *wire) cmd(line string) (int, string) {
	w.t.Helper()
	if err := w.text.PrintfLine("%s", line); err != nil {
		w.t.Fatal(err)
	}
	return w.reply()
}

func (w *wire) must(line string, code int) string {
	w.t.Helper()
	c, msg := w.cmd(line)
	if c != code {
		w.t.Fatalf("%s: got %d %q, want %d", redact(line), c, msg, code)
	}
	return msg
}

func redact(line string) string {
	if strings.HasPrefix(strings.ToUpper(line), "AUTH") {
		return "AUTH …"
	}
	return line
}

func (w *wire) starttls(cfg *tls.Config) {
	w.t.Helper()
	w.must("STARTTLS", 220)
	tc := tls.Client(w.conn, cfg)
	if err := tc.Handshake(); err != nil {
		w.t.Fatal(err)
	}
	w.conn = tc
	w.text = textproto.NewConn(tc)
}

// plain returns an AUTH PLAIN line.
func plain(user, pw string) string {
	return "AUTH PLAIN " + b64("\x00"+user+"\x00"+pw)
}

// data sends DATA, the message (dot-stuffed by textproto) and returns the
// final reply.
func (w *wire) data(msg string) (int, string) {
	w.t.Helper()
	w.must("DATA", 354)
	dw := w.text.DotWriter()
	if _, err := io.WriteString(dw, msg); err != nil {
		w.t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		w.t.Fatal(err)
	}
	return w.reply()
}

// login opens an authenticated implicit-TLS session.
func (f *fixture) login(t *testing.T, user, pw string) *wire {
	t.Helper()
	w := f.dial(t, f.smtps, true)
	w.must("EHLO client.example", 250)
	w.must(plain(user, pw), 235)
	return w
}

func msg(from, to, subject, body string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n\r\n" + body + "\r\n"
}

func isCode(t *testing.T, got int, text string, want int, enh string) {
	t.Helper()
	if got != want || !strings.HasPrefix(text, enh+" ") {
		t.Fatalf("got %d %q, want %d %s …", got, text, want, enh)
	}
}

// mailbox returns every message in addr's mailbox as POP3 serves it (the
// store's own maildrop over a real POP3S session on 127.0.0.1:0): what
// the account's owner will download, not what smtpd handed to Accept.
func (f *fixture) mailbox(t *testing.T, addr, pw string) []string {
	t.Helper()
	f.popOnce.Do(func() {
		md, err := popstore.New(popstore.Options{Auth: f.auth, Store: f.st})
		if err != nil {
			t.Fatal(err)
		}
		srv := popd.NewServer(md, popd.Options{Hostname: "pop.skydesk.jp", Logger: testLogger(t)})
		l, err := tls.Listen("tcp", "127.0.0.1:0", f.cert.ServerTLS())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(l) }()
		f.tb.Cleanup(func() { srv.Close(); l.Close(); <-done })
		f.pop = l.Addr().String()
	})
	if f.pop == "" {
		t.Fatal("no POP3S server (its start failed earlier)")
	}
	cfg := f.clientTLS.Clone()
	cfg.ServerName = "pop.skydesk.jp"
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", f.pop, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	text := textproto.NewConn(c)
	ok := func(cmd string) string {
		t.Helper()
		if cmd != "" {
			if err := text.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
		}
		l, err := text.ReadLine()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 %s: %s", strings.Fields(cmd + " greeting")[0], l)
		}
		return l
	}
	ok("")
	ok("USER " + addr)
	ok("PASS " + pw)
	var n int
	if _, err := fmt.Sscanf(ok("STAT"), "+OK %d", &n); err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := 1; i <= n; i++ {
		ok(fmt.Sprintf("RETR %d", i))
		b, err := text.ReadDotBytes()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	ok("QUIT")
	return out
}

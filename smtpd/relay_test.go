package smtpd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// smarthost is a fake upstream relay: perm@ recipients fail with 550,
// temp@ with 451, everyone else is accepted. It requires AUTH.
type smarthost struct {
	mu       sync.Mutex
	received []relayed
	authed   []string
	// hold, if set, keeps the reply to each message's final dot back
	// until it is closed; inData hears when a message waits on it.
	hold, inData chan struct{}
}

type relayed struct {
	from     string
	rcpts    []string
	body     string
	bodyType smtp.BodyType
}

type smarthostSession struct {
	h        *smarthost
	from     string
	rcpts    []string
	user     string
	bodyType smtp.BodyType
}

func (h *smarthost) NewSession(*smtp.Conn) (smtp.Session, error) { return &smarthostSession{h: h}, nil }

func (s *smarthostSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smarthostSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pw string) error {
		if user != "relay-user" || pw != "relay-secret" {
			return smtp.ErrAuthFailed
		}
		s.user = user
		s.h.mu.Lock()
		s.h.authed = append(s.h.authed, user)
		s.h.mu.Unlock()
		return nil
	}), nil
}
func (s *smarthostSession) Mail(from string, o *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from, s.bodyType = from, o.Body
	return nil
}
func (s *smarthostSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch {
	case strings.HasPrefix(to, "perm@"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	case strings.HasPrefix(to, "temp@"):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy"}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *smarthostSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.h.mu.Lock()
	s.h.received = append(s.h.received, relayed{s.from, s.rcpts, string(b), s.bodyType})
	s.h.mu.Unlock()
	if s.h.hold != nil {
		select {
		case s.h.inData <- struct{}{}:
		default:
		}
		<-s.h.hold
	}
	return nil
}
func (s *smarthostSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *smarthostSession) Logout() error { return nil }

func (h *smarthost) got() []relayed {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]relayed(nil), h.received...)
}

// bounceQueue records the DSNs the relay hands to the store.
type bounceQueue struct {
	store.Driver
	mu    sync.Mutex
	dsns  []string
	dsnTo []string
}

func (q *bounceQueue) QueueSettle(ctx context.Context, id int64, holder string, r store.QueueResult) error {
	if len(r.Bounced) > 0 {
		q.mu.Lock()
		q.dsns = append(q.dsns, string(r.DSN))
		q.dsnTo = append(q.dsnTo, r.BounceTo)
		q.mu.Unlock()
	}
	return q.Driver.QueueSettle(ctx, id, holder, r)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startSmarthost(t *testing.T, tlsCfg *tls.Config) (*smarthost, int) {
	return startSmarthostWith(t, tlsCfg, &smarthost{})
}

func startSmarthostWith(t *testing.T, tlsCfg *tls.Config, h *smarthost) (*smarthost, int) {
	srv := smtp.NewServer(h)
	srv.Domain = "relay.example"
	srv.ErrorLog = nopLog{}
	l, err := tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); l.Close(); <-done }) // l: see newFixture
	return h, l.Addr().(*net.TCPAddr).Port
}

// trusting returns a client configuration that trusts cert.
func trusting(cert *config.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{RootCAs: pool, ServerName: "smtp.skydesk.jp", MinVersion: tls.VersionTLS12}
}

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}
func (nopLog) Println(...any)        {}

// Submission to other domains with a smarthost: queued durably before the
// 250, relayed with AUTH over implicit TLS; a permanent refusal bounces at
// once, a temporary one is retried with backoff and bounced (4.4.7) after
// the retry period. Local recipients of the same message get it directly.
func TestRelay_smarthost(t *testing.T) {
	woke := make(chan struct{}, 10)
	f := newFixture(t, fixtureOpts{relay: handRelay{woke}})
	cert := storetest.Certificate(t)
	h, port := startSmarthost(t, cert.ServerTLS())
	clk := &clock{t: time.Now().Add(time.Minute)} // after the submission below
	q := &bounceQueue{Driver: f.st.Driver}
	relay := smtpd.NewRelay(q, smtpd.RelayOptions{
		Host: "127.0.0.1", Port: port, TLS: "implicit", Username: "relay-user", Password: "relay-secret",
		RetryPeriod: 24 * time.Hour, TLSConfig: trusting(cert), Logger: testLogger(t), Hostname: "smtp.skydesk.jp", Now: clk.now,
		Backoff: func(n int) time.Duration { return time.Duration(n) * time.Hour },
	})
	ctx := t.Context()

	w := f.login(t, taro, taroPW)
	w.must("MAIL FROM:<"+taro+">", 250)
	for _, r := range []string{"ok@remote.example", "perm@remote.example", "temp@remote.example", hanako} {
		w.must("RCPT TO:<"+r+">", 250)
	}
	if c, text := w.data(msg(taro, "friends", "to the world", "こんにちは")); c != 250 {
		t.Fatalf("%d %q", c, text)
	}
	select {
	case <-woke:
	default:
		t.Fatal("the relay was not woken after queueing")
	}
	if a := f.st.last(t); len(a.Local) != 1 || a.Local[0] != hanako || len(a.Remote) != 3 {
		t.Fatalf("accepted %+v", a)
	}
	if n, _ := f.st.QueueLen(ctx); n != 3 {
		t.Fatalf("queue length %d, want 3", n)
	}

	if err := relay.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := h.got()
	if len(got) != 1 || got[0].from != taro || strings.Join(got[0].rcpts, ",") != "ok@remote.example" ||
		!strings.Contains(got[0].body, "Subject: to the world") || !strings.Contains(got[0].body, "\r\n\r\nこんにちは\r\n") {
		t.Fatalf("smarthost received %+v", got)
	}
	if got[0].bodyType != smtp.Body8BitMIME {
		t.Errorf("8-bit body relayed as BODY=%q, want 8BITMIME", got[0].bodyType)
	}
	if len(q.dsns) != 1 || q.dsnTo[0] != taro || !strings.Contains(q.dsns[0], "Final-Recipient: rfc822; perm@remote.example\r\nAction: failed\r\nStatus: 5.1.1\r\n") ||
		!strings.Contains(q.dsns[0], "Diagnostic-Code: smtp; 550 5.1.1 no such user") || !strings.Contains(q.dsns[0], "Subject: to the world") {
		t.Fatalf("first DSN:\n%s", strings.Join(q.dsns, "\n----\n"))
	}
	if n, _ := f.st.QueueLen(ctx); n != 1 {
		t.Fatalf("queue length %d after first run, want 1 (temp@)", n)
	}

	// Not due yet: nothing is sent.
	if err := relay.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.got()) != 1 {
		t.Fatal("a deferred recipient was retried before its backoff")
	}
	next, ok, err := f.st.NextQueueAttempt(ctx)
	if err != nil || !ok || next.Sub(clk.now()) != time.Hour {
		t.Fatalf("next attempt %v (ok=%v, err=%v), want now+1h", next, ok, err)
	}
	clk.add(time.Hour)
	if err := relay.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if next, _, _ := f.st.NextQueueAttempt(ctx); next.Sub(clk.now()) != 2*time.Hour {
		t.Fatalf("second backoff: next attempt in %v, want 2h", next.Sub(clk.now()))
	}
	if len(q.dsns) != 1 {
		t.Fatal("bounced before the retry period")
	}

	clk.add(24 * time.Hour)
	if err := relay.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(q.dsns) != 2 || !strings.Contains(q.dsns[1], "Final-Recipient: rfc822; temp@remote.example\r\nAction: failed\r\nStatus: 4.4.7\r\n") {
		t.Fatalf("expiry DSN:\n%s", strings.Join(q.dsns, "\n----\n"))
	}
	if n, _ := f.st.QueueLen(ctx); n != 0 {
		t.Fatalf("queue length %d at the end, want 0", n)
	}
	if _, ok, _ := f.st.NextQueueAttempt(ctx); ok {
		t.Fatal("queue not empty")
	}
}

// An unreachable smarthost defers every recipient; the DSN after the retry
// period does not reveal the smarthost's address.
func TestRelay_unreachable(t *testing.T) {
	f := newFixture(t, fixtureOpts{relay: handRelay{}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()                                     // nothing listens there now
	clk := &clock{t: time.Now().Add(time.Minute)} // after the submission below
	q := &bounceQueue{Driver: f.st.Driver}
	relay := smtpd.NewRelay(q, smtpd.RelayOptions{Host: "127.0.0.1", Port: port, TLS: "starttls",
		RetryPeriod: time.Hour, Now: clk.now, DialTimeout: 5 * time.Second})
	w := f.login(t, taro, taroPW)
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<far@remote.example>", 250)
	if c, text := w.data(msg(taro, "far@remote.example", "hi", "x")); c != 250 {
		t.Fatalf("%d %q", c, text)
	}
	ctx := t.Context()
	if err := relay.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.st.QueueLen(ctx); n != 1 || len(q.dsns) != 0 {
		t.Fatalf("queue %d, dsns %d: want deferred", n, len(q.dsns))
	}
	clk.add(2 * time.Hour)
	if err := relay.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(q.dsns) != 1 || strings.Contains(q.dsns[0], strconv.Itoa(port)) || !strings.Contains(q.dsns[0], "smarthost unreachable") {
		t.Fatalf("DSN:\n%s", strings.Join(q.dsns, "\n"))
	}
}

// Run wakes on Wake and stops with its context.
func TestRelay_runWakesAndStops(t *testing.T) {
	f := newFixture(t, fixtureOpts{relay: handRelay{}})
	cert := storetest.Certificate(t)
	h, port := startSmarthost(t, cert.ServerTLS())
	relay := smtpd.NewRelay(f.st.Driver, smtpd.RelayOptions{Host: "127.0.0.1", Port: port, TLS: "implicit",
		Username: "relay-user", Password: "relay-secret", TLSConfig: trusting(cert), Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { defer close(stopped); relay.Run(ctx) }()
	w := f.login(t, taro, taroPW)
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<ok@remote.example>", 250)
	if c, text := w.data(msg(taro, "ok@remote.example", "hi", "x")); c != 250 {
		t.Fatalf("%d %q", c, text)
	}
	relay.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("woken relay did not send within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

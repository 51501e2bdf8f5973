package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
)

// serveInProcess runs `serve --config FILE` in-process and returns the
// listener addresses and a stop function that cancels it and returns its
// exit code and how long the shutdown took.
func serveInProcess(t *testing.T, file string, want []string) (map[string]string, func() (int, time.Duration)) {
	t.Helper()
	addrs, _, stop := serveInProcessLog(t, file, want)
	return addrs, stop
}

// serveInProcessLog is serveInProcess that also returns the log lines
// written until every listener in want was bound (the start-up log).
func serveInProcessLog(t *testing.T, file string, want []string) (map[string]string, []string, func() (int, time.Duration)) {
	t.Helper()
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", file}, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: pw, getenv: os.Getenv})
		pw.Close()
	}()
	addrs := map[string]string{}
	missing := func() bool {
		for _, w := range want {
			if addrs[w] == "" {
				return true
			}
		}
		return false
	}
	var lines []string
	sc := bufio.NewScanner(pr)
	for missing() && sc.Scan() {
		lines = append(lines, sc.Text())
		var line struct{ Msg, Service, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			addrs[line.Service] = line.Addr
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	stopped := false
	stop := func() (int, time.Duration) {
		stopped = true
		start := time.Now()
		cancel()
		select {
		case code := <-done:
			return code, time.Since(start)
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Fatal("serve did not shut down")
		}
		return -1, 0
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	for _, w := range want {
		if addrs[w] == "" {
			t.Fatalf("listeners: %v", addrs)
		}
	}
	return addrs, lines, stop
}

// Shutdown does not wait for idle SMTP clients until their read timeout:
// they get their connection closed after the grace period.
func TestSMTP_shutdownClosesIdleClients(t *testing.T) {
	dir := t.TempDir()
	addrs, stop := serveInProcess(t, writeSMTPConfig(t, dir, ""), []string{"smtps", "submission", "mx"})
	var conns []net.Conn
	for _, svc := range []string{"submission", "mx"} {
		c, err := net.Dial("tcp", addrs[svc])
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	tc, err := tls.Dial("tcp", addrs["smtps"], trustDir(t, dir, "smtp.skydesk.jp"))
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, tc)
	for _, c := range conns {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		l, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(l, "220 ") {
			t.Fatalf("greeting %q, %v", l, err)
		}
	}
	code, took := stop()
	if code != exitOK {
		t.Fatalf("serve exited %d", code)
	}
	if took > smtpGrace+5*time.Second {
		t.Errorf("shutdown took %v with idle clients", took)
	}
	for _, c := range conns {
		if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "reset") {
			t.Errorf("idle client after shutdown: %v", err)
		}
	}
}

// sink is a plain SMTP server standing in for the smarthost.
type sink struct {
	mu    sync.Mutex
	rcpts []string
}

type sinkSession struct{ s *sink }

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return sinkSession{s}, nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error    { return nil }
func (x sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	x.s.rcpts = append(x.s.rcpts, to)
	x.s.mu.Unlock()
	return nil
}
func (sinkSession) Data(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }
func (sinkSession) Reset()                 {}
func (sinkSession) Logout() error          { return nil }

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

// With smtp.smarthost configured, serve runs the relay: authenticated
// submission to another domain is queued and sent on at once.
func TestSMTP_smarthostWiring(t *testing.T) {
	s := &sink{}
	srv := smtp.NewServer(s)
	srv.Domain = "relay.example"
	srv.ErrorLog = quietLog{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); l.Close() })
	_, port, _ := net.SplitHostPort(l.Addr().String())

	dir := t.TempDir()
	const user, pw = "relay@skydesk.jp", "relay-password-1"
	mustCLI(t, dir, pw+"\n", "user", "add", user, "--password-stdin")
	cfg := writeSMTPConfig(t, dir, "smtp: {smarthost: {host: localhost, port: "+port+", tls: none, retry_period: 1h}}\n")
	addrs, _ := serveInProcess(t, cfg, []string{"smtps", "smtp-relay"})
	if err := sendSMTPS(addrs["smtps"], trustDir(t, dir, "smtp.skydesk.jp"), user, pw, user, []string{"friend@example.org"},
		"From: "+user+"\r\nTo: friend@example.org\r\nSubject: out\r\n\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		got := strings.Join(s.rcpts, ",")
		s.mu.Unlock()
		if got == "friend@example.org" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("smarthost got %q within 20s", got)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// Beyond the connection cap a client gets 421 and is closed; closing a
// connection frees its slot.
func TestSMTP_connectionCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &trackListener{Listener: ln, conns: map[net.Conn]struct{}{}, accepted: prometheusCounter(), max: 1, plaintext: true}
	defer tl.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	s1 := <-accepted
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c2)
	if string(b) != tooBusy {
		t.Fatalf("over the cap: %q", b)
	}
	s1.Close()
	c3, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("a freed slot was not reused")
	}
}

func prometheusCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "test_connections_total", Help: "test"})
}

// A smarthost password is never configured to travel in clear.
func TestSMTP_smarthostCleartextPasswordRefused(t *testing.T) {
	dir := t.TempDir()
	file := writeSMTPConfig(t, dir, "smtp: {smarthost: {host: relay.example.net, port: 25, tls: none, username: u, password: p}}\n")
	var errb strings.Builder
	code := run(context.Background(), []string{"serve", "--config", file}, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errb, getenv: os.Getenv})
	if code == exitOK || !strings.Contains(errb.String(), "smtp.smarthost") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

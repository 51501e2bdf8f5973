package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
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
	// smtpd's grace of 3 seconds, not the clients' 5-minute read timeout.
	if took > 10*time.Second {
		t.Errorf("shutdown took %v with idle clients", took)
	}
	for _, c := range conns {
		if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "reset") {
			t.Errorf("idle client after shutdown: %v", err)
		}
	}
}

// sink is a plaintext SMTP server standing in for the smarthost: it
// takes every message and records the recipients.
type sink struct {
	l     net.Listener
	mu    sync.Mutex
	rcpts []string
}

func startSink(t *testing.T) *sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.session(c)
		}
	}()
	return s
}

// session speaks just enough RFC 5321 for the relay: every command is
// answered 250, DATA is read to its final dot.
func (s *sink) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	text := textproto.NewConn(c)
	_ = text.PrintfLine("220 relay.example ESMTP")
	for {
		line, err := text.ReadLine()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "RCPT":
			_, to, _ := strings.Cut(line, "<")
			s.mu.Lock()
			s.rcpts = append(s.rcpts, strings.TrimSuffix(to, ">"))
			s.mu.Unlock()
		case "DATA":
			_ = text.PrintfLine("354 go ahead")
			if _, err := text.ReadDotBytes(); err != nil {
				return
			}
		case "QUIT":
			_ = text.PrintfLine("221 bye")
			return
		}
		_ = text.PrintfLine("250 ok")
	}
}

func (s *sink) got() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.rcpts, ",")
}

// With smtp.smarthost configured, serve runs the relay: authenticated
// submission to another domain is queued and sent on at once.
func TestSMTP_smarthostWiring(t *testing.T) {
	s := startSink(t)
	_, port, _ := net.SplitHostPort(s.l.Addr().String())

	dir := t.TempDir()
	const user, pw = "relay@skydesk.jp", "relay-password-1"
	mustCLI(t, dir, pw+"\n", "user", "add", user, "--password-stdin")
	cfg := writeSMTPConfig(t, dir, "smtp: {smarthost: {host: localhost, port: "+port+", tls: none, retry_period: 1h}}\n")
	addrs, _ := serveInProcess(t, cfg, []string{"smtps"})
	if err := sendSMTPS(addrs["smtps"], trustDir(t, dir, "smtp.skydesk.jp"), user, pw, user, []string{"friend@example.org"},
		"From: "+user+"\r\nTo: friend@example.org\r\nSubject: out\r\n\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.got()
		if got == "friend@example.org" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("smarthost got %q within 20s", got)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
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

package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/config"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// buildBinary compiles skydeskd once per test run (the crash and journey
// tests need a real process to kill and restart).
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "skydeskd-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "skydeskd")
		out, err := exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// proc is a running skydeskd process.
type proc struct {
	cmd   *exec.Cmd
	addrs map[string]string
	done  chan error

	mu   sync.Mutex
	tail strings.Builder // the first 64 KiB of its log; under mu
}

// logged returns the first 64 KiB of what the process logged so far.
func (p *proc) logged() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tail.String()
}

// startProc runs the binary with args and waits (no sleeps) until the
// services in want logged their "listening" line; it returns their
// addresses. The process is killed when the test ends.
func startProc(t *testing.T, bin string, want []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, procArgs(t, args)...)
	cmd.Env = append(os.Environ(), "SKYDESKD_TEST_FAST_HASH=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	seen := map[string]string{} // guarded by p.mu
	found := make(chan struct{})
	mu, tail := &p.mu, &p.tail
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		closed := false
		for sc.Scan() {
			var line struct{ Msg, Service, Addr string }
			mu.Lock()
			if tail.Len() < 64<<10 {
				tail.WriteString(sc.Text() + "\n")
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				seen[line.Service] = line.Addr
			}
			all := true
			for _, w := range want {
				if seen[w] == "" {
					all = false
				}
			}
			mu.Unlock()
			if all && !closed {
				closed = true
				close(found)
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-found:
	case err := <-p.done:
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("skydeskd exited (%v) before listening:\n%s", err, tail.String())
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("skydeskd did not listen on %v within 60s:\n%s", want, tail.String())
	}
	mu.Lock()
	defer mu.Unlock()
	p.addrs = map[string]string{}
	for k, v := range seen {
		p.addrs[k] = v
	}
	return p
}

// kill sends SIGKILL (kill -9) and waits for the exit.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil // for the cleanup
}

// writeSMTPConfig writes a config with SMTPS, submission, MX and POP3S on
// 127.0.0.1:0 and everything else off.
func writeSMTPConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "", https: "", dns: "", pop3s: "127.0.0.1:0", pop3: "", smtps: "127.0.0.1:0", submission: "127.0.0.1:0", mx: "127.0.0.1:0"}
%s`, dir, extra)
	file := filepath.Join(dir, "skydeskd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// trustDir returns a client TLS config trusting the certificate made in
// dir (the self-signed one serve generates on first start).
func trustDir(t *testing.T, dir, serverName string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, config.SelfSignedCert))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in PEM")
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// sendSMTPS submits one message on an implicit-TLS port and returns once
// the server answered the final dot (250 or an error; a refusal is a
// *textproto.Error carrying the reply code).
func sendSMTPS(addr string, tc *tls.Config, user, pw, from string, to []string, body string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, tc)
	if err != nil {
		return err
	}
	c, err := smtp.NewClient(conn, tc.ServerName)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if user != "" {
		if err := c.Auth(smtp.PlainAuth("", user, pw, tc.ServerName)); err != nil {
			return err
		}
	}
	return transact(c, from, to, body)
}

// transact runs MAIL, RCPT, DATA and returns right after the reply to the
// final dot, without QUIT (so a kill can follow the 250 immediately).
func transact(c *smtp.Client, from string, to []string, body string) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return err
	}
	return w.Close()
}

// sendMX delivers one message on the MX port (plaintext, as from the
// Internet).
func sendMX(addr, from string, to []string, body string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return transact(c, from, to, body)
}

// pop3 is a minimal POP3 client for checking mailboxes.
type pop3 struct {
	t    *testing.T
	text *textproto.Conn
}

func dialPOP3S(t *testing.T, addr string, tc *tls.Config, user, pw string) *pop3 {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	p := &pop3{t: t, text: textproto.NewConn(c)}
	t.Cleanup(func() { c.Close() })
	p.ok("")
	p.ok("USER " + user)
	p.ok("PASS " + pw)
	return p
}

func (p *pop3) ok(cmd string) string {
	p.t.Helper()
	if cmd != "" {
		if err := p.text.PrintfLine("%s", cmd); err != nil {
			p.t.Fatal(err)
		}
	}
	l, err := p.text.ReadLine()
	if err != nil {
		p.t.Fatal(err)
	}
	if !strings.HasPrefix(l, "+OK") {
		p.t.Fatalf("%q: %s", strings.Fields(cmd + " x")[0], l)
	}
	return l
}

// messages returns the bodies of every listed message (LF line ends).
func (p *pop3) messages() []string {
	p.t.Helper()
	stat := strings.Fields(p.ok("STAT"))
	n, err := strconv.Atoi(stat[1])
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for i := 1; i <= n; i++ {
		p.ok(fmt.Sprintf("RETR %d", i))
		b, err := p.text.ReadDotBytes()
		if err != nil {
			p.t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func (p *pop3) quit() { p.ok("QUIT") }

// startSMTPInProcess runs `serve --config` in-process on dir with the
// listeners of writeSMTPConfig and returns their addresses; the server is
// stopped when the test ends.
func startSMTPInProcess(t *testing.T, dir string) map[string]string {
	t.Helper()
	addrs, _ := serveInProcess(t, writeSMTPConfig(t, dir, ""), []string{"smtps", "submission", "mx", "pop3s"})
	return addrs
}

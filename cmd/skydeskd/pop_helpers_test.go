package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePOPConfig writes a config with POP3S, POP3 (STLS) and HTTP (for
// /metrics) on 127.0.0.1:0 and every other listener off.
func writePOPConfig(t *testing.T, dir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "127.0.0.1:0", https: "", dns: "", pop3s: "127.0.0.1:0", pop3: "127.0.0.1:0", smtps: "", submission: "", mx: ""}
pop: {lease_ttl: 1s}
`, dir)
	file := filepath.Join(dir, "skydeskd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// popUser creates an account with POP access "all mail" and the given
// on-delete setting through the admin commands.
func popUser(t *testing.T, dir, addr, pw, onDelete string) {
	t.Helper()
	mustCLI(t, dir, pw+"\n", "user", "add", addr, "--password-stdin")
	mustCLI(t, dir, "", "pop", "set", addr, "--access", "all", "--on-delete", onDelete)
}

// deliverCLI runs the real `skydeskd deliver` and returns the UID printed.
func deliverCLI(t *testing.T, bin, dir, addr string, spam bool, body string) string {
	t.Helper()
	args := []string{"deliver", "--data", dir, addr}
	if spam {
		args = append(args, "--spam")
	}
	cmd := exec.Command(bin, procArgs(t, args)...)
	cmd.Stdin = strings.NewReader(body)
	cmd.Env = append(os.Environ(), "SKYDESKD_TEST_FAST_HASH=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("skydeskd deliver: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// popConn is a raw POP3S session for checks around real clients.
type popConn struct {
	t    *testing.T
	text *textproto.Conn
}

// popDial connects and reads the greeting.
func popDial(t *testing.T, addr string, tc *tls.Config) *popConn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	p := &popConn{t: t, text: textproto.NewConn(c)}
	t.Cleanup(func() { c.Close() })
	p.cmd("", "+OK")
	return p
}

func popLogin(t *testing.T, addr string, tc *tls.Config, user, pw string) *popConn {
	t.Helper()
	p := popDial(t, addr, tc)
	p.cmd("USER "+user, "+OK")
	p.cmd("PASS "+pw, "+OK logged in")
	return p
}

func (p *popConn) cmd(line, prefix string) string {
	p.t.Helper()
	if line != "" {
		if err := p.text.PrintfLine("%s", line); err != nil {
			p.t.Fatal(err)
		}
	}
	l, err := p.text.ReadLine()
	if err != nil {
		p.t.Fatalf("%s: %v", strings.Fields(line + " x")[0], err)
	}
	if !strings.HasPrefix(l, prefix) {
		p.t.Fatalf("%s: got %q, want %q", strings.Fields(line + " x")[0], l, prefix)
	}
	return l
}

// uidl returns the UIDs listed.
func (p *popConn) uidl() []string {
	p.t.Helper()
	p.cmd("UIDL", "+OK")
	lines, err := p.text.ReadDotLines()
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, l := range lines {
		if _, uid, ok := strings.Cut(l, " "); ok {
			out = append(out, uid)
		}
	}
	return out
}

// popUIDs logs in, lists and quits.
func popUIDs(t *testing.T, addr string, tc *tls.Config, user, pw string) []string {
	t.Helper()
	p := popLogin(t, addr, tc, user, pw)
	uids := p.uidl()
	p.cmd("QUIT", "+OK")
	return uids
}

package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// popSession is a minimal POP3 client (RFC 1939) over implicit TLS
// (RFC 8314), enough to check what the settings screen changed.
type popSession struct {
	t    *testing.T
	conn *tls.Conn
	r    *bufio.Reader
}

// dialPOP connects to the app's POP3S listener and verifies its
// certificate for the advertised POP host name.
func (w *webApp) dialPOP(t *testing.T) *popSession {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(w.cert.Leaf)
	c, err := tls.Dial("tcp", w.addrs["pop3s"], &tls.Config{RootCAs: pool, ServerName: w.cfg.Provider.POP.PersonalHost})
	if err != nil {
		t.Fatalf("dialing POP3S: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	p := &popSession{t: t, conn: c, r: bufio.NewReader(c)}
	if line := p.line(); !strings.HasPrefix(line, "+OK") {
		t.Fatalf("greeting %q", line)
	}
	return p
}

func (p *popSession) line() string {
	p.t.Helper()
	s, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("reading POP3 reply: %v", err)
	}
	return strings.TrimRight(s, "\r\n")
}

// cmd sends a command and returns the status line.
func (p *popSession) cmd(format string, a ...any) string {
	p.t.Helper()
	if _, err := fmt.Fprintf(p.conn, format+"\r\n", a...); err != nil {
		p.t.Fatalf("writing POP3 command: %v", err)
	}
	return p.line()
}

// login returns the reply to PASS ("" and ok=true on +OK).
func (p *popSession) login(user, pass string) (reply string, ok bool) {
	p.t.Helper()
	if r := p.cmd("USER %s", user); !strings.HasPrefix(r, "+OK") {
		return r, false
	}
	r := p.cmd("PASS %s", pass)
	return r, strings.HasPrefix(r, "+OK")
}

// stat returns the number of messages listed.
func (p *popSession) stat() int {
	p.t.Helper()
	r := p.cmd("STAT")
	f := strings.Fields(r)
	if len(f) < 3 || f[0] != "+OK" {
		p.t.Fatalf("STAT: %q", r)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		p.t.Fatalf("STAT: %q", r)
	}
	return n
}

// subjects returns the Subject of every listed message (TOP n 0).
func (p *popSession) subjects(n int) []string {
	p.t.Helper()
	var out []string
	for i := 1; i <= n; i++ {
		if r := p.cmd("TOP %d 0", i); !strings.HasPrefix(r, "+OK") {
			p.t.Fatalf("TOP %d: %q", i, r)
		}
		for {
			l := p.line()
			if l == "." {
				break
			}
			if s, ok := strings.CutPrefix(l, "Subject: "); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func (p *popSession) quit() {
	p.t.Helper()
	if r := p.cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		p.t.Fatalf("QUIT: %q", r)
	}
	p.conn.Close()
}

// popSubjects logs in, lists the subjects of the POP queue and quits;
// dele deletes message 1 first (applied at QUIT, RFC 1939 §6).
func (w *webApp) popSubjects(t *testing.T, user, pass string, dele bool) []string {
	t.Helper()
	p := w.dialPOP(t)
	if r, ok := p.login(user, pass); !ok {
		t.Fatalf("POP login as %s: %q", user, r)
	}
	subs := p.subjects(p.stat())
	if dele && len(subs) > 0 {
		if r := p.cmd("DELE 1"); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("DELE: %q", r)
		}
	}
	p.quit()
	return subs
}

// popLoginFails checks that a login is refused and returns the reply.
func (w *webApp) popLoginFails(t *testing.T, user, pass string) string {
	t.Helper()
	p := w.dialPOP(t)
	defer p.conn.Close()
	r, ok := p.login(user, pass)
	if ok {
		t.Fatalf("POP login as %s succeeded, want refusal", user)
	}
	return r
}

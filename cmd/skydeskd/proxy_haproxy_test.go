package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/internal/connlimit/connlimittest"
)

// The addresses of the HAProxy test: on Linux all of 127.0.0.0/8 is
// loopback, so each is its own /32 client network.
const (
	haproxySource = "127.0.0.3" // HAProxy's side of its connections to skydeskd (trusted)
	clientA       = "127.0.0.2"
	clientB       = "127.0.0.4"
	clientC       = "127.0.0.5"
)

// freePort returns a loopback port free right now, for a program that
// cannot report the port it bound (HAProxy).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startHAProxy runs haproxy in the foreground on cfg (written to dir) and
// stops it when the test ends. A missing binary skips the test, except
// under CI=true.
func startHAProxy(t *testing.T, dir, cfg string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("haproxy not installed (Debian package haproxy; .ci/run installs it)")
		}
		t.Skip("haproxy not installed")
	}
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-q", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", log.String())
		}
	})
}

// popVia logs in over POP3S through addr from the loopback address src.
func popVia(t *testing.T, src, addr string, tc *tls.Config, user, pw string) *pop3 {
	t.Helper()
	c := tls.Client(connlimittest.Dial(t, src, addr), tc)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	p := &pop3{t: t, text: textproto.NewConn(c)}
	p.ok("")
	p.ok("USER " + user)
	p.ok("PASS " + pw)
	return p
}

// mxVia delivers one message through addr from the loopback address src.
func mxVia(t *testing.T, src, addr, rcpt, body string) error {
	t.Helper()
	c, err := smtp.NewClient(connlimittest.Dial(t, src, addr), "localhost")
	if err != nil {
		return err
	}
	defer c.Close()
	return transact(c, "sender@example.org", []string{rcpt}, body)
}

// firstLine reads the first line c is sent, within 10 s.
func firstLine(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading from %s: %v", c.RemoteAddr(), err)
	}
	return l
}

// haproxyConfig fronts skydeskd's POP3S, MX, DNS-over-TCP and HTTP
// listeners (those front names) on the nodes backs, balanced round-robin:
// server sN is backs[N-1], left out of a backend whose listener its map
// lacks. POP3S, DNS and HTTP get PROXY v2, the MX v1; HAProxy connects
// from haproxySource, and checks HTTP's /readyz (every 500 ms; an answer
// may take 5 s on a loaded machine, a refused connection marks the node
// down at once); a node's POP3S server tracks that check, so a node found
// down gets no POP clients either. A stats page shows the checks' outcome.
func haproxyConfig(front map[string]string, backs ...map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 200
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout check 5s
frontend stats
  mode http
  bind %s
  stats enable
  stats uri /stats
`, front["stats"])
	for _, l := range []struct{ name, proxy, check string }{
		{"pop3s", "send-proxy-v2", ""},
		{"mx", "send-proxy", ""},
		{"dns-tcp", "send-proxy-v2", ""},
		{"http", "send-proxy-v2", "  option httpchk GET /readyz\n  http-check expect string ready\n"},
	} {
		if front[l.name] == "" {
			continue
		}
		fmt.Fprintf(&b, "frontend %[1]s_in\n  bind %[2]s\n  default_backend %[1]s\nbackend %[1]s\n%[3]s", l.name, front[l.name], l.check)
		for i, back := range backs {
			if back[l.name] == "" {
				continue
			}
			health := ""
			switch {
			case l.check != "":
				health = " check inter 500ms rise 1 fall 1"
			case l.name == "pop3s" && front["http"] != "" && back["http"] != "":
				health = fmt.Sprintf(" track http/s%d", i+1)
			}
			fmt.Fprintf(&b, "  server s%d %s %s source %s%s\n", i+1, back[l.name], l.proxy, haproxySource, health)
		}
	}
	return b.String()
}

// Issue 14, behind a load balancer: a POP3S login, an MX delivery, a DNS
// query over TCP and an autoconfig request pass through a real HAProxy (PROXY v2, and v1 on the
// MX) and skydeskd counts each client's own address. With one connection
// per client network, a second client through the same HAProxy is served
// while the first client's second connection is refused; the MX writes
// the client's address into Received; HAProxy's /readyz check passes.
func TestProxyProtocol_haproxy(t *testing.T) {
	dir := t.TempDir()
	popUser(t, dir, "alice@skydesk.jp", "alice-password-1", "delete")
	popUser(t, dir, "bob@skydesk.jp", "bob-password-12", "delete")
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "127.0.0.1:0", https: "", dns: "127.0.0.1:0", pop3s: "127.0.0.1:0", pop3: "", smtps: "", submission: "", mx: "127.0.0.1:0"}
limits: {pop: {connections_per_network: 1}, smtp: {connections_per_network: 1}, http: {connections_per_network: 1}, dns_tcp: {connections_per_network: 1}}
proxy_protocol: {listeners: [pop3s, mx, http, dns_tcp], trusted: [%s/32]}
`, dir, haproxySource)
	file := filepath.Join(dir, "skydeskd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	back, _ := serveInProcess(t, file, []string{"pop3s", "mx", "http", "dns-tcp"})
	front := map[string]string{"pop3s": freePort(t), "mx": freePort(t), "http": freePort(t), "dns-tcp": freePort(t), "stats": freePort(t)}
	startHAProxy(t, dir, haproxyConfig(front, back))
	waitFor(t, "haproxy's frontends", func() bool {
		c, err := net.DialTimeout("tcp", front["stats"], time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	tc := trustDir(t, dir, "localhost")

	t.Run("pop3s v2", func(t *testing.T) {
		a := popVia(t, clientA, front["pop3s"], tc, "alice@skydesk.jp", "alice-password-1")
		// Seen as HAProxy's address, B would share A's one slot.
		b := popVia(t, clientB, front["pop3s"], tc, "bob@skydesk.jp", "bob-password-12")
		b.quit()
		again := tls.Client(connlimittest.Dial(t, clientA, front["pop3s"]), tc)
		_ = again.SetDeadline(time.Now().Add(10 * time.Second))
		if err := again.Handshake(); err == nil {
			t.Fatal("client A's second connection was served over its network's cap of 1")
		}
		a.quit()
	})

	t.Run("mx v1", func(t *testing.T) {
		held := connlimittest.Dial(t, clientA, front["mx"])
		if l := firstLine(t, held); !strings.HasPrefix(l, "220 ") {
			t.Fatalf("client A: %q", l)
		}
		if err := mxVia(t, clientB, front["mx"], "alice@skydesk.jp", "Subject: via haproxy\r\n\r\nhello\r\n"); err != nil {
			t.Fatalf("delivery from client B: %v", err)
		}
		if l := firstLine(t, connlimittest.Dial(t, clientA, front["mx"])); !strings.HasPrefix(l, "421 4.7.0 Too many connections from your network") {
			t.Fatalf("client A's second connection: %q", l)
		}
		p := popVia(t, clientC, front["pop3s"], tc, "alice@skydesk.jp", "alice-password-1")
		msgs := p.messages()
		p.quit()
		if len(msgs) != 1 || !strings.Contains(msgs[0], "["+clientB+"]") || strings.Contains(msgs[0], haproxySource) {
			t.Fatalf("want one message received from [%s]:\n%q", clientB, msgs)
		}
	})

	t.Run("dns tcp v2", func(t *testing.T) {
		soa := func(c net.Conn) error {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			dc := &dns.Conn{Conn: c}
			m := new(dns.Msg)
			m.SetQuestion("skydesk.jp.", dns.TypeSOA)
			if err := dc.WriteMsg(m); err != nil {
				return err
			}
			_, err := dc.ReadMsg()
			return err
		}
		if err := soa(connlimittest.Dial(t, clientA, front["dns-tcp"])); err != nil {
			t.Fatalf("client A: %v", err)
		}
		if err := soa(connlimittest.Dial(t, clientB, front["dns-tcp"])); err != nil {
			t.Fatalf("client B: %v", err)
		}
		if err := soa(connlimittest.Dial(t, clientA, front["dns-tcp"])); err == nil {
			t.Fatal("client A's second connection was answered over its network's cap of 1")
		}
	})

	t.Run("http v2 and /readyz check", func(t *testing.T) {
		waitFor(t, "haproxy's /readyz check to pass", func() bool {
			resp, err := http.Get("http://" + front["stats"] + "/stats;csv")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "http,s1,") {
					return strings.Contains(line, ",UP,") && strings.Contains(line, "L7OK")
				}
			}
			return false
		})
		held := connlimittest.Dial(t, clientA, front["http"])
		if _, err := io.WriteString(held, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if l := firstLine(t, held); !strings.HasPrefix(l, "HTTP/1.1 200 ") {
			t.Fatalf("client A: %q", l)
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientB)}}
				return d.DialContext(ctx, network, addr)
			}}}
		resp, err := hc.Get("http://" + front["http"] + "/mail/config-v1.1.xml?emailaddress=alice%40skydesk.jp")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "<clientConfig") {
			t.Fatalf("autoconfig from client B: %d %q", resp.StatusCode, body)
		}
		if l := firstLine(t, connlimittest.Dial(t, clientA, front["http"])); !strings.HasPrefix(l, "HTTP/1.1 503 ") {
			t.Fatalf("client A's second connection: %q", l)
		}
	})
}

package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/internal/connlimit/connlimittest"
)

// Issue 13 §4, on a running `serve` with every listener: one address
// holding 1,000 idle connections to a listener (1,024 on DNS, its old
// cap) has its next one refused at once, and another address is answered
// there within a second.
func TestServe_idleFloodFromOneAddress(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "skydeskd.yaml")
	all := `listen: {http: "127.0.0.1:0", https: "127.0.0.1:0", dns: "127.0.0.1:0", pop3s: "127.0.0.1:0", pop3: "127.0.0.1:0", smtps: "127.0.0.1:0", submission: "127.0.0.1:0", mx: "127.0.0.1:0"}`
	if err := os.WriteFile(file, []byte(fmt.Sprintf("data_dir: %s\nlog: {format: json, level: info}\n%s\n", dir, all)), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, _ := serveInProcess(t, file, []string{"http", "https", "dns-tcp", "pop3s", "pop3", "smtps", "submission", "mx"})
	trust := trustDir(t, dir, "localhost")

	// Each check is one exchange as a client would start it.
	line := func(prefix string) func(net.Conn) error {
		return func(c net.Conn) error {
			got, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(got, prefix) {
				return fmt.Errorf("got %q, %v; want %q…", got, err, prefix)
			}
			return nil
		}
	}
	healthz := func(c net.Conn) error {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			return err
		}
		return line("HTTP/1.1 200 ")(c)
	}
	soa := func(c net.Conn) error {
		dc := &dns.Conn{Conn: c}
		m := new(dns.Msg)
		m.SetQuestion("skydesk.jp.", dns.TypeSOA)
		if err := dc.WriteMsg(m); err != nil {
			return err
		}
		r, err := dc.ReadMsg()
		if err == nil && r.Rcode != dns.RcodeSuccess {
			err = fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
		}
		return err
	}
	for _, tc := range []struct {
		listener string
		tls      bool
		check    func(net.Conn) error
		refused  string // what the attacker's next connection reads
	}{
		{"pop3s", true, line("+OK "), ""},
		{"pop3", false, line("+OK "), "-ERR [SYS/TEMP] too many connections from your network"},
		{"smtps", true, line("220 "), ""},
		{"submission", false, line("220 "), "421 4.7.0 Too many connections from your network"},
		{"mx", false, line("220 "), "421 4.7.0 Too many connections from your network"},
		{"http", false, healthz, "HTTP/1.1 503 Service Unavailable"},
		{"https", true, healthz, ""},
		{"dns-tcp", false, soa, ""},
	} {
		t.Run(tc.listener, func(t *testing.T) {
			addr := addrs[tc.listener]
			n := 1000
			if tc.listener == "dns-tcp" {
				n = 1024
			}
			connlimittest.Flood(t, connlimittest.Attacker, addr, n)
			next := connlimittest.Dial(t, connlimittest.Attacker, addr)
			_ = next.SetDeadline(time.Now().Add(time.Second))
			if b, err := io.ReadAll(next); err != nil || !strings.HasPrefix(string(b), tc.refused) || tc.refused == "" && len(b) > 0 {
				t.Fatalf("attacker's next connection: %q, %v; want %q… and EOF at once", b, err, tc.refused)
			}
			start := time.Now()
			c := connlimittest.Dial(t, connlimittest.Other, addr)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.tls {
				c = tls.Client(c, trust)
			}
			if err := tc.check(c); err != nil {
				t.Fatalf("another address: %v", err)
			}
			connlimittest.Within(t, start, time.Second, "answering another address")
		})
	}
}

package main

import (
	"crypto/tls"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// popAttempt is one POP3S login from the local address from (a loopback
// address: the servers listen on 127.0.0.1, and Linux answers every
// 127/8 address there): the PASS reply and how long it took.
func popAttempt(t *testing.T, addr, from string, tc *tls.Config, user, pw string) (string, time.Duration) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	p := &popConn{t: t, text: textproto.NewConn(c)}
	p.cmd("", "+OK")
	p.cmd("USER "+user, "+OK")
	start := time.Now()
	l := p.cmd("PASS "+pw, "")
	took := time.Since(start)
	p.cmd("QUIT", "")
	return l, took
}

// Issue 14: failed logins spread over two nodes on one PostgreSQL
// database add up to one throttle. Wrong POP passwords alternated
// between node A and node B get the delays and the lock the same number
// gets on one node (1 free failure, then 0.5 s, 1 s, then the 4th locks
// the pair); after it, a new client of the owner from the locked network
// is refused on both nodes, while the owner's cached client (node A) and
// a client from another network (node B) get in (issue 13's model).
func TestNodes_failedLoginsAddUpToOneThrottle(t *testing.T) {
	url := pgtest.URL(t)
	extra := "database: {driver: postgres, url: \"" + url + "\"}\n" +
		"auth: {failures_before_delay: 1, failures_before_lock: 4, lock_duration: 1m}\n"
	dirA, dirB := t.TempDir(), t.TempDir()
	fileA, fileB := writeSMTPConfig(t, dirA, extra), writeSMTPConfig(t, dirB, extra)
	for _, u := range []string{"taro@skydesk.jp", "hanako@skydesk.jp"} {
		mustCLI(t, dirA, "right-password\n", "user", "add", u, "--password-stdin", "--config", fileA)
		mustCLI(t, dirA, "", "pop", "set", u, "--access", "all", "--config", fileA)
	}
	addrsA, _ := serveInProcess(t, fileA, []string{"pop3s"})
	addrsB, _ := serveInProcess(t, fileB, []string{"pop3s"})
	nodes := []struct {
		name, addr string
		tc         *tls.Config
	}{
		{"A", addrsA["pop3s"], trustDir(t, dirA, "pop.skydesk.jp")},
		{"B", addrsB["pop3s"], trustDir(t, dirB, "pop.skydesk.jp")},
	}
	const attacker, elsewhere = "127.0.0.1", "127.0.0.2"

	// The owner's client logs in on node A before the guessing: cached there.
	if l, _ := popAttempt(t, nodes[0].addr, attacker, nodes[0].tc, "taro@skydesk.jp", "right-password"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("owner's first login on node A: %q", l)
	}
	// wantDelay is the policy's wait before each failure's answer.
	wantDelay := []time.Duration{0, 500 * time.Millisecond, time.Second, 0}
	guesses := func(user string, node func(i int) int) {
		t.Helper()
		for i, want := range wantDelay {
			n := nodes[node(i)]
			l, took := popAttempt(t, n.addr, attacker, n.tc, user, "wrong-password")
			t.Logf("%s failure %d on node %s: %.11s after %s", user, i+1, n.name, l, took.Round(time.Millisecond))
			if !strings.HasPrefix(l, "-ERR [AUTH]") || took < want {
				t.Errorf("%s failure %d on node %s: %q after %s; want -ERR [AUTH] after at least %s",
					user, i+1, n.name, l, took, want)
			}
		}
	}
	locked := func(user string) {
		t.Helper()
		for _, n := range nodes {
			// node A has cached "right-password" for taro only.
			pw := "another-guess"
			if n.name == "B" {
				pw = "right-password"
			}
			if l, _ := popAttempt(t, n.addr, attacker, n.tc, user, pw); !strings.HasPrefix(l, "-ERR [LOGIN-DELAY]") {
				t.Errorf("%s from the locked network on node %s: %q; want -ERR [LOGIN-DELAY]", user, n.name, l)
			}
		}
	}
	// The same four failures on one node, then spread over both.
	guesses("hanako@skydesk.jp", func(int) int { return 0 })
	locked("hanako@skydesk.jp")
	guesses("taro@skydesk.jp", func(i int) int { return i % 2 })
	locked("taro@skydesk.jp")

	if l, _ := popAttempt(t, nodes[0].addr, attacker, nodes[0].tc, "taro@skydesk.jp", "right-password"); !strings.HasPrefix(l, "+OK") {
		t.Errorf("owner's cached client on node A behind the locked network: %q", l)
	}
	if l, _ := popAttempt(t, nodes[1].addr, elsewhere, nodes[1].tc, "taro@skydesk.jp", "right-password"); !strings.HasPrefix(l, "+OK") {
		t.Errorf("owner's new client from another network on node B: %q", l)
	}
}

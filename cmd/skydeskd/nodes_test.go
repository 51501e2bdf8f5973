package main

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// waitLeaseFree logs in until the maildrop lease of a killed process has
// expired (pop.lease_ttl), then logs out: a polled condition with a
// deadline.
func waitLeaseFree(t *testing.T, addr string, tc *tls.Config, user, pw string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p := popDial(t, addr, tc)
		p.cmd("USER "+user, "+OK")
		l := p.cmd("PASS "+pw, "")
		if strings.HasPrefix(l, "+OK") {
			p.cmd("QUIT", "+OK")
			return
		}
		p.cmd("QUIT", "")
		if !strings.HasPrefix(l, "-ERR [IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("waiting for the killed session's lease to end: %q", l)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// Two nodes on one PostgreSQL database: `skydeskd domain add` run with
// node B's configuration is answered by node A's DNS within a second
// (LISTEN/NOTIFY, not the 30 s safety-net poll), and a removal too.
func TestNodes_domainAddReachesOtherNodesDNS(t *testing.T) {
	url := pgtest.URL(t)
	db := "database: {driver: postgres, url: \"" + url + "\"}\n"
	fileA := dnsConfig(t, t.TempDir(), "a.yaml", "", db)
	fileB := dnsConfig(t, t.TempDir(), "b.yaml", "", db)
	dnsA, _ := serveDNS(t, fileA)
	serveDNS(t, fileB)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsA)
	}}
	answered := func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		_, srvs, err := r.LookupSRV(ctx, "pop3s", "tcp", "example.co.jp")
		return err == nil && len(srvs) == 1 && srvs[0].Target == "poppro.skydesk.jp."
	}
	if answered() {
		t.Fatal("node A answers example.co.jp before it is added")
	}
	within := func(what string, want bool, start time.Time) {
		t.Helper()
		for answered() != want {
			if time.Since(start) > time.Second {
				t.Fatalf("%s: node A's DNS not updated within 1 s", what)
			}
			time.Sleep(10 * time.Millisecond) // polling another process's answer, bounded above
		}
		t.Logf("%s: answered by node A %v after the command started", what, time.Since(start))
	}
	start := time.Now()
	if code, _, stderr := dnsCLI(t, "domain", "add", "example.co.jp", "--config", fileB); code != exitOK {
		t.Fatalf("domain add via node B: exit %d: %s", code, stderr)
	}
	within("domain add via node B", true, start)
	start = time.Now()
	if code, _, stderr := dnsCLI(t, "domain", "remove", "example.co.jp", "--config", fileB); code != exitOK {
		t.Fatalf("domain remove via node B: exit %d: %s", code, stderr)
	}
	within("domain remove via node B", false, start)
}

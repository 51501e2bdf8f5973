package dnssrv_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/internal/connlimit/connlimittest"
	"github.com/skydesk/skydeskd/profiles"
)

// startTCP serves DNS over TCP only, under lim, until the test ends.
func startTCP(t *testing.T, lim dnssrv.TCPLimits) string {
	t.Helper()
	dom := &domains{serial: 42, list: []string{"example.co.jp"}}
	h, err := dnssrv.NewHandler(testOptions(profiles.NewResolver(settings, dom)), dom.snapshot)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := dnssrv.NewServer(h, nil, l)
	srv.SetTCPLimits(lim)
	run(t, srv)
	return l.Addr().String()
}

// askFrom sends one SOA query over TCP from the loopback address src.
func askFrom(t *testing.T, src, addr string) error {
	t.Helper()
	c := &dns.Conn{Conn: connlimittest.Dial(t, src, addr)}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMsg(query("example.co.jp.", dns.TypeSOA, 0)); err != nil {
		return err
	}
	r, err := c.ReadMsg()
	if err == nil && r.Rcode != dns.RcodeSuccess {
		t.Fatalf("answer %s", dns.RcodeToString[r.Rcode])
	}
	return err
}

// Issue 13 §4: 1,024 idle TCP connections from one address used to take
// every slot; now they take their network's share and another address is
// answered within a second.
func TestServer_TCP_idleFloodFromOneAddress(t *testing.T) {
	addr := startTCP(t, dnssrv.TCPLimits{})
	connlimittest.Flood(t, connlimittest.Attacker, addr, 1024)
	start := time.Now()
	if err := askFrom(t, connlimittest.Other, addr); err != nil {
		t.Fatalf("another address: %v", err)
	}
	connlimittest.Within(t, start, time.Second, "answering another address")
}

// Over its network's share (or the total) a connection is closed at once,
// unanswered; the connections within it are served.
func TestServer_TCP_overCap(t *testing.T) {
	addr := startTCP(t, dnssrv.TCPLimits{MaxConnections: 3, MaxConnectionsPerNetwork: 2})
	connlimittest.Flood(t, connlimittest.Attacker, addr, 2)
	closedAtOnce := func(src string) {
		t.Helper()
		c := connlimittest.Dial(t, src, addr)
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("over the cap: read %d, %v; want EOF at once", n, err)
		}
	}
	closedAtOnce(connlimittest.Attacker)
	// The third and last slot (askFrom keeps its connection open).
	if err := askFrom(t, connlimittest.Other, addr); err != nil {
		t.Fatalf("another address within the total: %v", err)
	}
	closedAtOnce(connlimittest.Other)
}

// A connection that sends no query is closed after FirstQueryTimeout.
func TestServer_TCP_firstQueryDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr := startTCP(t, dnssrv.TCPLimits{FirstQueryTimeout: timeout})
	start := time.Now()
	c := connlimittest.Dial(t, connlimittest.Attacker, addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: %v, want EOF", err)
	}
	if d := time.Since(start); d < timeout || d > timeout+time.Second {
		t.Fatalf("silent connection closed after %v, want about %v", d, timeout)
	}
}

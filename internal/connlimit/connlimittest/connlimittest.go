// Package connlimittest floods a listener from one loopback address, for
// the tests showing that another address is still served (issue 13 §4).
// On Linux every 127.0.0.0/8 address is loopback, so 127.0.0.1 and
// 127.0.0.2 are two clients on two /32 networks.
package connlimittest

import (
	"net"
	"testing"
	"time"
)

// Attacker and Other are the two client addresses of the flood tests.
const (
	Attacker = "127.0.0.1"
	Other    = "127.0.0.2"
)

// Dial opens a TCP connection to addr from the loopback address src,
// closed when the test ends.
func Dial(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Flood opens n connections from src to addr and sends nothing on them;
// they stay open (those the server keeps) until the test ends.
func Flood(t testing.TB, src, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = Dial(t, src, addr)
	}
	return conns
}

// Within fails t when more than d passed since start: "another address is
// served within 1 s".
func Within(t testing.TB, start time.Time, d time.Duration, what string) {
	t.Helper()
	if took := time.Since(start); took > d {
		t.Fatalf("%s took %v, want under %v", what, took, d)
	}
}

package smtpd_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/smtpd"
)

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// Issue 13 §4: one address opening 1,000 idle connections to a listener
// takes only its network's share; another address is still greeted within
// a second, on the MX, on 465 and on 587.
func TestServer_idleFloodFromOneAddress(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	for _, tc := range []struct {
		name     string
		addr     string
		implicit bool
	}{{"mx", f.mx, false}, {"smtps", f.smtps, true}, {"submission", f.submission, false}} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 1000 {
				if _, err := dialFrom(t, "127.0.0.1", tc.addr); err != nil {
					t.Fatalf("attacker's connection %d: %v", i, err)
				}
			}
			start := time.Now()
			c, err := dialFrom(t, "127.0.0.2", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.implicit {
				tlsc := tls.Client(c, f.clientTLS)
				if err := tlsc.Handshake(); err != nil {
					t.Fatalf("handshake of another address: %v", err)
				}
				c = tlsc
			}
			greeting, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(greeting, "220 ") {
				t.Fatalf("another address got %q, %v; want a 220 greeting", greeting, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("another address was greeted after %v, want under 1s", d)
			}
		})
	}
}

// A plaintext client over its network's share is told why.
func TestServer_perNetworkReply(t *testing.T) {
	f := newFixture(t, fixtureOpts{tune: func(o *smtpd.Options) { o.MaxConnectionsPerNetwork = 2 }})
	f.dial(t, f.mx, false)
	f.dial(t, f.mx, false)
	c, err := dialFrom(t, "127.0.0.1", f.mx)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if b, _ := io.ReadAll(c); string(b) != "421 4.7.0 Too many connections from your network, try again later\r\n" {
		t.Fatalf("third connection from one address: %q", b)
	}
	// Another address is not affected.
	other, err := dialFrom(t, "127.0.0.2", f.mx)
	if err != nil {
		t.Fatal(err)
	}
	_ = other.SetDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(other).ReadString('\n'); !strings.HasPrefix(line, "220 ") {
		t.Fatalf("another address got %q, %v", line, err)
	}
}

// Issue 13 §4: a connection to 465 that never sends a ClientHello is
// closed after HandshakeTimeout, not after the command timeout.
func TestServer_handshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := newFixture(t, fixtureOpts{tune: func(o *smtpd.Options) { o.HandshakeTimeout = timeout }})
	start := time.Now() // before the server's clock starts
	c, err := dialFrom(t, "127.0.0.1", f.smtps)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Fatalf("silent client: read %q, %v; want the connection closed", b, err)
	}
	if d := time.Since(start); d < timeout || d > 5*time.Second {
		t.Fatalf("closed after %v, want about %v", d, timeout)
	}
	// The listener still serves a client that does shake hands.
	f.dial(t, f.smtps, true).must("QUIT", 221)
}

// Issue 13 §4: a plaintext client that never sends its first command
// loses its connection slot after FirstCommandTimeout, not after the five
// minutes every later command gets.
func TestServer_firstCommandTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := newFixture(t, fixtureOpts{tune: func(o *smtpd.Options) { o.FirstCommandTimeout = timeout }})
	for _, addr := range []string{f.mx, f.submission} {
		start := time.Now()
		c, err := dialFrom(t, "127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		if greeting, err := r.ReadString('\n'); !strings.HasPrefix(greeting, "220 ") {
			t.Fatalf("greeting %q, %v", greeting, err)
		}
		rest, err := io.ReadAll(r) // go-smtp's "421 … timeout", then the close
		if err != nil {
			t.Fatalf("silent client: %v", err)
		}
		if d := time.Since(start); d < timeout || d > 5*time.Second {
			t.Fatalf("silent client closed after %v (%q), want about %v", d, rest, timeout)
		}
	}
	// A client that speaks at once is served as before.
	w := f.dial(t, f.mx, false)
	w.must("EHLO mta.example.org", 250)
	w.must("QUIT", 221)
}

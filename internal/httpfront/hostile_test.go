package httpfront

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/internal/connlimit"
	"github.com/skydesk/skydeskd/internal/connlimit/connlimittest"
)

// startLimited serves a Front with o on loopback: plain HTTP, or TLS
// through ServeTLS when tlsConf is set.
func startLimited(t *testing.T, srv *http.Server, tlsConf *tls.Config, o Options) string {
	t.Helper()
	l := listen(t)
	f := NewWithOptions(testResponder(), srv, o)
	serve := f.Serve
	if tlsConf != nil {
		srv.TLSConfig = tlsConf
		serve = f.ServeTLS
	}
	done := make(chan error, 1)
	go func() { done <- serve(l) }()
	t.Cleanup(func() {
		_ = f.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

// getHot asks for /hot on c and returns the status line.
func getHot(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /hot HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return line
}

// Issue 13 §4: one address holding 1,000 idle connections takes only its
// network's share; its next connection is refused at once and another
// address is answered within a second, on HTTP and on HTTPS (whose idle
// connections never send a ClientHello).
func TestFront_idleFloodFromOneAddress(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		want string // what the attacker's 1,000th connection reads
	}{{"http", nil, tooBusy}, {"https", serverTLS, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startLimited(t, testServer(nil), tc.tls, Options{Limits: connlimit.Limits{PerNetwork: 64}})
			flood := connlimittest.Flood(t, connlimittest.Attacker, addr, 1000)
			last := flood[len(flood)-1]
			_ = last.SetDeadline(time.Now().Add(time.Second))
			if b, err := io.ReadAll(last); string(b) != tc.want || err != nil {
				t.Fatalf("attacker's 1,000th connection: %q, %v; want %q and EOF", b, err, tc.want)
			}
			start := time.Now()
			c := connlimittest.Dial(t, connlimittest.Other, addr)
			if tc.tls != nil {
				c = tls.Client(c, clientTLS)
			}
			if got := getHot(t, c); got != "HTTP/1.1 200 OK\r\n" {
				t.Fatalf("another address got %q", got)
			}
			connlimittest.Within(t, start, time.Second, "answering another address")
		})
	}
}

// Issue 13 §6: a request head must arrive within ReadHeaderTimeout of the
// wait for its first byte. A client that sent its first byte just before
// the timeout, then trickled the rest, used to get the timeout again from
// that byte (the front set it anew once a head began) or, with a head the
// front hands to net/http, from the hand-off (net/http's own
// ReadHeaderTimeout): 19 s where 10 s is configured.
func TestFront_headDeadlineFromFirstWait(t *testing.T) {
	const timeout = time.Second
	for _, tc := range []struct{ name, first string }{
		{"front", "GET /hot HTTP/1.1\r\n"},
		{"handed off", "GET /hot HTTP/1.1\nHost: a\n"}, // bare LF: net/http's to judge
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testServer(reference(testResponder()))
			srv.ReadHeaderTimeout = timeout
			addr := startLimited(t, srv, nil, Options{})
			c := connlimittest.Dial(t, connlimittest.Attacker, addr)
			start := time.Now()
			_ = c.SetDeadline(start.Add(10 * time.Second))
			// The attack itself is timed: the first byte at 80% of the
			// timeout, then a header byte every 50 ms, never ending.
			time.Sleep(timeout * 8 / 10)
			go func() {
				if _, err := io.WriteString(c, tc.first); err != nil {
					return
				}
				for {
					if _, err := c.Write([]byte("X")); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			b, err := io.ReadAll(c)
			if err != nil && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("read: %v", err)
			}
			if strings.HasPrefix(string(b), "HTTP/1.1 200") {
				t.Fatalf("answer %q", b)
			}
			if d := time.Since(start); d > timeout*13/10 {
				t.Fatalf("slow head held the connection %v, configured %v", d, timeout)
			}
		})
	}
}

// A TLS client that never sends a ClientHello is dropped after
// Options.HandshakeTimeout, shorter here than the head timeout.
func TestFront_handshakeDeadlineOption(t *testing.T) {
	const timeout = 300 * time.Millisecond
	serverTLS, clientTLS := testTLS(t)
	addr := startLimited(t, testServer(nil), serverTLS, Options{HandshakeTimeout: timeout})
	start := time.Now()
	silent := connlimittest.Dial(t, connlimittest.Attacker, addr)
	// Served meanwhile: the handshake does not hold up the accept loop.
	if got := getHot(t, tls.Client(connlimittest.Dial(t, connlimittest.Attacker, addr), clientTLS)); got != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("second client got %q", got)
	}
	_ = silent.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: %v, want EOF", err)
	}
	if d := time.Since(start); d < timeout || d > timeout+time.Second {
		t.Fatalf("silent connection closed after %v, want about %v", d, timeout)
	}
}

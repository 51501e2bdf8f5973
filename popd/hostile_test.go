package popd_test

import (
	"bufio"
	"crypto/tls"
	"io"

	"testing"
	"time"

	"github.com/skydesk/skydeskd/internal/connlimit/connlimittest"
	"github.com/skydesk/skydeskd/popd"
)

// Issue 13 §4: one address holding 1,000 idle connections takes only its
// network's share of a listener; another address is greeted within a
// second, on POP3S (whose idle connections never send a ClientHello) and
// on POP3.
func TestServer_idleFloodFromOneAddress(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{MaxConnections: 1000})
	for _, tc := range []struct {
		name     string
		addr     string
		implicit bool
	}{{"pop3s", ts.tlsAddr, true}, {"pop3", ts.plainAddr, false}} {
		t.Run(tc.name, func(t *testing.T) {
			flood := connlimittest.Flood(t, connlimittest.Attacker, tc.addr, 1000)
			// The attacker's last connection is refused at once (an
			// implicit-TLS one without a word).
			want := "-ERR [SYS/TEMP] too many connections from your network, try again later\r\n"
			if tc.implicit {
				want = ""
			}
			last := flood[len(flood)-1]
			_ = last.SetDeadline(time.Now().Add(time.Second))
			if b, err := io.ReadAll(last); string(b) != want || err != nil {
				t.Fatalf("attacker's 1,000th connection: %q, %v; want %q and EOF", b, err, want)
			}
			start := time.Now()
			c := connlimittest.Dial(t, connlimittest.Other, tc.addr)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.implicit {
				c = tls.Client(c, ts.client)
			}
			cl := &client{t: t, conn: c, r: bufio.NewReader(c)}
			cl.expect("+OK pop.skydesk.jp POP3 server ready")
			connlimittest.Within(t, start, time.Second, "greeting another address")
		})
	}
}

// Over its network's share a plaintext client is told why, and over the
// listener's total too; an implicit-TLS client is closed before any
// handshake.
func TestServer_overCapReplies(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{MaxConnections: 3, MaxConnectionsPerNetwork: 2})
	refused := func(addr, src, want string) {
		t.Helper()
		c := connlimittest.Dial(t, src, addr)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(c); string(b) != want || err != nil {
			t.Fatalf("over the cap: %q, %v; want %q then EOF", b, err, want)
		}
	}
	ts.dialPlain(t)
	ts.dialPlain(t)
	refused(ts.plainAddr, connlimittest.Attacker, "-ERR [SYS/TEMP] too many connections from your network, try again later\r\n")
	other := connlimittest.Dial(t, connlimittest.Other, ts.plainAddr)
	(&client{t: t, conn: other, r: bufio.NewReader(other)}).expect("+OK pop.skydesk.jp POP3 server ready")
	refused(ts.plainAddr, connlimittest.Other, "-ERR [SYS/TEMP] too many connections, try again later\r\n")
	// The TLS listener has caps of its own.
	ts.dial(t)
	ts.dial(t)
	refused(ts.tlsAddr, connlimittest.Attacker, "")
}

// A connection to POP3S that never sends a ClientHello is closed after
// HandshakeTimeout, and does not hold up the next client meanwhile.
func TestServer_handshakeDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := newTestServer(t, newMem(t), popd.Options{HandshakeTimeout: timeout})
	start := time.Now()
	silent := connlimittest.Dial(t, connlimittest.Attacker, ts.tlsAddr)
	ts.dial(t) // served while the silent one waits
	_ = silent.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: %v, want EOF", err)
	}
	if d := time.Since(start); d < timeout || d > timeout+time.Second {
		t.Fatalf("silent connection closed after %v, want about %v", d, timeout)
	}
}

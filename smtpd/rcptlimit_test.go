package smtpd_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"testing"
	"time"
)

// rcptUntil421 sends RCPTs to unknown users of a local domain, one at a
// time, until the MX answers 421 or n were sent; it returns how many got
// 550 and whether a 421 came. After a 421 the server must have closed the
// connection.
func rcptUntil421(t *testing.T, w *wire, start, n int) (refused int, closed bool) {
	t.Helper()
	for i := range n {
		code, text := w.cmd(fmt.Sprintf("RCPT TO:<nobody%d@skydesk.jp>", start+i))
		switch code {
		case 550:
			refused++
		case 421:
			_ = w.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := w.text.ReadLine(); !errors.Is(err, io.EOF) {
				t.Fatalf("after 421 %q: read %v, want the connection closed", text, err)
			}
			return refused, true
		default:
			t.Fatalf("RCPT %d: %d %q", i, code, text)
		}
	}
	return refused, false
}

// Issue 13 §5: 2,000 RCPTs to unknown users on one connection get 20
// answers, then 421 4.7.0 and the connection is closed; across
// reconnections the client network gets 100 answers in all, after which
// even an existing mailbox gets 421 (a 250 would tell); another network
// is served.
func TestMX_refusedRecipientsLimited(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.dial(t, f.mx, false)
	w.must("EHLO scanner.example", 250)
	w.must("MAIL FROM:<probe@example.org>", 250)
	refused, closed := rcptUntil421(t, w, 0, 2000)
	if !closed || refused != 20 {
		t.Fatalf("one connection: %d refusals, closed %v; want 20 then 421 and close", refused, closed)
	}
	total, sent := refused, refused+1
	for sent < 2000 {
		w := f.dial(t, f.mx, false)
		w.must("EHLO scanner.example", 250)
		w.must("MAIL FROM:<probe@example.org>", 250)
		n, closed := rcptUntil421(t, w, sent, 2000-sent)
		if !closed {
			t.Fatalf("connection at %d RCPTs never got 421", sent)
		}
		total += n
		sent += n + 1
		if n == 0 {
			break
		}
	}
	if total != 100 {
		t.Fatalf("%d refusals across connections, want 100", total)
	}
	w = f.dial(t, f.mx, false)
	w.must("EHLO scanner.example", 250)
	w.must("MAIL FROM:<probe@example.org>", 250)
	if code, text := w.cmd("RCPT TO:<" + taro + ">"); code != 421 {
		t.Fatalf("existing mailbox from a limited network: %d %q, want 421", code, text)
	}
	// Another client network (127.0.0.2 on loopback) is served.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", f.mx)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	w = &wire{t: t, conn: c, text: textproto.NewConn(c)}
	w.expect(220)
	w.must("EHLO other.example", 250)
	w.must("MAIL FROM:<someone@example.org>", 250)
	w.must("RCPT TO:<"+taro+">", 250)
	w.must("RCPT TO:<nobody@skydesk.jp>", 550)
}

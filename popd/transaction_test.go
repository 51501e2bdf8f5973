package popd_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/popd"
)

func TestServer_Transaction(t *testing.T) {
	be := newMem(t)
	m1 := "From: a@example.org\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\nmiddle . dot\r\n.\r\nend\r\n"
	m2 := "Subject: no final newline\r\n\r\nline 1\r\nline 2\r\nline 3"
	m3 := "Subject: big\r\n\r\n" + strings.Repeat(".x"+strings.Repeat("y", 997)+"\r\n", 100) // > write buffer
	for _, m := range []string{m1, m2, m3} {
		be.Deliver("taro@skydesk.jp", []byte(m))
	}
	ts := newTestServer(t, be, popd.Options{})
	c := ts.dial(t)
	c.login("taro@skydesk.jp", "secret pw")
	total := len(m1) + len(m2) + len(m3)

	c.cmd("STAT", fmt.Sprintf("+OK 3 %d", total))
	c.cmd("LIST", fmt.Sprintf("+OK 3 messages (%d octets)", total))
	if got, want := c.multi(), fmt.Sprintf("1 %d\r\n2 %d\r\n3 %d\r\n", len(m1), len(m2), len(m3)); got != want {
		t.Errorf("LIST = %q, want %q", got, want)
	}
	c.send("LIST 2")
	c.expect(fmt.Sprintf("+OK 2 %d", len(m2)))
	c.cmd("UIDL", "+OK")
	if got := c.multi(); got != "1 m1\r\n2 m2\r\n3 m3\r\n" {
		t.Errorf("UIDL = %q", got)
	}
	c.send("UIDL 3")
	c.expect("+OK 3 m3")

	// RETR: the size announced is the size listed, the body comes back
	// byte for byte after un-stuffing (RFC 1939 §3).
	c.send("RETR 1")
	c.expect(fmt.Sprintf("+OK %d octets", len(m1)))
	raw := c.rawMulti()
	if !bytes.Contains(raw, []byte("\r\n..leading dot\r\n...two\r\nmiddle . dot\r\n..\r\nend\r\n.\r\n")) {
		t.Errorf("RETR 1 not dot-stuffed: %q", raw)
	}
	c.cmd("RETR 3", "+OK")
	if got := c.multi(); got != m3 {
		t.Errorf("RETR 3: %d octets back, want %d", len(got), len(m3))
	}
	// A body without a final CRLF still ends with CRLF "." CRLF.
	c.cmd("RETR 2", "+OK")
	if got := c.multi(); got != m2+"\r\n" {
		t.Errorf("RETR 2 = %q", got)
	}

	// TOP: headers, the blank line, n body lines (RFC 1939 §7).
	for _, tc := range []struct {
		cmd, want string
	}{
		{"TOP 1 0", "From: a@example.org\r\nSubject: dots\r\n\r\n"},
		{"TOP 1 2", "From: a@example.org\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\n"},
		{"TOP 2 99", m2 + "\r\n"},
	} {
		c.cmd(tc.cmd, "+OK")
		if got := c.multi(); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.cmd, got, tc.want)
		}
	}

	for _, tc := range []struct{ cmd, want string }{
		{"RETR 0", "-ERR no such message, only 3 messages in maildrop"},
		{"RETR 4", "-ERR no such message"},
		{"RETR -1", "-ERR invalid message number"},
		{"RETR 1x", "-ERR invalid message number"},
		{"TOP 1", "-ERR syntax: TOP msg lines"},
		{"TOP 1 -1", "-ERR invalid line count"},
		{"LIST 9999999999", "-ERR invalid message number"},
		{"UIDL 0", "-ERR no such message"},
	} {
		c.cmd(tc.cmd, tc.want)
	}

	// DELE marks; marked messages are hidden and cannot be referenced.
	c.cmd("DELE 2", "+OK message 2 deleted")
	c.cmd("DELE 2", "-ERR message 2 already deleted")
	for _, cmd := range []string{"RETR 2", "TOP 2 0", "LIST 2", "UIDL 2"} {
		c.cmd(cmd, "-ERR message 2 already deleted")
	}
	c.cmd("STAT", fmt.Sprintf("+OK 2 %d", len(m1)+len(m3)))
	c.cmd("LIST", "+OK 2 messages")
	if got := c.multi(); got != fmt.Sprintf("1 %d\r\n3 %d\r\n", len(m1), len(m3)) {
		t.Errorf("LIST after DELE = %q", got)
	}
	// RSET unmarks.
	c.cmd("RSET", fmt.Sprintf("+OK maildrop has 3 messages (%d octets)", total))
	c.cmd("LIST 2", "+OK 2 ")
	c.cmd("DELE 1", "+OK")
	c.cmd("DELE 3", "+OK")
	c.cmd("NOOP", "+OK")
	c.cmd("QUIT", "+OK bye, 2 messages deleted")
	c.closed()
	if got := be.UIDs("taro@skydesk.jp"); !slices.Equal(got, []string{"m2"}) {
		t.Errorf("after QUIT: %v, want [m2]", got)
	}
}

// rawMulti reads a multi-line body up to and including "." CRLF, exactly
// as sent.
func (c *client) rawMulti() []byte {
	c.t.Helper()
	var b []byte
	for {
		l := c.line()
		b = append(b, l+"\r\n"...)
		if l == "." {
			return b
		}
	}
}

// RFC 1939 §6: without QUIT nothing is removed.
func TestServer_Dele_dropAppliesNothing(t *testing.T) {
	be := newMem(t)
	be.Deliver("taro@skydesk.jp", []byte("Subject: 1\r\n\r\nx\r\n"))
	be.Deliver("taro@skydesk.jp", []byte("Subject: 2\r\n\r\nx\r\n"))
	ts := newTestServer(t, be, popd.Options{})
	c := ts.dial(t)
	c.login("taro@skydesk.jp", "secret pw")
	c.cmd("DELE 1", "+OK")
	c.cmd("DELE 2", "+OK")
	c.conn.Close()
	// The lock is released when the server notices; the next session sees
	// both messages.
	d := ts.dial(t)
	d.cmd("USER taro@skydesk.jp", "+OK")
	deadline := time.Now().Add(10 * time.Second)
	for loggedIn := false; !loggedIn; {
		if time.Now().After(deadline) {
			t.Fatal("maildrop still locked 10s after the client dropped")
		}
		d.send("PASS secret pw")
		got := d.line()
		if strings.HasPrefix(got, "+OK") {
			if got != "+OK logged in, 2 messages (34 octets)" {
				t.Fatalf("after drop: %q", got)
			}
			loggedIn = true
			continue
		}
		if !strings.HasPrefix(got, "-ERR [IN-USE]") {
			t.Fatalf("got %q", got)
		}
		d.cmd("USER taro@skydesk.jp", "+OK")
	}
	if got := be.UIDs("taro@skydesk.jp"); len(got) != 2 {
		t.Errorf("dropped session removed messages: %v", got)
	}
}

func TestServer_inUse(t *testing.T) {
	ts := newTestServer(t, newMem(t), popd.Options{})
	a := ts.dial(t)
	a.login("taro@skydesk.jp", "secret pw")
	b := ts.dial(t)
	b.cmd("USER taro@skydesk.jp", "+OK")
	b.cmd("PASS secret pw", "-ERR [IN-USE] maildrop already locked")
	a.cmd("QUIT", "+OK")
	a.closed()
	b.login("taro@skydesk.jp", "secret pw")
}

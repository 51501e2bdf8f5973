package popstore_test

import (
	"crypto/tls"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// waitClosed reads until the server closes the connection: popd calls
// Logout (and so records the session) before it closes, so after EOF the
// record is in the store.
func (c *popClient) waitClosed() {
	c.t.Helper()
	if tc, ok := c.nc.(*tls.Conn); ok {
		_ = tc.CloseWrite() // a dropped client: close_notify, then nothing
	}
	if _, err := io.Copy(io.Discard, c.nc); err != nil {
		c.t.Fatalf("waiting for the server to close: %v", err)
	}
}

// POP "from a day" lists mail received at or after 00:00:00 of that day
// in Asia/Tokyo, through a real POP3 session: 23:59:59.999999999 JST the
// day before is not listed, 00:00:00 JST is.
func TestMaildrop_sinceDay_JSTBoundary(t *testing.T) {
	f := newPOPFixture(t)
	storetest.AddUser(t, f.s, "day@skydesk.jp", "pw-day-0123")
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, h, m, s, ns int) string {
		uids, err := f.s.Deliver(ctx, store.Delivery{Recipients: []string{"day@skydesk.jp"},
			Body: []byte("Subject: x\r\n\r\nx\r\n"), Received: time.Date(2026, 3, day, h, m, s, ns, tokyo)})
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(uids[0], 10)
	}
	before := at(1, 23, 59, 59, 999_999_999) // 2026-03-01T14:59:59.999999999Z
	first := at(2, 0, 0, 0, 0)               // 2026-03-01T15:00:00Z
	next := at(2, 23, 59, 59, 0)
	for _, tc := range []struct {
		day  string
		want []string
	}{
		{"2026-03-01", []string{before, first, next}},
		{"2026-03-02", []string{first, next}},
		{"2026-03-03", nil},
	} {
		d, err := store.ParsePOPDay(tc.day, tokyo, time.Date(2026, 3, 10, 0, 0, 0, 0, tokyo))
		if err != nil {
			t.Fatal(err)
		}
		since := store.POPSince
		if _, err := f.s.SetPOP(ctx, "day@skydesk.jp", store.POPUpdate{Access: &since, Day: &d}); err != nil {
			t.Fatal(err)
		}
		if got := f.listing(t, "day@skydesk.jp", "pw-day-0123"); !slices.Equal(got, tc.want) {
			t.Errorf("since %s JST: UIDL %v, want %v (before %s, first %s, next %s)", tc.day, got, tc.want, before, first, next)
		}
	}
}

// The last POP session is recorded at the session's end, by QUIT or a
// dropped connection: time, client address, and how many distinct
// messages RETR sent (TOP and a second RETR of one message do not count).
func TestMaildrop_lastSession(t *testing.T) {
	f := newPOPFixture(t)
	storetest.AddUser(t, f.s, "last@skydesk.jp", "pw-last-0123")
	for range 3 {
		deliver(t, f.s, "last@skydesk.jp", false, "Subject: x\r\n\r\nbody\r\n")
	}
	if _, ok, err := f.s.LastPOPSession(ctx, "last@skydesk.jp"); ok || err != nil {
		t.Fatalf("before any session: %v, %v", ok, err)
	}
	start := time.Now()
	c := f.dial(t)
	c.login("last@skydesk.jp", "pw-last-0123")
	for _, cmd := range []string{"RETR 1", "RETR 1", "TOP 2 0", "RETR 3"} {
		c.cmd(cmd, "+OK")
		c.dot()
	}
	c.quit("+OK bye")
	c.waitClosed()
	ps, ok, err := f.s.LastPOPSession(ctx, "last@skydesk.jp")
	if err != nil || !ok || ps.Downloaded != 2 || ps.Remote != "127.0.0.1" || ps.At.Before(start) || ps.At.After(time.Now()) {
		t.Fatalf("after QUIT: %+v, %v, %v; want 2 downloaded from 127.0.0.1", ps, ok, err)
	}

	// A dropped connection (no QUIT) is a session too; nothing downloaded.
	c = f.dial(t)
	c.login("last@skydesk.jp", "pw-last-0123")
	c.uidl()
	c.waitClosed()
	ps2, ok, err := f.s.LastPOPSession(ctx, "last@skydesk.jp")
	if err != nil || !ok || ps2.Downloaded != 0 || ps2.At.Before(ps.At) {
		t.Fatalf("after a drop: %+v, %v, %v; want 0 downloaded, later than %v", ps2, ok, err, ps.At)
	}

	// A refused login records nothing.
	c = f.dial(t)
	c.cmd("USER last@skydesk.jp", "+OK")
	c.cmd("PASS wrong", "-ERR")
	c.quit("+OK")
	c.waitClosed()
	if ps3, _, _ := f.s.LastPOPSession(ctx, "last@skydesk.jp"); ps3 != ps2 {
		t.Errorf("a failed login changed the record: %+v, was %+v", ps3, ps2)
	}
}

package smtpd_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/smtpd"
)

// Over quota: 452 4.2.2 at RCPT once the mailbox is full, 552 5.2.2 at
// DATA when this message would take it over; nothing is stored either way.
func TestMX_quota(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	if err := f.st.SetQuota(t.Context(), taro, 2000); err != nil {
		t.Fatal(err)
	}
	w := f.dial(t, f.mx, false)
	w.must("EHLO client.example.org", 250)
	w.must("MAIL FROM:<a@example.org>", 250)
	w.must("RCPT TO:<"+taro+">", 250)
	code, text := w.data(msg("a@example.org", taro, "big", strings.Repeat("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 60)))
	isCode(t, code, text, 552, "5.2.2")
	w.must("MAIL FROM:<a@example.org>", 250)
	w.must("RCPT TO:<"+taro+">", 250)
	code, text = w.data(msg("a@example.org", taro, "fits", strings.Repeat("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 20)))
	isCode(t, code, text, 250, "2.0.0")
	if err := f.st.SetQuota(t.Context(), taro, 1000); err != nil {
		t.Fatal(err)
	}
	w.must("MAIL FROM:<a@example.org>", 250)
	code, text = w.cmd("RCPT TO:<" + taro + ">")
	isCode(t, code, text, 452, "4.2.2")
	if u, _ := f.st.MailboxUsage(t.Context(), taro); f.st.count() != 1 || u.Used > 2000 {
		t.Errorf("stored %d messages, usage %d; want the one that fit", f.st.count(), u.Used)
	}
}

// With the in-flight budget held by one DATA, another waits, then gets
// 452 4.3.1 and nothing is stored.
func TestMX_inFlightBudget(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxSize: 4 << 20, tune: func(o *smtpd.Options) {
		o.MaxBytesInFlight, o.InFlightWait = 256<<10, 200*time.Millisecond
	}})
	hold := f.dial(t, f.mx, false)
	hold.must("EHLO a.example.org", 250)
	hold.must("MAIL FROM:<a@example.org>", 250)
	hold.must("RCPT TO:<"+taro+">", 250)
	hold.must("DATA", 354)
	// 100 KiB of body and no end: the session holds one 256 KiB step,
	// the whole budget, while it waits for more (taken long before the
	// other session's five round trips reach DATA).
	if _, err := io.WriteString(hold.conn, "Subject: held\r\n\r\n"+strings.Repeat("yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n", 2000)); err != nil {
		t.Fatal(err)
	}
	// Until the held session has taken the budget (the server's own
	// gauge), the second one could get there first.
	for deadline := time.Now().Add(10 * time.Second); f.srv.BytesInFlight() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the held DATA never took the in-flight budget")
		}
		time.Sleep(time.Millisecond)
	}
	w := f.dial(t, f.mx, false)
	w.must("EHLO b.example.org", 250)
	w.must("MAIL FROM:<b@example.org>", 250)
	w.must("RCPT TO:<"+taro+">", 250)
	code, text := w.data(msg("b@example.org", taro, "waits", "small"))
	isCode(t, code, text, 452, "4.3.1")
	code, text = hold.cmd(".")
	isCode(t, code, text, 250, "2.0.0")
	if f.st.count() != 1 {
		t.Errorf("stored %d messages, want the held one only", f.st.count())
	}
}

// The MX's message rate per client network: beyond it 451 4.7.0 at MAIL.
func TestMX_rateLimit(t *testing.T) {
	f := newFixture(t, fixtureOpts{tune: func(o *smtpd.Options) { o.MXMessagesPerMinute = 2 }})
	w := f.dial(t, f.mx, false)
	w.must("EHLO client.example.org", 250)
	for range 2 {
		w.must("MAIL FROM:<a@example.org>", 250)
		w.must("RCPT TO:<"+taro+">", 250)
		code, text := w.data(msg("a@example.org", taro, "n", "x"))
		isCode(t, code, text, 250, "2.0.0")
	}
	code, text := w.cmd("MAIL FROM:<a@example.org>")
	isCode(t, code, text, 451, "4.7.0")
}

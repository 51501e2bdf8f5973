package smtpd_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/skydesk/skydeskd/rspamd"
	"github.com/skydesk/skydeskd/rspamd/rspamdtest"
	"github.com/skydesk/skydeskd/store"
)

// outcomes records what the rspamd client reported (its metrics hook).
type outcomes struct {
	mu   sync.Mutex
	seen []rspamd.Outcome
}

func (o *outcomes) observe(x rspamd.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, x)
}

func (o *outcomes) errors(kind string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, x := range o.seen {
		if x.Error == kind {
			n++
		}
	}
	return n
}

// rspamdClient is a client of srv with the on-error policy.
func rspamdClient(t testing.TB, url string, policy rspamd.OnError, o *outcomes) *rspamd.Client {
	t.Helper()
	opts := rspamd.Options{URL: url, OnError: policy}
	if o != nil {
		opts.Observe = o.observe
	}
	c, err := rspamd.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sendMX delivers body to taro on the MX and returns the final reply.
func (f *fixture) sendMX(t *testing.T, body string) (int, string) {
	t.Helper()
	w := f.dialMX(t)
	w.must("MAIL FROM:<news@example.org>", 250)
	w.must("RCPT TO:<"+taro+">", 250)
	c, text := w.data(body)
	w.must("QUIT", 221)
	return c, text
}

const (
	mxHead = "From: News <news@example.org>\r\nTo: <" + taro + ">\r\nDate: Thu, 03 Dec 2026 09:00:00 +0900\r\n" +
		"Message-ID: <n1@example.org>\r\n"
	hamBody  = mxHead + "Subject: lunch\r\n\r\nSee you at lunch tomorrow.\r\n"
	spamBody = mxHead + "Subject: offer\r\n\r\nCheap " + rspamdtest.SpamWord + " today only.\r\n"
)

func setIncludeSpam(t *testing.T, f *fixture, on bool) {
	t.Helper()
	if _, err := f.st.SetPOP(context.Background(), taro, store.POPUpdate{IncludeSpam: &on}); err != nil {
		t.Fatal(err)
	}
}

// popHas reports how many messages POP serves taro that contain s.
func popHas(t *testing.T, f *fixture, s string) int {
	t.Helper()
	n := 0
	for _, m := range f.mailbox(t, taro, taroPW) {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

// With rspamd on the MX, its verdict decides: GTUBE is refused and not
// stored, ordinary mail is normal mail, "add header" is spam that POP
// hides unless "include spam" is on, and a sender's own X-Spam-* fields
// neither survive nor count.
func TestMX_rspamd(t *testing.T) {
	srv := rspamdtest.Start(t)
	f := newFixture(t, fixtureOpts{scanner: rspamdClient(t, srv.URL, rspamd.Accept, nil)})

	t.Run("gtube refused", func(t *testing.T) {
		before := f.st.count()
		c, text := f.sendMX(t, mxHead+"Subject: test\r\n\r\n"+rspamdtest.GTUBE+"\r\n")
		isCode(t, c, text, 550, "5.7.1")
		if !strings.Contains(text, "Gtube pattern") {
			t.Errorf("reply %q lacks rspamd's message", text)
		}
		if f.st.count() != before || popHas(t, f, "GTUBE") != 0 {
			t.Error("a refused message was stored")
		}
	})

	t.Run("ordinary mail", func(t *testing.T) {
		if c, text := f.sendMX(t, hamBody); c != 250 {
			t.Fatalf("%d %q", c, text)
		}
		a := f.st.last(t)
		if a.Spam {
			t.Error("ordinary mail stored as spam")
		}
		if !bytes.Contains(a.Body, []byte("\r\nX-Spam-Flag: NO\r\nX-Spam-Status: No, score=")) {
			t.Errorf("no verdict fields:\n%s", a.Body)
		}
		if popHas(t, f, "See you at lunch") != 1 {
			t.Error("POP does not list the ordinary message")
		}
	})

	t.Run("add header is spam", func(t *testing.T) {
		if c, text := f.sendMX(t, spamBody); c != 250 {
			t.Fatalf("%d %q", c, text)
		}
		a := f.st.last(t)
		if !a.Spam {
			t.Fatalf("not stored as spam:\n%s", a.Body)
		}
		for _, want := range []string{"\r\nX-Spam-Flag: YES\r\n", `X-Spam-Status: Yes, score=`, `action="add header"`, "SKYDESK_TEST_SPAM(8.00)"} {
			if !bytes.Contains(a.Body, []byte(want)) {
				t.Errorf("body lacks %q:\n%s", want, a.Body)
			}
		}
		setIncludeSpam(t, f, false)
		if n := popHas(t, f, rspamdtest.SpamWord); n != 0 {
			t.Errorf("POP lists spam while include spam is no (%d)", n)
		}
		setIncludeSpam(t, f, true)
		if n := popHas(t, f, rspamdtest.SpamWord); n != 1 {
			t.Errorf("POP lists %d spam messages with include spam yes, want 1", n)
		}
		setIncludeSpam(t, f, false)
	})

	t.Run("forged verdict", func(t *testing.T) {
		forged := "X-Spam-Flag: NO\r\nX-Spam-Status: No, score=-100\r\n\tfolded=yes\r\nx-spam: no\r\nX-Spam-Score: -100\r\n" + spamBody
		if c, text := f.sendMX(t, forged); c != 250 {
			t.Fatalf("%d %q", c, text)
		}
		a := f.st.last(t)
		if !a.Spam {
			t.Error("a forged X-Spam-Flag: NO made spam normal mail")
		}
		for _, bad := range []string{"X-Spam-Flag: NO", "score=-100", "folded=yes", "x-spam: no", "X-Spam-Score"} {
			if bytes.Contains(a.Body, []byte(bad)) {
				t.Errorf("sender's %q survived:\n%s", bad, a.Body)
			}
		}
		if n := bytes.Count(a.Body, []byte("X-Spam-Flag:")); n != 1 {
			t.Errorf("%d X-Spam-Flag fields, want ours only", n)
		}
		// The opposite forgery does not count either.
		if c, text := f.sendMX(t, "X-Spam-Flag: YES\r\n"+hamBody); c != 250 {
			t.Fatalf("%d %q", c, text)
		}
		if f.st.last(t).Spam {
			t.Error("a sender's X-Spam-Flag: YES made normal mail spam")
		}
	})
}

// When rspamd is down, on_error decides: accept stores the message as
// normal mail (logged and counted), tempfail answers 451.
func TestMX_rspamdStopped(t *testing.T) {
	srv := rspamdtest.Start(t)
	var logs logRecords
	var obs outcomes
	accept := newFixture(t, fixtureOpts{scanner: rspamdClient(t, srv.URL, rspamd.Accept, &obs),
		log: slog.New(slog.NewJSONHandler(&logs, nil))})
	tempfail := newFixture(t, fixtureOpts{scanner: rspamdClient(t, srv.URL, rspamd.TempFail, nil)})
	if c, text := tempfail.sendMX(t, hamBody); c != 250 {
		t.Fatalf("rspamd up: %d %q", c, text)
	}
	srv.Stop()

	if c, text := accept.sendMX(t, "X-Spam-Flag: YES\r\n"+spamBody); c != 250 {
		t.Fatalf("on_error accept: %d %q", c, text)
	}
	a := accept.st.last(t)
	if a.Spam || bytes.Contains(a.Body, []byte("X-Spam-Flag")) {
		t.Errorf("unchecked mail: spam=%v, want normal mail without verdict fields:\n%s", a.Spam, a.Body)
	}
	if obs.errors("unavailable") != 1 {
		t.Errorf("errors counted: %+v", obs.seen)
	}
	if w := logs.find(slog.LevelWarn, "spam check failed"); len(w) != 1 || w[0]["kind"] != "unavailable" || w[0]["then"] != "deliver" {
		t.Errorf("warnings %v, want one for the unavailable rspamd", w)
	}

	before := tempfail.st.count()
	c, text := tempfail.sendMX(t, hamBody)
	isCode(t, c, text, 451, "4.3.0")
	if tempfail.st.count() != before {
		t.Error("on_error tempfail stored the message")
	}
}

// fixedScanner answers every message with one verdict.
type fixedScanner rspamd.Verdict

func (f fixedScanner) Verdict(context.Context, rspamd.Request, rspamd.Message) rspamd.Verdict {
	return rspamd.Verdict(f)
}

// soft reject and greylist defer with 451 4.7.1 (rspamd's text or ours);
// nothing is stored.
func TestMX_scannerDefers(t *testing.T) {
	for _, tc := range []struct {
		action    rspamd.Action
		msg, want string
	}{
		{rspamd.SoftReject, "Try again later", "4.7.1 Try again later"},
		{rspamd.Greylist, "", "4.7.1 Message deferred by the spam filter, try again later"},
	} {
		f := newFixture(t, fixtureOpts{scanner: fixedScanner{Disposition: tc.action.Disposition(),
			Result: rspamd.Result{Action: tc.action, SMTPMessage: tc.msg}}})
		c, text := f.sendMX(t, hamBody)
		if c != 451 || text != tc.want {
			t.Errorf("%s: %d %q, want 451 %q", tc.action, c, text, tc.want)
		}
		if f.st.count() != 0 {
			t.Errorf("%s: stored", tc.action)
		}
	}
}

// Submission never asks the scanner: it filters what arrives from outside.
func TestSubmission_notScanned(t *testing.T) {
	f := newFixture(t, fixtureOpts{scanner: fixedScanner{Disposition: rspamd.Refuse}})
	w := f.login(t, taro, taroPW)
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	if c, text := w.data(msg(taro, hanako, "hi", "x")); c != 250 {
		t.Fatalf("%d %q", c, text)
	}
	if c, _ := f.sendMX(t, hamBody); c != 550 {
		t.Fatalf("the MX did not ask the scanner: %d", c)
	}
}

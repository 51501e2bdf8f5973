package smtpd_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/skydesk/skydeskd/store/storetest"
)

// RFC 5321 §4.5.1 postmaster routing. The accounts: the configured
// postmaster desk (in mixed case in the options, as an operator might
// write it), and a hosted domain with a postmaster account of its own.
const (
	desk      = "desk@skydesk.jp"
	deskPW    = "desk-password-1"
	ownDomain = "kaisha.example"
	ownPM     = "postmaster@" + ownDomain
	ownPMPW   = "own-postmaster-password"
)

// newPostmasterFixture: postmaster@ of skydesk.jp and example.co.jp
// (no such accounts) goes to desk@skydesk.jp; kaisha.example has its own.
func newPostmasterFixture(t *testing.T, fo fixtureOpts) *fixture {
	t.Helper()
	f := newFixture(t, fo)
	storetest.AddUser(t, f.st.Driver, desk, deskPW)
	if _, err := f.st.AddDomain(t.Context(), ownDomain); err != nil {
		t.Fatal(err)
	}
	storetest.AddUser(t, f.st.Driver, ownPM, ownPMPW)
	return f
}

// holding returns the messages of a mailbox that contain subject.
func holding(msgs []string, subject string) []string {
	var out []string
	for _, m := range msgs {
		if strings.Contains(m, "Subject: "+subject+"\n") {
			out = append(out, m)
		}
	}
	return out
}

func TestServer_postmaster_routedToConfiguredAccount(t *testing.T) {
	f := newPostmasterFixture(t, fixtureOpts{postmaster: "Desk@SkyDesk.JP"})
	for _, tc := range []struct {
		name, rcpt string
		submit     bool   // over authenticated submission (465) instead of the MX
		box        string // mailbox that must hold the one copy
	}{
		{"mx-personal", "postmaster@skydesk.jp", false, desk},
		{"mx-hosted", "postmaster@example.co.jp", false, desk},
		{"mx-mixed-case", "Postmaster@Example.CO.JP", false, desk},
		{"mx-upper-case", "POSTMASTER@skydesk.jp", false, desk},
		{"mx-quoted-local-part", `"postmaster"@example.co.jp`, false, desk}, // go-smtp unquotes it
		{"mx-own-account", "postmaster@kaisha.example", false, ownPM},
		{"mx-own-account-mixed-case", "PostMaster@Kaisha.Example", false, ownPM},
		{"submission-hosted", "postmaster@example.co.jp", true, desk},
		{"submission-own-account", "postmaster@kaisha.example", true, ownPM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subject := "pm " + tc.name
			// The original bytes, which must arrive unchanged after the
			// trace fields (the To: still says postmaster@…).
			orig := "From: " + taro + "\r\nTo: " + tc.rcpt + "\r\nSubject: " + subject +
				"\r\nDate: Thu, 26 Nov 2026 09:00:00 +0900\r\nMessage-ID: <" + tc.name + "@client.example>\r\n\r\nhello postmaster\r\n"
			var w *wire
			if tc.submit {
				w = f.login(t, taro, taroPW)
			} else {
				w = f.dialMX(t)
			}
			w.must("MAIL FROM:<"+taro+">", 250)
			w.must("RCPT TO:<"+tc.rcpt+">", 250)
			if c, text := w.data(orig); c != 250 {
				t.Fatalf("DATA: %d %q", c, text)
			}
			pw := map[string]string{desk: deskPW, ownPM: ownPMPW}[tc.box]
			got := holding(f.mailbox(t, tc.box, pw), subject)
			if len(got) != 1 {
				t.Fatalf("%s holds %d copies of %q, want 1", tc.box, len(got), subject)
			}
			if want := strings.ReplaceAll(orig, "\r\n", "\n"); !strings.HasSuffix(got[0], want) {
				t.Errorf("message changed on the way:\n%s\nwant it to end with:\n%s", got[0], want)
			}
			// Received names the address the client gave, not the mailbox.
			rcpt := strings.ToLower(strings.ReplaceAll(tc.rcpt, `"`, ""))
			if !strings.Contains(got[0], "\n\tfor <"+rcpt+">; ") {
				t.Errorf("Received lacks for <%s>:\n%s", rcpt, got[0])
			}
			other := map[string]string{desk: ownPM, ownPM: desk}[tc.box]
			if n := len(holding(f.mailbox(t, other, map[string]string{desk: deskPW, ownPM: ownPMPW}[other]), subject)); n != 0 {
				t.Errorf("%s also got %d copies", other, n)
			}
		})
	}
}

// One transaction naming postmaster of several domains (and the desk
// itself) leaves one copy in the desk's mailbox.
func TestServer_postmaster_oneCopyPerMailbox(t *testing.T) {
	f := newPostmasterFixture(t, fixtureOpts{postmaster: "DESK@skydesk.jp"})
	w := f.dialMX(t)
	w.must("MAIL FROM:<news@example.org>", 250)
	for _, rcpt := range []string{"postmaster@skydesk.jp", "postmaster@example.co.jp", "Postmaster@skydesk.jp", desk, ownPM} {
		w.must("RCPT TO:<"+rcpt+">", 250)
	}
	if c, text := w.data("From: news@example.org\r\nSubject: to every postmaster\r\n\r\nx\r\n"); c != 250 {
		t.Fatalf("DATA: %d %q", c, text)
	}
	if n := len(holding(f.mailbox(t, desk, deskPW), "to every postmaster")); n != 1 {
		t.Errorf("desk holds %d copies, want 1", n)
	}
	if n := len(holding(f.mailbox(t, ownPM, ownPMPW), "to every postmaster")); n != 1 {
		t.Errorf("%s holds %d copies, want 1", ownPM, n)
	}
	if got := f.st.last(t).Body; bytes.Contains(got, []byte("\tfor <")) {
		t.Errorf("for-clause with several recipients:\n%s", got)
	}
}

// logRecords collects JSON log records (the server logs from its own
// goroutines).
type logRecords struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecords) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// find returns the records at level with message prefix msg.
func (l *logRecords) find(level slog.Level, msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(l.buf.Bytes(), []byte("\n")) {
		var r map[string]any
		if json.Unmarshal(line, &r) == nil && r["level"] == level.String() && strings.HasPrefix(r["msg"].(string), msg) {
			out = append(out, r)
		}
	}
	return out
}

// Without a usable service-wide postmaster, postmaster@ a domain without
// its own account is refused like any unknown user (550 5.1.1, same text:
// the client learns nothing about the routing); a configured but missing
// account is a Warn for the operator. A domain's own account still works.
func TestServer_postmaster_refusedWithoutAccount(t *testing.T) {
	for _, tc := range []struct {
		name, postmaster string
		warn             bool
	}{
		{"configured-account-missing", "nobody-here@skydesk.jp", true},
		{"none-configured", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logRecords
			f := newPostmasterFixture(t, fixtureOpts{postmaster: tc.postmaster,
				log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			_, unknown := f.dialMX(t).cmdAfterMail(t, "nobody@example.co.jp")
			for _, w := range []*wire{f.dialMX(t), f.login(t, taro, taroPW)} {
				w.must("MAIL FROM:<"+taro+">", 250)
				for _, rcpt := range []string{"postmaster@example.co.jp", "Postmaster@skydesk.jp"} {
					c, text := w.cmd("RCPT TO:<" + rcpt + ">")
					isCode(t, c, text, 550, "5.1.1")
					if text != unknown {
						t.Errorf("reply %q differs from an unknown user's %q", text, unknown)
					}
				}
				w.must("RCPT TO:<"+ownPM+">", 250)
			}
			warns := logs.find(slog.LevelWarn, "postmaster account missing")
			if !tc.warn {
				if len(warns) != 0 {
					t.Errorf("warned without a configured postmaster: %v", warns)
				}
				return
			}
			if len(warns) != 4 {
				t.Fatalf("%d postmaster warnings, want one per refused RCPT (4)", len(warns))
			}
			if warns[0]["postmaster"] != tc.postmaster || warns[0]["rcpt"] != "postmaster@example.co.jp" ||
				!strings.Contains(warns[0]["msg"].(string), "RFC 5321 §4.5.1") {
				t.Errorf("warning %v", warns[0])
			}
		})
	}
}

// cmdAfterMail sends MAIL and one RCPT and returns the RCPT reply.
func (w *wire) cmdAfterMail(t *testing.T, rcpt string) (int, string) {
	t.Helper()
	w.must("MAIL FROM:<"+taro+">", 250)
	return w.cmd("RCPT TO:<" + rcpt + ">")
}

// Postmaster of a domain that is not ours is nobody special: the relay
// rules apply unchanged.
func TestServer_postmaster_nonLocalNotSpecial(t *testing.T) {
	f := newPostmasterFixture(t, fixtureOpts{postmaster: desk})
	c, text := f.dialMX(t).cmdAfterMail(t, "postmaster@example.org")
	isCode(t, c, text, 554, "5.7.1")
	c, text = f.login(t, taro, taroPW).cmdAfterMail(t, "postmaster@example.org")
	isCode(t, c, text, 550, "5.7.1") // no smarthost
	if n := len(f.mailbox(t, desk, deskPW)); n != 0 {
		t.Errorf("desk got %d messages", n)
	}
}

// RFC 5321 §4.1.1.3: "RCPT TO:<Postmaster>" without a domain MUST be
// accepted. go-smtp v0.25.1's path parser (parseMailbox wants an "@")
// refuses it with this 501 before our Rcpt is called; this records that
// behaviour of go-smtp, not of smtpd, which we do not fork or patch. If
// go-smtp starts passing "Postmaster" through, our NormalizeAddress would
// answer 501 5.1.3 instead and this test fails: then route it here.
func TestServer_postmaster_bareGoSMTPRefuses(t *testing.T) {
	f := newPostmasterFixture(t, fixtureOpts{postmaster: desk})
	for _, w := range []*wire{f.dialMX(t), f.login(t, taro, taroPW)} {
		w.must("MAIL FROM:<"+taro+">", 250)
		for _, rcpt := range []string{"<Postmaster>", "<postmaster>", "<POSTMASTER>"} {
			c, text := w.cmd("RCPT TO:" + rcpt)
			isCode(t, c, text, 501, "5.5.2")
			if text != "5.5.2 Was expecting RCPT arg syntax of TO:<address>" {
				t.Errorf("go-smtp's reply changed: %q", text)
			}
		}
		// The transaction goes on: the domain form works.
		w.must("RCPT TO:<postmaster@skydesk.jp>", 250)
	}
}

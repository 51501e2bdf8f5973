package smtpd_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func extensions(ehlo string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(ehlo, "\n")[1:] {
		k, v, _ := strings.Cut(l, " ")
		out[k] = v
	}
	return out
}

func TestServer_implicitTLS_extensions(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.dial(t, f.smtps, true)
	ext := extensions(w.must("EHLO client.example", 250))
	for _, want := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"} {
		if _, ok := ext[want]; !ok {
			t.Errorf("EHLO lacks %s: %v", want, ext)
		}
	}
	if got := ext["SIZE"]; got != fmt.Sprint(f.maxSize) {
		t.Errorf("SIZE %q, want %d", got, f.maxSize)
	}
	if got := ext["AUTH"]; got != "PLAIN LOGIN" {
		t.Errorf("AUTH %q, want PLAIN LOGIN", got)
	}
	if _, ok := ext["STARTTLS"]; ok {
		t.Error("STARTTLS advertised inside TLS")
	}
}

// RFC 3207 §4: AUTH neither advertised nor accepted before STARTTLS; the
// state said in plaintext is forgotten after it.
func TestServer_submission_STARTTLS(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.dial(t, f.submission, false)
	ext := extensions(w.must("EHLO client.example", 250))
	if _, ok := ext["STARTTLS"]; !ok {
		t.Fatalf("no STARTTLS before TLS: %v", ext)
	}
	if _, ok := ext["AUTH"]; ok {
		t.Fatalf("AUTH advertised before TLS: %v", ext)
	}
	c, text := w.cmd(plain(taro, taroPW))
	isCode(t, c, text, 530, "5.7.0")
	if !strings.Contains(text, "STARTTLS") {
		t.Errorf("reply %q does not say STARTTLS", text)
	}
	c, text = w.cmd("AUTH LOGIN")
	isCode(t, c, text, 530, "5.7.0")
	c, text = w.cmd("MAIL FROM:<" + taro + ">")
	isCode(t, c, text, 530, "5.7.0")

	w.starttls(f.clientTLS)
	c, text = w.cmd("MAIL FROM:<" + taro + ">")
	if c != 502 && c != 503 { // EHLO again first (RFC 3207 §4.2)
		t.Errorf("MAIL right after STARTTLS: %d %q", c, text)
	}
	ext = extensions(w.must("EHLO client.example", 250))
	if _, ok := ext["STARTTLS"]; ok {
		t.Error("STARTTLS advertised after TLS")
	}
	if ext["AUTH"] != "PLAIN LOGIN" {
		t.Fatalf("AUTH after TLS: %v", ext)
	}
	w.must(plain(taro, taroPW), 235)
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	if c, text := w.data(msg(taro, hanako, "over 587", "hello")); c != 250 {
		t.Fatalf("DATA: %d %q", c, text)
	}
}

// Every credential case, over both mechanisms.
func TestServer_auth_credentials(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ctx := t.Context()
	storetest.AddUser(t, f.st.Driver, "twostep@skydesk.jp", "twostep-password")
	if err := f.st.SetTwoStep(ctx, "twostep@skydesk.jp", true); err != nil {
		t.Fatal(err)
	}
	app, err := f.st.CreateAppPassword(ctx, "twostep@skydesk.jp", "thunderbird")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddAccount(ctx, store.NewAccount{Address: "sso@example.co.jp", Federated: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, pw string
		code           int
		enh, hint      string
	}{
		{"ok", taro, taroPW, 235, "2.0.0", ""},
		{"ok-upper-case-address", "Taro@SkyDesk.JP", taroPW, 235, "2.0.0", ""},
		{"wrong-password", taro, "nope-nope-nope", 535, "5.7.8", "invalid user name or password"},
		{"unknown-user", "nobody@skydesk.jp", "whatever-pw", 535, "5.7.8", "invalid user name or password"},
		{"bare-user-name", "taro", taroPW, 535, "5.7.8", "full email address"},
		{"two-step-account-password", "twostep@skydesk.jp", "twostep-password", 535, "5.7.8", "app-specific password"},
		{"two-step-app-password", "twostep@skydesk.jp", app, 235, "2.0.0", ""},
		{"federated", "sso@example.co.jp", "anything-at-all", 535, "5.7.8", "invalid user name or password (use your full email address; federated accounts set a mail password first"},
	} {
		for _, mech := range []string{"PLAIN", "LOGIN"} {
			t.Run(tc.name+"/"+mech, func(t *testing.T) {
				w := f.dial(t, f.smtps, true)
				w.must("EHLO client.example", 250)
				var c int
				var text string
				if mech == "PLAIN" {
					c, text = w.cmd(plain(tc.user, tc.pw))
				} else {
					if got := w.must("AUTH LOGIN", 334); got != b64("Username:") {
						t.Fatalf("first challenge %q", got)
					}
					if got := w.must(b64(tc.user), 334); got != b64("Password:") {
						t.Fatalf("second challenge %q", got)
					}
					c, text = w.cmd(b64(tc.pw))
				}
				isCode(t, c, text, tc.code, tc.enh)
				if !strings.Contains(text, tc.hint) {
					t.Errorf("reply %q lacks hint %q", text, tc.hint)
				}
			})
		}
	}
	t.Run("LOGIN-initial-response", func(t *testing.T) {
		w := f.dial(t, f.smtps, true)
		w.must("EHLO client.example", 250)
		w.must("AUTH LOGIN "+b64(taro), 334)
		w.must(b64(taroPW), 235)
	})
	t.Run("PLAIN-foreign-authzid", func(t *testing.T) {
		w := f.dial(t, f.smtps, true)
		w.must("EHLO client.example", 250)
		c, text := w.cmd("AUTH PLAIN " + b64(hanako+"\x00"+taro+"\x00"+taroPW))
		isCode(t, c, text, 535, "5.7.8")
	})
	t.Run("PLAIN-malformed", func(t *testing.T) {
		w := f.dial(t, f.smtps, true)
		w.must("EHLO client.example", 250)
		c, text := w.cmd("AUTH PLAIN " + b64("no-nul-bytes"))
		isCode(t, c, text, 501, "5.5.2")
	})
	t.Run("unknown-mechanism", func(t *testing.T) {
		w := f.dial(t, f.smtps, true)
		w.must("EHLO client.example", 250)
		c, text := w.cmd("AUTH CRAM-MD5")
		isCode(t, c, text, 504, "5.7.4")
	})
}

// Throttling: after the policy's failures the account is locked from that
// client network and the reply is a temporary 454 with the wait.
func TestServer_auth_locked(t *testing.T) {
	f := newFixture(t, fixtureOpts{policy: store.ThrottlePolicy{FreeFailures: 2, LockAfter: 3, LockFor: 10 * time.Minute,
		BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour}})
	w := f.dial(t, f.smtps, true)
	w.must("EHLO client.example", 250)
	for range 3 {
		c, text := w.cmd(plain(taro, "wrong-password"))
		if c != 535 && c != 454 {
			t.Fatalf("failure: %d %q", c, text)
		}
	}
	w2 := f.dial(t, f.smtps, true)
	w2.must("EHLO client.example", 250)
	c, text := w2.cmd(plain(taro, taroPW))
	isCode(t, c, text, 454, "4.7.0")
	if !strings.Contains(text, "try again in 10 minute") {
		t.Errorf("lock reply %q lacks the wait", text)
	}
}

func TestServer_submission_requiresAuth(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.dial(t, f.smtps, true)
	w.must("EHLO client.example", 250)
	c, text := w.cmd("MAIL FROM:<" + taro + ">")
	isCode(t, c, text, 530, "5.7.0")
	// The open-relay attempt from an unauthenticated submission client.
	c, text = w.cmd("RCPT TO:<someone@example.org>")
	if c < 500 {
		t.Fatalf("RCPT without MAIL/AUTH: %d %q", c, text)
	}
	if f.st.count() != 0 {
		t.Fatal("a message was accepted")
	}
}

func TestServer_submission_senderMismatch(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.login(t, taro, taroPW)
	for _, from := range []string{hanako, "taro@example.co.jp", "", "ceo@example.org"} {
		c, text := w.cmd("MAIL FROM:<" + from + ">")
		isCode(t, c, text, 553, "5.7.1")
		if !strings.Contains(text, "<"+taro+">") {
			t.Errorf("reply %q does not name the allowed sender", text)
		}
	}
	// Envelope right, From header wrong.
	w.must("MAIL FROM:<TARO@skydesk.jp>", 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	c, text := w.data(msg("Boss <"+hanako+">", hanako, "spoof", "x"))
	isCode(t, c, text, 550, "5.7.1")
	// ISO-2022-JP display name (common in Japan) with the right address.
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	c, text = w.data(msg("=?ISO-2022-JP?B?GyRCQkBPOhsoQg==?= <"+taro+">", hanako, "ok", "x"))
	if c != 250 {
		t.Fatalf("ISO-2022-JP From: %d %q", c, text)
	}
	if f.st.count() != 1 {
		t.Fatalf("%d messages accepted, want 1", f.st.count())
	}
}

func TestServer_unknownLocalRecipient(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	for _, w := range []*wire{f.login(t, taro, taroPW), f.dialMX(t)} {
		w.must("MAIL FROM:<"+taro+">", 250)
		c, text := w.cmd("RCPT TO:<nobody@example.co.jp>")
		isCode(t, c, text, 550, "5.1.1")
		c, text = w.cmd("RCPT TO:<not an address>")
		if c != 501 && c != 553 {
			t.Errorf("bad address: %d %q", c, text)
		}
	}
}

func (f *fixture) dialMX(t *testing.T) *wire {
	w := f.dial(t, f.mx, false)
	w.must("EHLO mta.example.org", 250)
	return w
}

// Never an open relay: not from the MX, not from an unauthenticated
// submission, and not even authenticated without a smarthost.
func TestServer_relayRefused(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	mx := f.dialMX(t)
	if _, ok := extensions(mx.must("EHLO mta.example.org", 250))["AUTH"]; ok {
		t.Error("MX advertises AUTH")
	}
	c, text := mx.cmd(plain(taro, taroPW))
	isCode(t, c, text, 502, "5.5.1")
	mx.must("MAIL FROM:<spammer@example.org>", 250)
	c, text = mx.cmd("RCPT TO:<victim@example.org>")
	isCode(t, c, text, 554, "5.7.1")
	c, text = mx.cmd("RCPT TO:<victim@skydesk.jp.example.org>")
	isCode(t, c, text, 554, "5.7.1")

	w := f.login(t, taro, taroPW)
	w.must("MAIL FROM:<"+taro+">", 250)
	c, text = w.cmd("RCPT TO:<friend@example.org>")
	isCode(t, c, text, 550, "5.7.1")
	if !strings.Contains(text, "smarthost") {
		t.Errorf("no-smarthost reply %q is unclear", text)
	}
	if f.st.count() != 0 {
		t.Fatal("a message was accepted")
	}
}

func TestServer_sizeLimit(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxSize: 4096})
	w := f.login(t, taro, taroPW)
	c, text := w.cmd(fmt.Sprintf("MAIL FROM:<%s> SIZE=%d", taro, 5000))
	isCode(t, c, text, 552, "5.3.4")
	w.must(fmt.Sprintf("MAIL FROM:<%s> SIZE=%d", taro, 4000), 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	c, text = w.data(msg(taro, hanako, "big", strings.Repeat("0123456789abcdef\r\n", 400)))
	isCode(t, c, text, 552, "5.3.4")
	if f.st.count() != 0 {
		t.Fatal("an oversized message was stored")
	}
	// The session still works after the refusal.
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	if c, text := w.data(msg(taro, hanako, "small", "ok")); c != 250 {
		t.Fatalf("%d %q", c, text)
	}
}

// The fix-ups: Received on top, Date and Message-ID added only if missing;
// a message already carrying them keeps its own.
func TestServer_headerFixUps(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.login(t, taro, taroPW)
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	if c, text := w.data("Subject: no date, no id\r\n\r\nbody\r\n"); c != 250 {
		t.Fatalf("%d %q", c, text)
	}
	got := string(f.st.last(t).Body)
	for _, want := range []string{"Received: from client.example ([127.0.0.1])\r\n\tby smtp.skydesk.jp (skydeskd) with ESMTPSA id ",
		"\r\nFrom: <" + taro + ">\r\n", "\r\nDate: ", "\r\nMessage-ID: <", "@smtp.skydesk.jp>\r\n", "\r\n\r\nbody\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("message lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasPrefix(got, "Received: ") || !strings.Contains(got, "\tfor <"+hanako+">; ") {
		t.Errorf("Received is not first or lacks for-clause:\n%s", got)
	}
	head, _, _ := strings.Cut(got, "\r\n\r\n")
	if !strings.HasSuffix(head, ">") || strings.Index(head, "Subject:") > strings.Index(head, "Message-ID:") {
		t.Errorf("added fields must follow the original header:\n%s", got)
	}

	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	orig := "From: " + taro + "\r\nDate: Thu, 26 Nov 2026 09:00:00 +0900\r\nMessage-ID: <mine@client.example>\r\n\r\nbody\r\n"
	if c, text := w.data(orig); c != 250 {
		t.Fatalf("%d %q", c, text)
	}
	got = string(f.st.last(t).Body)
	if strings.Count(got, "Message-ID:") != 1 || strings.Count(got, "Date:") != 1 || !strings.HasSuffix(got, orig) {
		t.Errorf("existing fields changed:\n%s", got)
	}
}

// PIPELINING (RFC 2920): a whole transaction in one write, replies in
// order; 8BITMIME and SMTPUTF8 parameters accepted and 8-bit octets kept.
func TestServer_pipelining8bitUTF8(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.login(t, taro, taroPW)
	batch := "MAIL FROM:<" + taro + "> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<" + hanako + ">\r\nRCPT TO:<" + taro + ">\r\nDATA\r\n"
	if _, err := w.conn.Write([]byte(batch)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{250, 250, 250, 354} {
		w.expect(want)
	}
	body := "From: 太郎 <" + taro + ">\r\nSubject: 日本語の件名\r\n\r\nこんにちは\r\n"
	if _, err := w.conn.Write([]byte(body + ".\r\n")); err != nil {
		t.Fatal(err)
	}
	w.expect(250)
	a := f.st.last(t)
	if len(a.Local) != 2 || !strings.Contains(string(a.Body), "こんにちは") {
		t.Fatalf("accepted %+v", a)
	}
	if !strings.Contains(string(a.Body), " with UTF8SMTPSA id ") {
		t.Errorf("Received lacks UTF8SMTPSA:\n%s", a.Body)
	}
}

// The MX takes the spam verdict from the upstream filter's headers; the
// submission path never does.
func TestServer_mxSpamVerdict(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	for _, tc := range []struct {
		header string
		spam   bool
	}{
		{"X-Spam-Flag: YES", true},
		{"X-Spam-Flag: yes", true},
		{"X-Spam-Status: Yes, score=7.1 required=5.0", true},
		{"X-Spam-Status: No, score=0.1 required=5.0", false},
		{"X-Spam-Flag: NO", false},
		{"X-Other: YES", false},
	} {
		w := f.dialMX(t)
		w.must("MAIL FROM:<news@example.org>", 250)
		w.must("RCPT TO:<"+taro+">", 250)
		if c, text := w.data(tc.header + "\r\nFrom: news@example.org\r\nSubject: x\r\n\r\nbody\r\n"); c != 250 {
			t.Fatalf("%s: %d %q", tc.header, c, text)
		}
		a := f.st.last(t)
		if a.Spam != tc.spam {
			t.Errorf("%s: spam=%v, want %v", tc.header, a.Spam, tc.spam)
		}
		if !strings.HasPrefix(string(a.Body), "Return-Path: <news@example.org>\r\nReceived: from mta.example.org") {
			t.Errorf("MX trace fields:\n%s", a.Body)
		}
	}
	w := f.login(t, taro, taroPW)
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	if c, text := w.data("X-Spam-Flag: YES\r\nFrom: " + taro + "\r\n\r\nx\r\n"); c != 250 {
		t.Fatalf("%d %q", c, text)
	}
	if f.st.last(t).Spam {
		t.Error("submission took a spam verdict from the sender's own header")
	}
}

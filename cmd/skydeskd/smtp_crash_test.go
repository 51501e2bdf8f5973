package main

import (
	"fmt"
	"strings"
	"testing"
)

// A kill -9 right after the 250 reply loses nothing: the message was
// committed (fsync'd) before the reply. Real process, real SIGKILL, then a
// restart on the same data directory and a POP3 download.
func TestSMTP_kill9AfterAcceptKeepsMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	const user, pw = "crash@skydesk.jp", "crash-password-1"
	mustCLI(t, dir, pw+"\n", "user", "add", user, "--password-stdin")
	mustCLI(t, dir, "", "pop", "set", user, "--access", "all")
	cfg := writeSMTPConfig(t, dir, "")

	p := startProc(t, bin, []string{"smtps", "mx"}, "serve", "--config", cfg)
	tc := trustDir(t, dir, "smtp.skydesk.jp")
	var subjects []string
	for i := range 5 {
		subject := fmt.Sprintf("crash test %d", i)
		subjects = append(subjects, subject)
		body := "From: " + user + "\r\nTo: " + user + "\r\nSubject: " + subject + "\r\n\r\nmust survive kill -9\r\n"
		var err error
		if i%2 == 0 {
			err = sendSMTPS(p.addrs["smtps"], tc, user, pw, user, []string{user}, body)
		} else {
			err = sendMX(p.addrs["mx"], "someone@example.org", []string{user}, body)
		}
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	p.kill(t) // immediately after the last 250

	p2 := startProc(t, bin, []string{"pop3s"}, "serve", "--config", cfg)
	pop := dialPOP3S(t, p2.addrs["pop3s"], trustDir(t, dir, "pop.skydesk.jp"), user, pw)
	msgs := pop.messages()
	pop.quit()
	all := strings.Join(msgs, "\n")
	for _, s := range subjects {
		if !strings.Contains(all, "Subject: "+s+"\n") {
			t.Errorf("%q lost after kill -9 (have %d messages)", s, len(msgs))
		}
	}
}

// Spam header on the MX → spam flag → invisible to POP until the account
// chooses "include spam"; submission and MX deliver into the same mailbox
// POP reads.
func TestSMTP_spamInvisibleToPOPUnlessIncluded(t *testing.T) {
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")
	dir := t.TempDir()
	const user, pw = "spamcheck@example.co.jp", "spamcheck-pass-1"
	mustCLI(t, dir, "", "domain", "add", "example.co.jp")
	mustCLI(t, dir, pw+"\n", "user", "add", user, "--password-stdin")
	mustCLI(t, dir, "", "pop", "set", user, "--access", "all")
	addrs := startSMTPInProcess(t, dir)
	tc := trustDir(t, dir, "smtp.skydesk.jp")

	if err := sendMX(addrs["mx"], "news@example.org", []string{user},
		"X-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=9.0\r\nFrom: news@example.org\r\nSubject: buy now\r\n\r\nspam\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := sendMX(addrs["mx"], "friend@example.org", []string{user},
		"X-Spam-Flag: NO\r\nFrom: friend@example.org\r\nSubject: lunch?\r\n\r\nham\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := sendSMTPS(addrs["smtps"], tc, user, pw, user, []string{user},
		"From: "+user+"\r\nSubject: note to self\r\n\r\nsubmitted\r\n"); err != nil {
		t.Fatal(err)
	}
	popTLS := trustDir(t, dir, "poppro.skydesk.jp")
	subjects := func() string {
		pop := dialPOP3S(t, addrs["pop3s"], popTLS, user, pw)
		defer pop.quit()
		var s []string
		for _, m := range pop.messages() {
			_, after, _ := strings.Cut(m, "Subject: ")
			subj, _, _ := strings.Cut(after, "\n") // ReadDotBytes gives LF
			s = append(s, subj)
		}
		return strings.Join(s, ",")
	}
	if got := subjects(); got != "lunch?,note to self" {
		t.Fatalf("POP lists %q without include spam, want lunch?,note to self", got)
	}
	mustCLI(t, dir, "", "pop", "set", user, "--spam", "include")
	if got := subjects(); got != "buy now,lunch?,note to self" {
		t.Fatalf("POP lists %q with include spam", got)
	}
}

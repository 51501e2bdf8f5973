package main

import (
	"io"
	"net/http"
	"regexp"
	"slices"
	"testing"
)

// The POP settings through the admin commands and `skydeskd deliver
// [--spam]`, seen by a POP3 client of the real binary: "from now on"
// hides earlier mail, spam shows only with "include", "all mail" chosen
// again brings back what "keep on server" kept.
func TestPOP_settingsThroughCLI(t *testing.T) {
	r := startPOPRig(t)
	tc := trustDir(t, r.dir, "pop.skydesk.jp")
	const user, pw = "mpop@skydesk.jp", "pw-mpop-123"
	mustCLI(t, r.dir, "", "pop", "set", user, "--on-delete", "keep")
	hamBefore := deliverCLI(t, r.bin, r.dir, user, false, "Subject: ham before\n\nx\n")
	spamBefore := deliverCLI(t, r.bin, r.dir, user, true, "Subject: spam before\n\nx\n")
	if got := popUIDs(t, r.pop3s, tc, user, pw); !slices.Equal(got, []string{hamBefore}) {
		t.Fatalf("all mail, spam excluded: %v, want [%s]", got, hamBefore)
	}
	mustCLI(t, r.dir, "", "pop", "set", user, "--access", "since-now")
	hamAfter := deliverCLI(t, r.bin, r.dir, user, false, "Subject: ham after\n\nx\n")
	spamAfter := deliverCLI(t, r.bin, r.dir, user, true, "Subject: spam after\n\nx\n")
	if got := popUIDs(t, r.pop3s, tc, user, pw); !slices.Equal(got, []string{hamAfter}) {
		t.Fatalf("from now on, spam excluded: %v, want [%s]", got, hamAfter)
	}
	mustCLI(t, r.dir, "", "pop", "set", user, "--spam", "include")
	if got := popUIDs(t, r.pop3s, tc, user, pw); !slices.Equal(got, []string{hamAfter, spamAfter}) {
		t.Fatalf("from now on, spam included: %v", got)
	}
	c := popLogin(t, r.pop3s, tc, user, pw)
	c.cmd("DELE 1", "+OK")
	c.cmd("DELE 2", "+OK")
	c.cmd("QUIT", "+OK bye, 2 messages deleted")
	if got := popUIDs(t, r.pop3s, tc, user, pw); len(got) != 0 {
		t.Fatalf("after DELE+QUIT: %v", got)
	}
	mustCLI(t, r.dir, "", "pop", "set", user, "--access", "all")
	if got, want := popUIDs(t, r.pop3s, tc, user, pw), []string{hamBefore, spamBefore, hamAfter, spamAfter}; !slices.Equal(got, want) {
		t.Fatalf("all mail again (kept on server): %v, want %v", got, want)
	}
	mustCLI(t, r.dir, "", "pop", "set", user, "--access", "disabled")
	p := popDial(t, r.pop3s, tc)
	p.cmd("USER "+user, "+OK")
	p.cmd("PASS "+pw, "-ERR [SYS/PERM] POP access is disabled")
	p.cmd("USER "+user, "+OK")
	p.cmd("PASS wrong-password", "-ERR [AUTH] invalid user name or password")

	// Operators see sessions and login outcomes on /metrics.
	resp, err := http.Get("http://" + r.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, re := range []string{`skydeskd_pop3_sessions_total [1-9]`, `skydeskd_pop3_sessions_active [0-9]`,
		`skydeskd_logins_total\{outcome="ok",service="pop3"\} [1-9]`,
		`skydeskd_logins_total\{outcome="bad_credentials",service="pop3"\} 1\b`,
		`skydeskd_password_hashes\{state="running"\} [0-9]`, `skydeskd_password_hashes\{state="waiting"\} [0-9]`} {
		if !regexp.MustCompile(re).Match(body) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
}

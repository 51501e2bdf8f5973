package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// POP from a chosen day through the admin commands, seen by a POP3 client
// of the real binary: `deliver --received` places mail on either side of
// midnight in Japan time, `pop set --access since:DAY` lists what arrived
// from 00:00:00 JST of DAY; "all" and "since-now" work as before; `pop
// show` tells the last POP access.
func TestPOP_sinceDayThroughCLI(t *testing.T) {
	r := startPOPRig(t)
	tc := trustDir(t, r.dir, "pop.skydesk.jp")
	const user, pw = "py@skydesk.jp", "pw-py-123"
	mustCLI(t, r.dir, "", "pop", "set", user, "--on-delete", "keep")
	at := func(received string) string {
		t.Helper()
		return strings.TrimSpace(mustCLI(t, r.dir, "Subject: "+received+"\n\nx\n", "deliver", "--received", received, user))
	}
	before := at("2026-03-01T23:59:59+09:00")
	first := at("2026-03-01T15:00:00Z") // 2026-03-02 00:00:00 JST
	later := at("2026-03-02T23:59:59.5+09:00")
	out := mustCLI(t, r.dir, "", "pop", "set", user, "--access", "since:2026-03-02")
	if !strings.Contains(out, "access: since:2026-03-02 (since 2026-03-01T15:00:00Z)") {
		t.Errorf("pop set since:2026-03-02 printed:\n%s", out)
	}
	if got := popUIDs(t, r.pop3s, tc, user, pw); !slices.Equal(got, []string{first, later}) {
		t.Fatalf("since 2026-03-02 JST: %v, want [%s %s] (not %s, 23:59:59 JST the day before)", got, first, later, before)
	}
	out = mustCLI(t, r.dir, "", "pop", "show", user)
	if !regexp.MustCompile(`(?m)^last POP access: 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ from 127\.0\.0\.1, 0 downloaded$`).MatchString(out) {
		t.Errorf("pop show after a listing:\n%s", out)
	}
	c := popLogin(t, r.pop3s, tc, user, pw)
	c.cmd("RETR 1", "+OK")
	c.text.ReadDotBytes()
	c.cmd("RETR 2", "+OK")
	c.text.ReadDotBytes()
	c.cmd("QUIT", "+OK")
	// popd records the session before it closes the connection.
	if _, err := c.text.ReadLine(); err == nil {
		t.Fatal("the server kept the connection after QUIT")
	}
	if out = mustCLI(t, r.dir, "", "pop", "show", user); !strings.Contains(out, "from 127.0.0.1, 2 downloaded") {
		t.Errorf("pop show after two RETRs:\n%s", out)
	}
	// The day before: the message at 23:59:59 JST is in.
	mustCLI(t, r.dir, "", "pop", "set", user, "--access", "since:2026-03-01")
	if got := popUIDs(t, r.pop3s, tc, user, pw); !slices.Equal(got, []string{before, first, later}) {
		t.Fatalf("since 2026-03-01 JST: %v", got)
	}
	// "since-now" and "all" are unchanged.
	mustCLI(t, r.dir, "", "pop", "set", user, "--access", "since-now")
	if got := popUIDs(t, r.pop3s, tc, user, pw); len(got) != 0 {
		t.Fatalf("since-now: %v", got)
	}
	mustCLI(t, r.dir, "", "pop", "set", user, "--access", "all")
	if got := popUIDs(t, r.pop3s, tc, user, pw); !slices.Equal(got, []string{before, first, later}) {
		t.Fatalf("all: %v", got)
	}
}

// Hostile values of --access since:DAY and deliver --received are refused
// with a short message, changing nothing.
func TestAdmin_POPDayRefusals(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "taro-password\n", "user", "add", "taro@skydesk.jp", "--password-stdin")
	before := mustCLI(t, dir, "", "pop", "show", "taro@skydesk.jp")
	if !strings.Contains(before, "last POP access: never") {
		t.Errorf("pop show before any session:\n%s", before)
	}
	long := "since:" + strings.Repeat("2", 5000)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"pop", "set", "taro@skydesk.jp", "--access", "since:2026-02-30"}, "is not a date YYYY-MM-DD"},
		{[]string{"pop", "set", "taro@skydesk.jp", "--access", "since:9999-12-31"}, "is in the future"},
		{[]string{"pop", "set", "taro@skydesk.jp", "--access", "since:1969-12-31"}, "before 1970"},
		{[]string{"pop", "set", "taro@skydesk.jp", "--access", "since:"}, "is not a date"},
		{[]string{"pop", "set", "taro@skydesk.jp", "--access", "since:2026-3-2"}, "is not a date"},
		{[]string{"pop", "set", "taro@skydesk.jp", "--access", "since"}, "is not disabled, all, since-now or since:YYYY-MM-DD"},
		{[]string{"pop", "set", "taro@skydesk.jp", "--access", long}, "is not a date"},
		{[]string{"deliver", "--received", "yesterday", "taro@skydesk.jp"}, "is not an RFC 3339 time"},
		{[]string{"deliver", "--received", "2026-03-02T00:00:00", "taro@skydesk.jp"}, "is not an RFC 3339 time"}, // no zone
		{[]string{"deliver", "--received", "1969-12-31T23:59:59Z", "taro@skydesk.jp"}, "before 1970 or in the future"},
		{[]string{"deliver", "--received", "9999-01-01T00:00:00Z", "taro@skydesk.jp"}, "before 1970 or in the future"},
	} {
		code, _, errs := cli(t, dir, "Subject: x\n\nx\n", tc.args...)
		if code != exitRefused || !strings.Contains(errs, tc.msg) || len(errs) > 300 {
			t.Errorf("%.60q: exit %d, %q; want %q", tc.args, code, errs, tc.msg)
		}
	}
	if after := mustCLI(t, dir, "", "pop", "show", "taro@skydesk.jp"); after != before {
		t.Errorf("refusals changed something:\n%s\nwas\n%s", after, before)
	}
}

// `stats onboarding` names every discovery format, with 0 before any.
func TestAdmin_statsOnboarding(t *testing.T) {
	dir := t.TempDir()
	out := mustCLI(t, dir, "", "stats", "onboarding")
	for _, f := range []string{"thunderbird", "autodiscover_xml", "autodiscover_json", "mobileconfig", "setup_page"} {
		if !regexp.MustCompile(`(?m)^` + f + ` +0 asked, 0 logged in +0 asked, 0 logged in$`).MatchString(out) {
			t.Errorf("no empty row for %s:\n%s", f, out)
		}
	}
	if code, _, _ := cli(t, dir, "", "stats", "nonsense"); code != exitUsage {
		t.Errorf("stats nonsense: exit %d", code)
	}
}

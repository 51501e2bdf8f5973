package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
	"github.com/skydesk/skydeskd/store/storetest"
)

// runCLI runs one command line in-process (no --data appended).
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv})
	return code, out.String(), errb.String()
}

// A node on SQLite is stopped, `skydeskd migrate` moves its data directory
// into a new PostgreSQL database, and a node on PostgreSQL serves the same
// mailbox: POP3 UIDs and bodies as before, the same password. A second
// run is refused with exit 2; bad flags are usage errors (exit 1).
func TestMigrate_sqliteNodeToPostgresNode(t *testing.T) {
	storetest.SkipOnPostgres(t, "migrates from a SQLite node's file")
	src, dst := t.TempDir(), t.TempDir()
	srcFile := writeSMTPConfig(t, src, "")
	admin := func(stdin string, args ...string) {
		t.Helper()
		mustCLI(t, src, stdin, append(args, "--config", srcFile)...)
	}
	admin("", "domain", "add", "example.co.jp")
	admin("taro-password\n", "user", "add", "taro@skydesk.jp", "--password-stdin")
	admin("", "pop", "set", "taro@skydesk.jp", "--access", "all")
	big := "Subject: big\n\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 2*store.ChunkSize/64)
	admin(big, "deliver", "taro@skydesk.jp")
	admin("Subject: small\n\nhello\n", "deliver", "taro@skydesk.jp")

	addrs, stop := serveInProcess(t, srcFile, []string{"pop3s"})
	tc := trustDir(t, src, "pop.skydesk.jp")
	uids := popUIDs(t, addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password")
	p := dialPOP3S(t, addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password")
	bodies := p.messages()
	p.quit()
	if code, _ := stop(); code != exitOK {
		t.Fatalf("SQLite node exit %d", code)
	}

	url := pgtest.URL(t)
	code, out, errs := runCLI("migrate", "--from", "sqlite:"+src, "--to", "postgres:"+url)
	if code != exitOK {
		t.Fatalf("migrate: exit %d: %s", code, errs)
	}
	for _, want := range []string{`schema version \d+`, `(?m)^accounts +1 +count, checksum$`, `(?m)^messages +2 `,
		`(?m)^message_chunks +\d`, `message bodies: 2 \(0.5 MiB\), SHA-256 equal`, `not copied: pop_leases`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("summary lacks %s:\n%s", want, out)
		}
	}

	dstFile := writeSMTPConfig(t, dst, "database: {driver: postgres, url: \""+url+"\"}\n")
	addrs, _ = serveInProcess(t, dstFile, []string{"pop3s"})
	tc = trustDir(t, dst, "pop.skydesk.jp")
	if got := popUIDs(t, addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password"); !slices.Equal(got, uids) || len(got) != 2 {
		t.Errorf("UIDs on PostgreSQL %q, on SQLite %q", got, uids)
	}
	p = dialPOP3S(t, addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password")
	if got := p.messages(); !slices.Equal(got, bodies) {
		t.Errorf("bodies differ after the move (%d messages, want %d)", len(got), len(bodies))
	}
	p.quit()

	code, _, errs = runCLI("migrate", "--from", "sqlite:"+src, "--to", url)
	if code != exitRefused || !strings.Contains(errs, "not empty") {
		t.Errorf("second migrate: exit %d, %q; want %d and not empty", code, errs, exitRefused)
	}
	for _, args := range [][]string{
		{"migrate", "--from", "sqlite:" + src},
		{"migrate", "--from", src, "--to", url},
		{"migrate", "--from", "sqlite:" + src, "--to", "mysql://x"},
	} {
		if code, _, _ := runCLI(args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// With database.driver postgres, the admin commands and serve share one
// PostgreSQL database and nothing lands in a SQLite file: accounts and a
// domain made by commands, a quota set and its usage shown, mail delivered
// by a command (a body of several chunks) and through the MX of serve,
// fetched over POP3S; an admin command run while serve runs
// changes what serve answers.
func TestPostgres_adminCommandsAndServe(t *testing.T) {
	url := pgtest.URL(t)
	dir := t.TempDir()
	file := writeSMTPConfig(t, dir, "database: {driver: postgres, url: \""+url+"\"}\n")
	admin := func(stdin string, args ...string) string {
		t.Helper()
		return mustCLI(t, dir, stdin, append(args, "--config", file)...)
	}
	admin("", "domain", "add", "Example.CO.JP")
	if out := admin("", "domain", "list"); out != "example.co.jp\n" {
		t.Errorf("domain list = %q", out)
	}
	admin("taro-password\n", "user", "add", "taro@skydesk.jp", "--password-stdin")
	admin("hanako-password\n", "user", "add", "hanako@example.co.jp", "--password-stdin")
	admin("", "pop", "set", "taro@skydesk.jp", "--access", "all")
	if out := admin("", "user", "list"); !strings.Contains(out, "taro@skydesk.jp") || !strings.Contains(out, "hanako@example.co.jp") {
		t.Errorf("user list = %q", out)
	}
	secret := strings.TrimSpace(admin("", "app-password", "create", "hanako@example.co.jp", "--name", "phone"))
	if out := admin("", "app-password", "list", "hanako@example.co.jp"); !strings.Contains(out, "phone") {
		t.Errorf("app-password list = %q", out)
	}
	if out := admin("", "user", "set", "taro@skydesk.jp", "--quota", "10M"); out != "quota of taro@skydesk.jp: 0.0 MiB of 10.0 MiB\n" {
		t.Errorf("user set --quota = %q", out)
	}
	big := "Subject: by command\n\nfirst\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 3*store.ChunkSize/64)
	admin(big, "deliver", "taro@skydesk.jp")
	if out := admin("", "pop", "show", "taro@skydesk.jp"); !strings.Contains(out, "access: all") || !strings.Contains(out, "usage: 0.8 MiB of 10.0 MiB\n") {
		t.Errorf("pop show = %q", out)
	}
	admin("", "user", "set", "taro@skydesk.jp", "--two-step", "on")
	admin("", "user", "set", "taro@skydesk.jp", "--two-step", "off")
	if out := admin("", "dns", "records", "example.co.jp"); !strings.Contains(out, "_pop3s._tcp.example.co.jp") {
		t.Errorf("dns records = %q", out)
	}
	if out := admin("", "cert", "list"); !strings.Contains(out, "autoconfig.example.co.jp") {
		t.Errorf("cert list = %q", out)
	}
	admin("", "domain", "add", "spare.example")
	admin("", "domain", "remove", "spare.example")

	addrs, _ := serveInProcess(t, file, []string{"smtps", "mx", "pop3s"})
	if err := sendMX(addrs["mx"], "someone@elsewhere.test", []string{"taro@skydesk.jp"}, "Subject: by MX\r\n\r\nsecond\r\n"); err != nil {
		t.Fatalf("MX delivery: %v", err)
	}
	tc := trustDir(t, dir, "pop.skydesk.jp")
	p := dialPOP3S(t, addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password")
	msgs := p.messages()
	p.quit()
	if len(msgs) != 2 || msgs[0] != big || !strings.Contains(msgs[1], "second") {
		t.Errorf("POP3S gave %d messages; want the command's (%d octets, byte-exact) and the MX's", len(msgs), len(big))
	}
	// A submission by an organization account with its app password,
	// to a local mailbox, while an admin command changes the password of
	// the other account under the running server.
	if err := sendSMTPS(addrs["smtps"], tc, "hanako@example.co.jp", secret, "hanako@example.co.jp",
		[]string{"taro@skydesk.jp"}, "Subject: submitted\r\n\r\nthird\r\n"); err != nil {
		t.Fatalf("submission: %v", err)
	}
	admin("", "app-password", "revoke", "hanako@example.co.jp", "phone")
	if out := admin("", "app-password", "list", "hanako@example.co.jp"); strings.Contains(out, "phone") {
		t.Errorf("revoked app password still listed: %q", out)
	}
	admin("changed-password\n", "user", "passwd", "taro@skydesk.jp", "--password-stdin")
	p = dialPOP3S(t, addrs["pop3s"], tc, "taro@skydesk.jp", "changed-password")
	if msgs := p.messages(); len(msgs) != 3 || !strings.Contains(msgs[2], "third") {
		t.Errorf("after submission: %q", msgs)
	}
	p.quit()
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); !os.IsNotExist(err) {
		t.Errorf("a SQLite file was made in data_dir: %v", err)
	}
}

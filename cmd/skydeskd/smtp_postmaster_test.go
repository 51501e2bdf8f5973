package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// postmasterWarnings returns the start-up warnings about smtp.postmaster.
func postmasterWarnings(t *testing.T, lines []string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range lines {
		var r map[string]any
		if json.Unmarshal([]byte(l), &r) == nil && r["level"] == "WARN" && r["key"] == "smtp.postmaster" {
			out = append(out, r)
		}
	}
	return out
}

// TestServe_postmasterWarning: with the MX on and no smtp.postmaster
// account, serve says so once at start with the admin command that fixes
// it; that very command (run as printed) makes the warning go away, and
// serve hands smtp.postmaster to the MX: postmaster@ a hosted domain
// arrives in that account (RFC 5321 §4.5.1).
func TestServe_postmasterWarning(t *testing.T) {
	dir := t.TempDir()
	file := writeSMTPConfig(t, dir, "")
	want := []string{"smtps", "submission", "mx", "pop3s"}
	addrs, lines, stop := serveInProcessLog(t, file, want)
	warns := postmasterWarnings(t, lines)
	if len(warns) != 1 {
		t.Fatalf("%d smtp.postmaster warnings, want 1:\n%s", len(warns), strings.Join(lines, "\n"))
	}
	w := warns[0]
	fix, _ := w["fix"].(string)
	wantFix := "skydeskd user add postmaster@skydesk.jp --password-stdin --config " + file + " (or point smtp.postmaster at an existing account)"
	if w["account"] != "postmaster@skydesk.jp" || fix != wantFix || !strings.Contains(w["msg"].(string), "RFC 5321 §4.5.1") {
		t.Errorf("warning %v\nwant fix %q", w, wantFix)
	}
	var se *textproto.Error
	if err := sendMX(addrs["mx"], "someone@example.org", []string{"postmaster@skydesk.jp"}, "Subject: x\r\n\r\nx\r\n"); !errors.As(err, &se) || se.Code != 550 {
		t.Fatalf("postmaster@ without the account: %v, want 550", err)
	}
	if code, _ := stop(); code != exitOK {
		t.Fatalf("serve exited %d", code)
	}

	// The printed command, as an operator would paste it.
	args := strings.Fields(strings.TrimSuffix(fix, " (or point smtp.postmaster at an existing account)"))
	if args[0] != "skydeskd" {
		t.Fatalf("fix %q does not start with skydeskd", fix)
	}
	var errb strings.Builder
	if code := run(context.Background(), args[1:], env{stdin: strings.NewReader("postmaster-password-1\n"), stdout: io.Discard, stderr: &errb, getenv: os.Getenv}); code != exitOK {
		t.Fatalf("%q: exit %d: %s", fix, code, errb.String())
	}
	mustCLI(t, dir, "", "pop", "set", "postmaster@skydesk.jp", "--access", "all")
	mustCLI(t, dir, "", "domain", "add", "example.co.jp") // no postmaster account of its own

	addrs, lines, _ = serveInProcessLog(t, file, want)
	if warns := postmasterWarnings(t, lines); len(warns) != 0 {
		t.Errorf("still warned after the fix: %v", warns)
	}
	if err := sendMX(addrs["mx"], "someone@example.org", []string{"Postmaster@Example.CO.JP"}, "Subject: hello postmaster\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	pop := dialPOP3S(t, addrs["pop3s"], trustDir(t, dir, "pop.skydesk.jp"), "postmaster@skydesk.jp", "postmaster-password-1")
	if got := pop.messages(); len(got) != 1 || !strings.Contains(got[0], "Subject: hello postmaster") {
		t.Errorf("postmaster mailbox: %q", got)
	}
	pop.quit()
}

// No warning when nobody is to be told: no MX listener, or smtp.postmaster
// deliberately empty.
func TestServe_postmasterWarning_notWhenOff(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"mx-off", `listen: {http: "", https: "", dns: "", pop3s: "", pop3: "", smtps: "127.0.0.1:0", submission: "", mx: ""}`},
		{"postmaster-empty", `listen: {http: "", https: "", dns: "", pop3s: "", pop3: "", smtps: "127.0.0.1:0", submission: "", mx: "127.0.0.1:0"}
smtp: {postmaster: ""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "skydeskd.yaml")
			cfg := "data_dir: " + dir + "\nlog: {format: json, level: info}\n" + tc.yaml + "\n"
			if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			_, lines, _ := serveInProcessLog(t, file, []string{"smtps"})
			if warns := postmasterWarnings(t, lines); len(warns) != 0 {
				t.Errorf("warned: %v", warns)
			}
		})
	}
}

// smtp.postmaster in a domain that is neither personal nor hosted: the
// account cannot be added before the domain, so the fix says both.
func TestServe_postmasterWarning_domainNotLocal(t *testing.T) {
	dir := t.TempDir()
	file := writeSMTPConfig(t, dir, "smtp: {postmaster: abuse@Other.Example}")
	_, lines, _ := serveInProcessLog(t, file, []string{"mx"})
	warns := postmasterWarnings(t, lines)
	want := "skydeskd domain add other.example --config " + file + "; then skydeskd user add abuse@Other.Example --password-stdin --config " + file
	if len(warns) != 1 || !strings.HasPrefix(warns[0]["fix"].(string), want) {
		t.Fatalf("warnings %v, want one with fix %q", warns, want)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/skydeskd.yaml":      "/etc/skydeskd.yaml",
		"postmaster@skydesk.jp":   "postmaster@skydesk.jp",
		"/srv/my data":            "'/srv/my data'",
		"o'brien$x@example.co.jp": `'o'\''brien$x@example.co.jp'`,
		"":                        "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	c := common{configFile: "/etc/sky desk.yaml", dataDir: "/var/lib/skydeskd"}
	if got := c.adminFlags(); got != " --config '/etc/sky desk.yaml' --data /var/lib/skydeskd" {
		t.Errorf("adminFlags = %q", got)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/skydesk/skydeskd/store/storetest"
)

// cli runs one command in-process against dir, like the real binary.
func cli(t *testing.T, dir, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")
	var out, errb bytes.Buffer
	full := append(args, "--data", dir)
	code = run(context.Background(), full, env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: os.Getenv})
	return code, out.String(), errb.String()
}

func mustCLI(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	code, out, errs := cli(t, dir, stdin, args...)
	if code != exitOK {
		t.Fatalf("%v: exit %d: %s", args, code, errs)
	}
	return out
}

func TestAdminCommandsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "", "domain", "add", "Example.CO.JP")
	mustCLI(t, dir, "", "domain", "add", "例え.jp")
	if out := mustCLI(t, dir, "", "domain", "list"); out != "example.co.jp\nxn--r8jz45g.jp\n" {
		t.Errorf("domain list = %q", out)
	}
	mustCLI(t, dir, "taro-password\n", "user", "add", "taro@skydesk.jp", "--password-stdin")
	mustCLI(t, dir, "", "user", "add", "sso@example.co.jp", "--federated")
	mustCLI(t, dir, "new-password\n", "user", "passwd", "sso@example.co.jp", "--password-stdin")
	mustCLI(t, dir, "", "user", "set", "taro@skydesk.jp", "--two-step", "on")
	out := mustCLI(t, dir, "", "user", "list")
	for _, want := range []string{"taro@skydesk.jp    personal      yes       on", "sso@example.co.jp  organization  yes       off       yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("user list lacks %q:\n%s", want, out)
		}
	}
	secret := strings.TrimSpace(mustCLI(t, dir, "", "app-password", "create", "taro@skydesk.jp", "--name", "iPhone"))
	if len(strings.ReplaceAll(secret, " ", "")) != 16 {
		t.Errorf("app password %q", secret)
	}
	if out := mustCLI(t, dir, "", "app-password", "list", "taro@skydesk.jp"); !strings.Contains(out, "iPhone") || !strings.Contains(out, "never") || strings.Contains(out, secret) {
		t.Errorf("app-password list = %q", out)
	}
	out = mustCLI(t, dir, "", "pop", "set", "taro@skydesk.jp", "--access", "since-now", "--spam", "include", "--on-delete", "delete")
	if !strings.Contains(out, "access: since-now (since 20") || !strings.Contains(out, "spam: include") || !strings.Contains(out, "on-delete: delete") {
		t.Errorf("pop set = %q", out)
	}
	uid := strings.TrimSpace(mustCLI(t, dir, "Subject: hi\n\nhello\n", "deliver", "taro@skydesk.jp"))
	uid2 := strings.TrimSpace(mustCLI(t, dir, "Subject: spam\n\nbuy\n", "deliver", "TARO@skydesk.jp", "--spam"))
	if uid == "" || uid == uid2 {
		t.Errorf("deliver printed %q then %q", uid, uid2)
	}

	// A restart is a new process: every command opens the file afresh, so
	// reading back through new commands proves persistence.
	if out := mustCLI(t, dir, "", "pop", "show", "taro@skydesk.jp"); !strings.Contains(out, "since-now") || !strings.Contains(out, "delete") {
		t.Errorf("pop show after restart = %q", out)
	}
	mustCLI(t, dir, "", "app-password", "revoke", "taro@skydesk.jp", "iPhone")
	if out := mustCLI(t, dir, "", "app-password", "list", "taro@skydesk.jp"); strings.Contains(out, "iPhone") {
		t.Errorf("revoked password still listed: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "skydeskd.db")); err != nil && !storetest.Postgres() {
		t.Errorf("database file: %v", err)
	}
}

func TestAdminRefusals(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "", "domain", "add", "example.co.jp")
	mustCLI(t, dir, "taro-password\n", "user", "add", "taro@skydesk.jp", "--password-stdin")
	before := mustCLI(t, dir, "", "user", "list")
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"pw-12345678\n", []string{"user", "add", "x@gmail.com", "--password-stdin"}, exitRefused, "neither the personal domain nor a hosted domain"},
		{"pw-12345678\n", []string{"user", "add", "not-an-address", "--password-stdin"}, exitRefused, "invalid address: missing @"},
		{"pw-12345678\n", []string{"user", "add", "taro@skydesk.jp", "--password-stdin"}, exitRefused, "already exists"},
		{"short\n", []string{"user", "add", "new@skydesk.jp", "--password-stdin"}, exitRefused, "shorter than 8"},
		{"", []string{"user", "add", "new@skydesk.jp", "--password-stdin"}, exitRefused, "no password"},
		{"", []string{"pop", "set", "taro@skydesk.jp", "--access", "sometimes"}, exitRefused, `--access: "sometimes" is not disabled, all, since-now or since:YYYY-MM-DD`},
		{"", []string{"pop", "set", "taro@skydesk.jp", "--spam", "maybe"}, exitRefused, "--spam"},
		{"", []string{"pop", "set", "taro@skydesk.jp", "--on-delete", "shred"}, exitRefused, "--on-delete"},
		{"", []string{"pop", "set", "ghost@skydesk.jp", "--spam", "include"}, exitRefused, "not found"},
		{"", []string{"user", "set", "taro@skydesk.jp", "--two-step", "maybe"}, exitRefused, "not on or off"},
		{"", []string{"domain", "remove", "example.co.jp"}, exitOK, ""},
		{"", []string{"domain", "remove", "example.co.jp"}, exitRefused, "not found"},
		{"", []string{"domain", "add", "bad_domain"}, exitRefused, "not a valid host name"},
		{"", []string{"app-password", "revoke", "taro@skydesk.jp", "nothing"}, exitRefused, "not found"},
		{"x", []string{"deliver", "ghost@skydesk.jp"}, exitRefused, "not found"},
		{"", []string{"deliver", "taro@skydesk.jp"}, exitRefused, "empty message"},
		{"", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"", []string{"user", "add"}, exitUsage, "want ADDRESS"},
		{"", []string{"user", "add", "a@skydesk.jp"}, exitUsage, "--password-stdin or --federated"},
		{"", []string{"pop", "set", "taro@skydesk.jp", "--colour", "red"}, exitUsage, "flag provided but not defined"},
		{"", []string{"pop", "set", "taro@skydesk.jp"}, exitUsage, "at least one"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errs := cli(t, dir, tc.stdin, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, errs)
			}
			if tc.code == exitRefused && strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("reason is not one line: %q", errs)
			}
			if !strings.Contains(errs, tc.msg) {
				t.Errorf("stderr %q lacks %q", errs, tc.msg)
			}
		})
	}
	// Nothing half-written: the refused commands changed no account.
	if after := mustCLI(t, dir, "", "user", "list"); after != before {
		t.Errorf("refused commands changed accounts:\n%s\n%s", before, after)
	}
}

// TestAdminTwoStep: `user set --two-step on` prints a new authenticator
// secret once (a working otpauth URL), again rotates it, off removes it.
func TestAdminTwoStep(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "taro-password\n", "user", "add", "taro@skydesk.jp", "--password-stdin")
	enrol := func() (secret string) {
		t.Helper()
		out := mustCLI(t, dir, "", "user", "set", "taro@skydesk.jp", "--two-step", "on")
		for _, want := range []string{"two-step verification on for taro@skydesk.jp", "give it to the user", "not shown again"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		m := regexp.MustCompile(`(?m)^  otpauth URL: (otpauth://\S+)\n  secret: +([A-Z2-7]+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no otpauth URL and secret in:\n%s", out)
		}
		k, err := otp.NewKeyFromURL(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if k.Secret() != m[2] || k.Issuer() != "SkyDesk Mail" || k.AccountName() != "taro@skydesk.jp" || k.Type() != "totp" {
			t.Errorf("key %s: issuer %q account %q secret %q", m[1], k.Issuer(), k.AccountName(), k.Secret())
		}
		if _, err := totp.GenerateCode(k.Secret(), time.Now()); err != nil {
			t.Errorf("secret does not make codes: %v", err)
		}
		return m[2]
	}
	first := enrol()
	if out := mustCLI(t, dir, "", "user", "list"); !strings.Contains(out, "taro@skydesk.jp  personal  yes       on") {
		t.Errorf("user list:\n%s", out)
	}
	if second := enrol(); second == first {
		t.Error("running it again did not rotate the secret")
	}
	out := mustCLI(t, dir, "", "user", "set", "taro@skydesk.jp", "--two-step", "off")
	if !strings.Contains(out, "two-step verification off for taro@skydesk.jp") || strings.Contains(out, "otpauth") {
		t.Errorf("off: %q", out)
	}
	if out := mustCLI(t, dir, "", "user", "list"); !strings.Contains(out, "taro@skydesk.jp  personal  yes       off") {
		t.Errorf("user list after off:\n%s", out)
	}
	// The issuer follows provider.name.
	cfg := filepath.Join(dir, "skydeskd.yaml")
	if err := os.WriteFile(cfg, []byte("provider:\n  name: Other Mail\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = mustCLI(t, dir, "", "user", "set", "taro@skydesk.jp", "--two-step", "on", "--config", cfg)
	if !strings.Contains(out, "issuer=Other+Mail") && !strings.Contains(out, "issuer=Other%20Mail") {
		t.Errorf("issuer not from provider.name:\n%s", out)
	}
	code, stdout, errs := cli(t, dir, "", "user", "set", "ghost@skydesk.jp", "--two-step", "on")
	if code != exitRefused || stdout != "" || !strings.Contains(errs, "not found") {
		t.Errorf("unknown account: exit %d, stdout %q, stderr %q", code, stdout, errs)
	}
}

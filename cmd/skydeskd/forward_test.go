package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// runConfig runs a command against a configuration file.
func runConfig(t *testing.T, file string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")
	var out, errb bytes.Buffer
	code := run(context.Background(), append(args, "--config", file), env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv})
	return code, out.String(), errb.String()
}

// forward set is refused (exit 2, saying why) without a relay; with one
// it stays pending and queues the confirmation; show and off follow.
func TestForwardCommand(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "pw-1234567890ab\n", "user", "add", "taro@skydesk.jp", "--password-stdin")
	code, _, errs := cli(t, dir, "", "forward", "set", "taro@skydesk.jp", "--to", "me@example.org")
	if code != exitRefused || !strings.Contains(errs, "smtp.smarthost is not set") {
		t.Fatalf("without a relay: exit %d: %s", code, errs)
	}
	file := writeSMTPConfig(t, dir, "smtp: {smarthost: {host: localhost, port: 2525, tls: none, retry_period: 1h}}\n")
	code, out, errs := runConfig(t, file, "forward", "set", "taro@skydesk.jp", "--to", "me@example.org", "--keep", "no")
	if code != exitOK || !strings.Contains(out, "forwarding: pending confirmation") || !strings.Contains(out, "keep: no") ||
		!strings.Contains(out, "a confirmation link was sent to me@example.org") {
		t.Fatalf("set: exit %d\n%s%s", code, out, errs)
	}
	if code, _, _ := runConfig(t, file, "forward", "set", "taro@skydesk.jp", "--to", "me@example.org", "--keep", "maybe"); code != exitRefused {
		t.Errorf("--keep maybe: exit %d", code)
	}
	if _, out, _ := runConfig(t, file, "forward", "show", "taro@skydesk.jp"); !strings.Contains(out, "to: me@example.org") {
		t.Errorf("show:\n%s", out)
	}
	if _, out, _ := runConfig(t, file, "forward", "off", "taro@skydesk.jp"); out != "forwarding: off\n" {
		t.Errorf("off:\n%s", out)
	}
	if _, out, _ := runConfig(t, file, "forward", "show", "taro@skydesk.jp"); out != "forwarding: off\n" {
		t.Errorf("show after off:\n%s", out)
	}
	if code, _, _ := runConfig(t, file, "forward", "show", "nobody@skydesk.jp"); code != exitRefused {
		t.Errorf("show of a missing account: exit %d", code)
	}
}

package smtpd_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store/storetest"
)

// Real third-party clients against the listeners, trusting the service
// certificate (verification on: what a user's client does).

func runTool(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, storetest.RequireTool(t, name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second // a stray child holding the pipe cannot hang the test
	err := cmd.Run()
	return out.String(), err
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// delivered checks that the last accepted message carries subject and went
// to rcpt.
func (f *fixture) delivered(t *testing.T, subject, rcpt string) {
	t.Helper()
	a := f.st.last(t)
	if !strings.Contains(string(a.Body), "Subject: "+subject) || len(a.Local) != 1 || a.Local[0] != rcpt {
		t.Fatalf("last accepted message is not %q for %s: %+v\n%s", subject, rcpt, a.Local, a.Body)
	}
}

func TestClients_swaks(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	common := []string{"--server", "127.0.0.1", "--from", taro, "--to", hanako,
		"--auth-user", taro, "--auth-password", taroPW, "--tls-verify", "--tls-ca-path", f.certFile, "--timeout", "30"}
	t.Run("465-implicit-TLS-PLAIN", func(t *testing.T) {
		out, err := runTool(t, "", "swaks", append(common, "--port", port(f.smtps), "--tls-on-connect", "--auth", "PLAIN",
			"--header", "Subject: swaks 465")...)
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
		f.delivered(t, "swaks 465", hanako)
	})
	t.Run("587-STARTTLS-LOGIN", func(t *testing.T) {
		out, err := runTool(t, "", "swaks", append(common, "--port", port(f.submission), "--tls", "--auth", "LOGIN",
			"--header", "Subject: swaks 587")...)
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
		if !strings.Contains(out, "STARTTLS") || !strings.Contains(out, "235 2.0.0") {
			t.Errorf("transcript lacks STARTTLS/235:\n%s", out)
		}
		f.delivered(t, "swaks 587", hanako)
	})
	t.Run("587-wrong-password", func(t *testing.T) {
		args := []string{"--server", "127.0.0.1", "--port", port(f.submission), "--tls", "--tls-verify", "--tls-ca-path", f.certFile,
			"--from", taro, "--to", hanako, "--auth", "PLAIN", "--auth-user", taro, "--auth-password", "not-the-password"}
		out, err := runTool(t, "", "swaks", args...)
		if err == nil || !strings.Contains(out, "535 5.7.8") {
			t.Fatalf("wrong password accepted? err=%v\n%s", err, out)
		}
	})
	t.Run("open-relay-attempt-MX", func(t *testing.T) {
		n := f.st.count()
		out, err := runTool(t, "", "swaks", "--server", "127.0.0.1", "--port", port(f.mx), "--from", "spammer@example.org",
			"--to", "victim@example.net", "--timeout", "30")
		if err == nil || !strings.Contains(out, "554 5.7.1") {
			t.Fatalf("relay through the MX not refused: err=%v\n%s", err, out)
		}
		if f.st.count() != n {
			t.Fatal("the relay attempt stored a message")
		}
	})
	t.Run("open-relay-attempt-465-unauthenticated", func(t *testing.T) {
		n := f.st.count()
		out, err := runTool(t, "", "swaks", "--server", "127.0.0.1", "--port", port(f.smtps), "--tls-on-connect",
			"--tls-verify", "--tls-ca-path", f.certFile, "--from", "spammer@example.org", "--to", "victim@example.net")
		if err == nil || !strings.Contains(out, "530 5.7.0") {
			t.Fatalf("unauthenticated relay not refused: err=%v\n%s", err, out)
		}
		if f.st.count() != n {
			t.Fatal("the relay attempt stored a message")
		}
	})
	t.Run("MX-local-delivery", func(t *testing.T) {
		out, err := runTool(t, "", "swaks", "--server", "127.0.0.1", "--port", port(f.mx), "--tls", "--tls-verify",
			"--tls-ca-path", f.certFile, "--from", "friend@example.org", "--to", taro, "--header", "Subject: swaks mx")
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
		f.delivered(t, "swaks mx", taro)
	})
}

func TestClients_msmtp(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(taroPW), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, addr, starttls, auth string
	}{
		{"465", f.smtps, "off", "plain"},
		{"587", f.submission, "on", "login"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subject := "msmtp " + tc.name
			out, err := runTool(t, msg(taro, hanako, subject, "sent by msmtp"), "msmtp",
				"--host=127.0.0.1", "--port="+port(tc.addr), "--tls=on", "--tls-starttls="+tc.starttls,
				"--tls-trust-file="+f.certFile, "--auth="+tc.auth, "--user="+taro, "--passwordeval=cat "+pwFile,
				"--from="+taro, "--", hanako)
			if err != nil {
				t.Fatalf("msmtp: %v\n%s", err, out)
			}
			f.delivered(t, subject, hanako)
		})
	}
}

func TestClients_curl(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	out, err := runTool(t, msg(taro, hanako, "curl smtps", "sent by curl"), "curl", "--silent", "--show-error",
		"--max-time", "30", "--cacert", f.certFile, "--url", "smtps://127.0.0.1:"+port(f.smtps),
		"--mail-from", taro, "--mail-rcpt", hanako, "--user", taro+":"+taroPW, "--upload-file", "-")
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	f.delivered(t, "curl smtps", hanako)
	// Wrong sender: curl reports the 553 refusal.
	out, err = runTool(t, msg(taro, hanako, "curl spoof", "x"), "curl", "--silent", "--show-error", "--max-time", "30",
		"--cacert", f.certFile, "--url", "smtps://127.0.0.1:"+port(f.smtps),
		"--mail-from", hanako, "--mail-rcpt", hanako, "--user", taro+":"+taroPW, "--upload-file", "-")
	if err == nil || !strings.Contains(out, "553") {
		t.Fatalf("spoofed sender accepted? err=%v\n%s", err, out)
	}
}

const smtplibScript = `
import smtplib, ssl, sys
from email.message import EmailMessage
host, p465, p587, ca, user, pw, rcpt = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
def message(subject):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = user, rcpt, subject
    m.set_content("sent by smtplib: 日本語")
    return m
with smtplib.SMTP_SSL(host, int(p465), context=ctx, timeout=30) as s:
    s.login(user, pw)
    s.send_message(message("smtplib 465"))
with smtplib.SMTP(host, int(p587), timeout=30) as s:
    s.ehlo()
    assert "auth" not in s.esmtp_features, "AUTH before STARTTLS"
    s.starttls(context=ctx)
    s.ehlo()
    s.user, s.password = user, pw
    s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    s.send_message(message("smtplib 587"))
try:
    with smtplib.SMTP_SSL(host, int(p465), context=ctx, timeout=30) as s:
        s.login(user, "wrong password")
    sys.exit("wrong password accepted")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
print("ok")
`

func TestClients_pythonSmtplib(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	out, err := runTool(t, "", "python3", "-c", smtplibScript, "127.0.0.1", port(f.smtps), port(f.submission),
		f.certFile, taro, taroPW, hanako)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	if f.st.count() != 2 {
		t.Fatalf("%d messages accepted, want 2", f.st.count())
	}
	f.delivered(t, "smtplib 587", hanako)
}

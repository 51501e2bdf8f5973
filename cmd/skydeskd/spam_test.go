package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/rspamd/rspamdtest"
)

// serve with spam.rspamd_url sends MX mail through a real rspamd: GTUBE
// is refused, "add header" reaches POP only with "include spam", and the
// verdicts are on /metrics.
func TestSMTP_rspamdWiring(t *testing.T) {
	srv := rspamdtest.Start(t)
	dir := t.TempDir()
	const user, pw = "taro@skydesk.jp", "taro-password-1"
	mustCLI(t, dir, pw+"\n", "user", "add", user, "--password-stdin")
	mustCLI(t, dir, "", "pop", "set", user, "--access", "all")
	file := filepath.Join(dir, "skydeskd.yaml")
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "127.0.0.1:0", https: "", dns: "", pop3s: "127.0.0.1:0", pop3: "", smtps: "", submission: "", mx: "127.0.0.1:0"}
spam: {rspamd_url: %q, timeout: 5s, on_error: tempfail}
`, dir, srv.URL)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, _ := serveInProcess(t, file, []string{"mx", "pop3s", "http"})
	head := "From: <news@example.org>\r\nTo: <" + user + ">\r\nDate: Thu, 03 Dec 2026 09:00:00 +0900\r\nMessage-ID: <w@example.org>\r\n"

	err := sendMX(addrs["mx"], "news@example.org", []string{user}, head+"Subject: t\r\n\r\n"+rspamdtest.GTUBE+"\r\n")
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("GTUBE: %v, want 550", err)
	}
	for _, body := range []string{"Subject: ham\r\n\r\nlunch?\r\n", "Subject: spam\r\n\r\n" + rspamdtest.SpamWord + "\r\n"} {
		if err := sendMX(addrs["mx"], "news@example.org", []string{user}, "X-Spam-Flag: NO\r\n"+head+body); err != nil {
			t.Fatal(err)
		}
	}
	tc := trustDir(t, dir, "pop.skydesk.jp")
	subjects := func() string {
		p := dialPOP3S(t, addrs["pop3s"], tc, user, pw)
		defer p.quit()
		var s []string
		for _, m := range p.messages() {
			s = append(s, regexp.MustCompile(`(?m)^Subject: (\w+)`).FindStringSubmatch(m)[1])
		}
		return strings.Join(s, ",")
	}
	if got := subjects(); got != "ham" {
		t.Errorf("include spam no: POP lists %q, want ham", got)
	}
	mustCLI(t, dir, "", "pop", "set", user, "--spam", "include")
	if got := subjects(); got != "ham,spam" {
		t.Errorf("include spam yes: POP lists %q, want ham,spam", got)
	}

	resp, err := http.Get("http://" + addrs["http"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	for _, re := range []string{`skydeskd_rspamd_verdicts_total\{action="reject"\} 1\b`,
		`skydeskd_rspamd_verdicts_total\{action="add header"\} 1\b`, `skydeskd_rspamd_verdicts_total\{action="no action"\} 1\b`,
		`skydeskd_rspamd_duration_seconds_count 3\b`,
		`skydeskd_smtp_messages_total\{outcome="spam_refused",service="mx"\} 1\b`} {
		if !regexp.MustCompile(re).Match(body) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
}

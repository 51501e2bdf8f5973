package smtpd

import (
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/rspamd"
)

func TestWithVerdict(t *testing.T) {
	const ours = "X-Spam-Flag: YES\r\n"
	for _, tc := range []struct {
		name, raw, fields, want string
	}{
		{"strips every X-Spam field", "X-Spam: yes\r\nSubject: a\r\nx-spam-flag: NO\r\nX-Spam-Status: No,\r\n\tscore=-5\r\nX-Spammer: keep\r\n\r\nX-Spam-Flag: NO in the body\r\n",
			ours, ours + "Subject: a\r\nX-Spammer: keep\r\n\r\nX-Spam-Flag: NO in the body\r\n"},
		{"headerless gets its blank line", "hello\r\n", ours, ours + "\r\nhello\r\n"},
		{"headerless without fields stays", "hello\r\n", "", "hello\r\n"},
		{"no body", "Subject: a\r\nX-Spam-Flag: NO\r\n", ours, ours + "Subject: a\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := withVerdict(parseMessage([]byte(tc.raw)), tc.fields)
			if got := string(m.raw); got != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
			// The result must parse as the same message.
			p := parseMessage(m.raw)
			if p.headerEnd != m.headerEnd || p.headerless != m.headerless {
				t.Errorf("headerEnd %d headerless %v, reparsed %d %v", m.headerEnd, m.headerless, p.headerEnd, p.headerless)
			}
			for k := range m.header {
				if strings.HasPrefix(strings.ToLower(k), "x-spam-") || strings.EqualFold(k, "x-spam") {
					t.Errorf("header map keeps %s", k)
				}
			}
		})
	}
}

func TestVerdictFields(t *testing.T) {
	syms := []rspamd.Symbol{{Name: "FROM_NO_DN", Score: 0}, {Name: "MISSING_DATE", Score: 1}, {Name: "SKYDESK_TEST_SPAM", Score: 8},
		{Name: "SOME_RATHER_LONG_SYMBOL_NAME", Score: -0.5}}
	got := verdictFields(rspamd.Result{Action: rspamd.AddHeader, Score: 8.5, RequiredScore: 15, Symbols: syms}, true)
	want := "X-Spam-Flag: YES\r\n" +
		"X-Spam-Status: Yes, score=8.50 required=15.00 action=\"add header\"\r\n" +
		"\ttests=FROM_NO_DN(0.00),MISSING_DATE(1.00),SKYDESK_TEST_SPAM(8.00),\r\n" +
		"\tSOME_RATHER_LONG_SYMBOL_NAME(-0.50)\r\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, l := range strings.Split(got, "\r\n") {
		if len(l) > 78 {
			t.Errorf("line of %d characters: %q", len(l), l)
		}
	}
	if got := verdictFields(rspamd.Result{Action: rspamd.NoAction}, false); got != "X-Spam-Flag: NO\r\nX-Spam-Status: No, score=0.00 required=0.00 action=\"no action\"\r\n" {
		t.Errorf("no symbols: %q", got)
	}
}

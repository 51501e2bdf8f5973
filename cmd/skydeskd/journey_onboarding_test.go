package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// checkOnboarding: both addresses asked Thunderbird, Autodiscover POX, the
// Apple profile and the setup page for their settings, then logged in
// (SMTP, then POP) well within the hour. Discoveries and first logins are
// recorded before the client gets its answer, so the figures are exact
// now: each format has two first logins and no "no login".
func checkOnboarding(t *testing.T, hc *http.Client, dir string) {
	t.Helper()
	metrics := string(httpGet(t, hc, "https://"+devHTTPS+"/metrics"))
	for _, f := range []string{"thunderbird", "autodiscover_xml", "mobileconfig", "setup_page", "autodiscover_json"} {
		want := 2
		if f == "autodiscover_json" {
			want = 0
		}
		for outcome, n := range map[string]int{"first_login": want, "no_login": 0} {
			line := fmt.Sprintf("skydeskd_onboarding_total{format=%q,outcome=%q} %d\n", f, outcome, n)
			if !strings.Contains(metrics, line) {
				t.Errorf("/metrics lacks %q", line)
			}
		}
	}
	if strings.Contains(metrics, "@skydesk.jp") || strings.Contains(metrics, "@example.co.jp") {
		t.Error("an address appears in /metrics")
	}
	out := mustCLI(t, dir, "", "stats", "onboarding")
	if !regexp.MustCompile(`(?m)^thunderbird +2 asked, 2 logged in \(100%\) +2 asked, 2 logged in \(100%\)$`).MatchString(out) {
		t.Errorf("stats onboarding:\n%s", out)
	}
}

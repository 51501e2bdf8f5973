package autoconfig

import (
	"testing"
)

func TestMetrics_byFormatOutcomeClient(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	tbUA := "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
	outlookUA := "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)"
	iosUA := "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	serveReq(ts.secure, "GET", "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", "", "User-Agent", tbUA)
	serveReq(ts.secure, "GET", "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", "", "User-Agent", tbUA)
	serveReq(ts.secure, "GET", "/mail/config-v1.1.xml?emailaddress=taro%40gmail.com", "", "User-Agent", tbUA)
	serveReq(ts.secure, "POST", "/Autodiscover/Autodiscover.xml", pox("taro@gmail.com"), "User-Agent", outlookUA)
	serveReq(ts.secure, "POST", "/autodiscover/autodiscover.xml", laughsBody, "User-Agent", outlookUA)
	serveReq(ts.secure, "GET", "/apple/mobileconfig?email=taro%40skydesk.jp", "", "User-Agent", iosUA)
	serveReq(ts.secure, "DELETE", "/apple/mobileconfig?email=taro%40skydesk.jp", "")
	serveReq(ts.plain, "GET", "/autodiscover/autodiscover.json?Protocol=AutodiscoverV1&Email=a%40skydesk.jp", "", "User-Agent", "curl/8.5.0")
	for _, c := range []struct {
		format, outcome, client string
		want                    float64
	}{
		{"thunderbird", "ok", "thunderbird", 2},
		{"thunderbird", "not_found", "thunderbird", 1},
		{"autodiscover_xml", "not_found", "outlook", 1},
		{"autodiscover_xml", "bad_request", "outlook", 1},
		{"mobileconfig", "ok", "apple", 1},
		{"mobileconfig", "method_not_allowed", "none", 1},
		{"autodiscover_json", "redirect", "tool", 1},
	} {
		got := counter(t, ts.reg, "skydeskd_autoconfig_requests_total", map[string]string{"format": c.format, "outcome": c.outcome, "client": c.client})
		if got != c.want {
			t.Errorf("requests{%s,%s,%s} = %v, want %v", c.format, c.outcome, c.client, got, c.want)
		}
	}
	if hits := counter(t, ts.reg, "skydeskd_autoconfig_cache_total", map[string]string{"format": "thunderbird", "result": "hit"}); hits != 1 {
		t.Errorf("thunderbird cache hits = %v, want 1", hits)
	}
}

func TestClientFamily(t *testing.T) {
	for ua, want := range map[string]string{
		"": "none",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0":                                         "thunderbird",
		"Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)":                                                     "outlook",
		"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1": "apple",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15":             "apple",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36":                 "browser",
		"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36":                       "android",
		"Evolution/3.50.2": "evolution",
		"curl/8.5.0":       "tool",
		"SomethingElse/1":  "other",
	} {
		if got := clientNames[clientFamily(ua)]; got != want {
			t.Errorf("clientFamily(%q) = %q, want %q", ua, got, want)
		}
	}
}

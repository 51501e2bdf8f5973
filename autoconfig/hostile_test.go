package autoconfig

import (
	"encoding/xml"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// hostileAddresses must never reach a header unescaped, and must never
// change a document's structure.
var hostileAddresses = []string{
	`"taro"@example.co.jp`,
	"taro\r\nSet-Cookie: x=1@example.co.jp",
	"taro\r\n@example.co.jp",
	"taro\n\r\nLocation: https://evil.example@example.co.jp",
	"<script>@example.co.jp",
	"taro@example.co.jp<",
	"taro@example.co.jp\r\nX: y",
	`taro"; filename="evil.sh@example.co.jp`,
	strings.Repeat("a", 5000) + "@example.co.jp",
	"taro@" + strings.Repeat("b", 300) + ".co.jp",
	"taro@exa\x00mple.co.jp",
	"taro@example.co.jp\x00",
	"\xff\xfe@example.co.jp",
	"o'brien&co@example.co.jp", // legal: must come back escaped
}

// legalAddresses look odd but are valid atext (RFC 5322 §3.2.3): they are
// answered, and come back escaped.
var legalAddresses = map[string]bool{"o'brien&co@example.co.jp": true, "taro%0d%0a@example.co.jp": true}

func TestHostileAddresses(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	for _, addr := range append(hostileAddresses, "taro%0d%0a@example.co.jp") {
		q := url.QueryEscape(addr)
		reqs := []struct{ method, target, body string }{
			{"GET", "/mail/config-v1.1.xml?emailaddress=" + q, ""},
			{"GET", "/apple/mobileconfig?email=" + q, ""},
			{"GET", "/autodiscover/autodiscover.json?Protocol=AutodiscoverV1&Email=" + q, ""},
			{"GET", "/autodiscover/autodiscover.json/v1.0/" + url.PathEscape(addr) + "?Protocol=AutodiscoverV1", ""},
			{"POST", "/autodiscover/autodiscover.xml", pox(xmlEscape(addr))},
		}
		for _, r := range reqs {
			for _, h := range []struct {
				name  string
				plain bool
			}{{"https", false}, {"http", true}} {
				handler := ts.secure
				if h.plain {
					handler = ts.plain
				}
				rec := serveReq(handler, r.method, r.target, r.body)
				for name, vals := range rec.Header() {
					for _, v := range vals {
						if strings.ContainsAny(v, "\r\n<>\x00") || (name != "Location" && strings.Contains(v, "evil")) ||
							(name == "Content-Disposition" && !safeDisposition.MatchString(v)) {
							t.Errorf("%s %s: header %s: %q", h.name, shorten(r.target), name, v)
						}
					}
				}
				if strings.Contains(rec.Body.String(), "<script>") || strings.Contains(rec.Body.String(), "Set-Cookie") {
					t.Errorf("%s %s: hostile text echoed in body", h.name, shorten(r.target))
				}
				if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "text/xml") || strings.Contains(ct, "aspen") {
					if err := xml.Unmarshal(rec.Body.Bytes(), new(struct{})); err != nil {
						t.Errorf("%s %s: body is not well-formed XML: %v", h.name, shorten(r.target), err)
					}
				}
				if rec.Code == 200 && !h.plain && !legalAddresses[addr] {
					t.Errorf("%s %s %q: accepted a hostile address (%d)", h.name, shorten(r.target), addr, rec.Code)
				}
			}
		}
	}
}

// xmlEscape escapes markup but leaves invalid UTF-8 as it is, so the
// decoder sees the raw bytes a hostile client would send.
func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;").Replace(s)
}

var safeDisposition = regexp.MustCompile(`^attachment; filename="[A-Za-z0-9._-]+\.mobileconfig"$`)

func shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

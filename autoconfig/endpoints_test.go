package autoconfig

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/internal/golden"
)

const (
	poxBody = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>%s</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
	mobilesyncBody = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006">
  <Request>
    <EMailAddress>taro@example.co.jp</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
	// A billion-laughs request: must be refused, never expanded.
	laughsBody = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Autodiscover><Request><EMailAddress>&lol2;@example.co.jp</EMailAddress></Request></Autodiscover>`
	xxeBody = `<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Autodiscover><Request><EMailAddress>&xxe;</EMailAddress></Request></Autodiscover>`
	// An entity used without a DOCTYPE: encoding/xml must not resolve it.
	undeclaredEntityBody = `<Autodiscover><Request><EMailAddress>&xxe;taro@example.co.jp</EMailAddress></Request></Autodiscover>`
	prefixedBody         = `<a:Autodiscover xmlns:a="urn:whatever"><a:Request><a:EMailAddress>hanako@example.co.jp</a:EMailAddress></a:Request></a:Autodiscover>`
	twoRequestsBody      = `<Autodiscover><Request><EMailAddress>a@example.co.jp</EMailAddress></Request><Request><EMailAddress>b@example.co.jp</EMailAddress></Request></Autodiscover>`
)

func pox(addr string) string { return strings.Replace(poxBody, "%s", addr, 1) }

type endpointCase struct {
	name           string
	plain          bool // the plain-HTTP listener
	method, target string
	body           string
	header         []string
	status         int
	ctype          string
}

var endpointCases = []endpointCase{
	// Thunderbird
	{name: "tb-personal", method: "GET", target: "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", status: 200, ctype: contentTypeXML},
	{name: "tb-wellknown-organization", method: "GET", target: "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=hanako%40example.co.jp", status: 200, ctype: contentTypeXML},
	{name: "tb-idn", method: "GET", target: "/mail/config-v1.1.xml?emailaddress=jiro%40%E4%BE%8B%E3%81%88.jp", status: 200, ctype: contentTypeXML},
	{name: "tb-plus-raw", method: "GET", target: "/mail/config-v1.1.xml?emailaddress=hanako+news@example.co.jp", status: 200, ctype: contentTypeXML},
	{name: "tb-plus-encoded", method: "GET", target: "/mail/config-v1.1.xml?emailaddress=hanako%2Bnews%40example.co.jp", status: 200, ctype: contentTypeXML},
	{name: "tb-uppercase", method: "GET", target: "/mail/config-v1.1.xml?EmailAddress=HANAKO%2BNEWS%40EXAMPLE.CO.JP", status: 200, ctype: contentTypeXML},
	{name: "tb-path-casing", method: "GET", target: "/MAIL/Config-V1.1.XML?emailaddress=taro%40skydesk.jp", status: 200, ctype: contentTypeXML},
	{name: "tb-head", method: "HEAD", target: "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", status: 200, ctype: contentTypeXML},
	{name: "tb-no-address-host", method: "GET", target: "/mail/config-v1.1.xml", header: []string{"Host", "autoconfig.Example.co.jp:8080"}, status: 200, ctype: contentTypeXML},
	{name: "tb-empty-address-wellknown-host", method: "GET", target: "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=", header: []string{"Host", "example.co.jp"}, status: 200, ctype: contentTypeXML},
	{name: "tb-no-address-ip-host", method: "GET", target: "/mail/config-v1.1.xml", header: []string{"Host", "127.0.0.1:8080"}, status: 404},
	{name: "tb-unknown-domain", method: "GET", target: "/mail/config-v1.1.xml?emailaddress=taro%40gmail.com", status: 404},
	{name: "tb-malformed", method: "GET", target: "/mail/config-v1.1.xml?emailaddress=taro", status: 400},
	{name: "tb-bad-escape", method: "GET", target: "/mail/config-v1.1.xml?emailaddress=taro%zz%40skydesk.jp", status: 400},
	{name: "tb-post", method: "POST", target: "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", status: 405},
	{name: "tb-plain-http", plain: true, method: "GET", target: "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", status: 200, ctype: contentTypeXML},
	// Autodiscover POX
	{name: "ad-post", method: "POST", target: "/autodiscover/autodiscover.xml", body: pox("hanako@example.co.jp"), status: 200, ctype: contentTypeXML},
	{name: "ad-post-casing", method: "POST", target: "/Autodiscover/Autodiscover.xml", body: pox("Taro@SkyDesk.jp"), status: 200, ctype: contentTypeXML},
	{name: "ad-post-upper", method: "POST", target: "/AUTODISCOVER/AUTODISCOVER.XML", body: pox("jiro@例え.jp"), status: 200, ctype: contentTypeXML},
	{name: "ad-post-with-basic-auth", method: "POST", target: "/autodiscover/autodiscover.xml", body: pox("hanako@example.co.jp"),
		header: []string{"Authorization", "Basic aGFuYWtvQGV4YW1wbGUuY28uanA6c2VjcmV0"}, status: 200, ctype: contentTypeXML},
	{name: "ad-prefixed-request", method: "POST", target: "/autodiscover/autodiscover.xml", body: prefixedBody, status: 200, ctype: contentTypeXML},
	{name: "ad-get-email", method: "GET", target: "/autodiscover/autodiscover.xml?Email=hanako%40example.co.jp", status: 200, ctype: contentTypeXML},
	{name: "ad-get-no-email", method: "GET", target: "/autodiscover/autodiscover.xml", status: 400, ctype: contentTypeXML},
	{name: "ad-unknown-domain", method: "POST", target: "/autodiscover/autodiscover.xml", body: pox("taro@gmail.com"), status: 200, ctype: contentTypeXML},
	{name: "ad-mobilesync", method: "POST", target: "/autodiscover/autodiscover.xml", body: mobilesyncBody, status: 200, ctype: contentTypeXML},
	{name: "ad-billion-laughs", method: "POST", target: "/autodiscover/autodiscover.xml", body: laughsBody, status: 400, ctype: contentTypeXML},
	{name: "ad-xxe", method: "POST", target: "/autodiscover/autodiscover.xml", body: xxeBody, status: 400, ctype: contentTypeXML},
	{name: "ad-undeclared-entity", method: "POST", target: "/autodiscover/autodiscover.xml", body: undeclaredEntityBody, status: 400, ctype: contentTypeXML},
	{name: "ad-two-requests", method: "POST", target: "/autodiscover/autodiscover.xml", body: twoRequestsBody, status: 400, ctype: contentTypeXML},
	{name: "ad-truncated", method: "POST", target: "/autodiscover/autodiscover.xml", body: "<Autodiscover><Request>", status: 400, ctype: contentTypeXML},
	{name: "ad-empty", method: "POST", target: "/autodiscover/autodiscover.xml", status: 400, ctype: contentTypeXML},
	{name: "ad-bad-address", method: "POST", target: "/autodiscover/autodiscover.xml", body: pox("&quot;a b&quot;&lt;x&gt;@example.co.jp"), status: 400, ctype: contentTypeXML},
	{name: "ad-oversized", method: "POST", target: "/autodiscover/autodiscover.xml", body: pox("hanako@example.co.jp") + strings.Repeat(" ", MaxBodyBytes), status: 413},
	{name: "ad-put", method: "PUT", target: "/autodiscover/autodiscover.xml", body: pox("hanako@example.co.jp"), status: 405},
	{name: "ad-plain-redirect", plain: true, method: "POST", target: "/Autodiscover/Autodiscover.xml", body: pox("hanako@example.co.jp"), status: 302},
	{name: "ad-plain-get-redirect", plain: true, method: "GET", target: "/autodiscover/autodiscover.xml", status: 302},
	// Autodiscover v2 JSON
	{name: "json-query", method: "GET", target: "/autodiscover/autodiscover.json?Email=hanako%40example.co.jp&Protocol=AutodiscoverV1&RedirectCount=1", status: 200, ctype: "application/json"},
	{name: "json-path", method: "GET", target: "/autodiscover/autodiscover.json/v1.0/hanako%40example.co.jp?Protocol=autodiscoverv1", status: 200, ctype: "application/json"},
	{name: "json-path-raw-at", method: "GET", target: "/AutoDiscover/AutoDiscover.json/v1.0/Taro@SkyDesk.jp?Protocol=AUTODISCOVERV1", status: 200, ctype: "application/json"},
	{name: "json-invalid-protocol", method: "GET", target: "/autodiscover/autodiscover.json?Email=hanako%40example.co.jp&Protocol=Ews%22%3Cscript%3E", status: 400, ctype: "application/json"},
	{name: "json-missing-protocol", method: "GET", target: "/autodiscover/autodiscover.json?Email=hanako%40example.co.jp", status: 400, ctype: "application/json"},
	{name: "json-missing-email", method: "GET", target: "/autodiscover/autodiscover.json?Protocol=AutodiscoverV1", status: 400, ctype: "application/json"},
	{name: "json-unknown-domain", method: "GET", target: "/autodiscover/autodiscover.json/v1.0/taro%40gmail.com?Protocol=AutodiscoverV1", status: 404, ctype: "application/json"},
	{name: "json-post", method: "POST", target: "/autodiscover/autodiscover.json?Protocol=AutodiscoverV1", status: 405},
	{name: "json-plain-redirect", plain: true, method: "GET", target: "/autodiscover/autodiscover.json?Email=hanako%40example.co.jp&Protocol=AutodiscoverV1", status: 302},
	// Apple (unsigned here: signed bytes differ per signature, see apple_test.go)
	{name: "apple-organization", method: "GET", target: "/apple/mobileconfig?email=hanako%2Bnews%40example.co.jp", status: 200, ctype: "application/x-apple-aspen-config"},
	{name: "apple-idn", method: "GET", target: "/apple/mobileconfig?email=jiro%40%E4%BE%8B%E3%81%88.jp", status: 200, ctype: "application/x-apple-aspen-config"},
	{name: "apple-escaping", method: "GET", target: "/apple/mobileconfig?email=o%27brien%26co%40example.co.jp", status: 200, ctype: "application/x-apple-aspen-config"},
	{name: "apple-missing-email", method: "GET", target: "/apple/mobileconfig", status: 400},
	{name: "apple-unknown-domain", method: "GET", target: "/apple/mobileconfig?email=taro%40gmail.com", status: 404},
	{name: "apple-post", method: "POST", target: "/apple/mobileconfig?email=taro%40skydesk.jp", status: 405},
	{name: "apple-plain-redirect", plain: true, method: "GET", target: "/apple/mobileconfig?email=taro%40skydesk.jp", status: 302},
}

// TestEndpoints covers routing, status, headers and bodies of every
// route, with goldens in testdata/golden (-update rewrites them).
func TestEndpoints(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	for _, tc := range endpointCases {
		t.Run(tc.name, func(t *testing.T) {
			h := ts.secure
			if tc.plain {
				h = ts.plain
			}
			rec := serveReq(h, tc.method, tc.target, tc.body, tc.header...)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d\n%s", rec.Code, tc.status, rec.Body)
			}
			if tc.ctype != "" && rec.Header().Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", rec.Header().Get("Content-Type"), tc.ctype)
			}
			if tc.method == "HEAD" && rec.Body.Len() != 0 {
				// httptest's recorder keeps HEAD bodies; net/http drops them.
				rec.Body.Reset()
			}
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/xml") && rec.Body.Len() > 0 {
				if err := xml.Unmarshal(rec.Body.Bytes(), new(struct{})); err != nil {
					t.Errorf("XML body does not parse: %v", err)
				}
			}
			golden.Check(t, tc.name+".txt", dump(rec))
		})
	}
}

// TestEndpoints_sameAnswers checks the equivalences the goldens imply:
// casing, '+' raw or encoded, upper-case addresses, HEAD vs GET.
func TestEndpoints_sameAnswers(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	same := [][2]string{
		{"/mail/config-v1.1.xml?emailaddress=hanako+news@example.co.jp", "/mail/config-v1.1.xml?emailaddress=hanako%2Bnews%40example.co.jp"},
		{"/mail/config-v1.1.xml?emailaddress=HANAKO%2BNEWS%40EXAMPLE.CO.JP", "/mail/config-v1.1.xml?emailaddress=hanako%2Bnews%40example.co.jp"},
		{"/MAIL/CONFIG-V1.1.XML?emailaddress=taro%40skydesk.jp", "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp"},
		{"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp"},
		{"/autodiscover/autodiscover.json/v1.0/hanako%40example.co.jp?Protocol=AutodiscoverV1", "/autodiscover/autodiscover.json?Email=hanako@example.co.jp&Protocol=autodiscoverV1"},
	}
	for _, p := range same {
		a, b := serveReq(ts.secure, "GET", p[0], ""), serveReq(ts.secure, "GET", p[1], "")
		if a.Code != 200 || a.Body.String() != b.Body.String() {
			t.Errorf("%s (%d) and %s (%d) differ", p[0], a.Code, p[1], b.Code)
		}
	}
	get := serveReq(ts.secure, "GET", "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", "")
	head := serveReq(ts.secure, "HEAD", "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", "")
	if head.Code != get.Code || head.Header().Get("Content-Type") != get.Header().Get("Content-Type") {
		t.Errorf("HEAD %d %q vs GET %d %q", head.Code, head.Header().Get("Content-Type"), get.Code, get.Header().Get("Content-Type"))
	}
}

// TestEndpoints_internalErrorHidden: a store failure is a 500 whose body
// says nothing about the cause.
func TestEndpoints_internalErrorHidden(t *testing.T) {
	ts := newTestServer(t, fakeSource{testResolver(t)}, nil)
	for _, target := range []string{"/mail/config-v1.1.xml?emailaddress=a%40broken.example", "/apple/mobileconfig?email=a%40broken.example",
		"/mail/config-v1.1.xml?emailaddress=a%40panic.example"} {
		rec := serveReq(ts.secure, "GET", target, "")
		if rec.Code != 500 || strings.Contains(rec.Body.String(), "database") || strings.Contains(rec.Body.String(), "/var/") ||
			strings.Contains(rec.Body.String(), "secret") {
			t.Errorf("%s: %d %q", target, rec.Code, rec.Body)
		}
	}
}

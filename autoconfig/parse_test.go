package autoconfig

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParsePOX(t *testing.T) {
	for _, tc := range []struct {
		name, body, email, schema string
		err                       error
	}{
		{"outlook", pox("taro@example.co.jp"), "taro@example.co.jp", outlookResponseSchema, nil},
		{"prefixed", prefixedBody, "hanako@example.co.jp", "", nil},
		{"doctype", laughsBody, "", "", errDoctype},
		{"xxe", xxeBody, "", "", errDoctype},
		{"undeclared entity", undeclaredEntityBody, "", "", errBadRequest},
		{"two requests", twoRequestsBody, "", "", errManyReqs},
		{"wrong root", "<Foo><Request><EMailAddress>a@b.c</EMailAddress></Request></Foo>", "", "", errNotPOX},
		{"no address", "<Autodiscover><Request></Request></Autodiscover>", "", "", errNoAddress},
		{"deep", "<Autodiscover>" + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + "</Autodiscover>", "", "", errTooDeep},
		{"empty", "  ", "", "", errEmptyBody},
		{"not xml", "Email=taro@example.co.jp", "", "", errNotPOX},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePOX([]byte(tc.body))
			if !errors.Is(err, tc.err) || got.Email != tc.email || (tc.err == nil && got.Schema != tc.schema) {
				t.Errorf("parsePOX = %+v, %v; want %q %q %v", got, err, tc.email, tc.schema, tc.err)
			}
		})
	}
}

// FuzzParsePOX: no input panics, an accepted request never came with a
// directive, and the address never contains an unexpanded entity.
func FuzzParsePOX(f *testing.F) {
	for _, s := range []string{pox("taro@example.co.jp"), laughsBody, xxeBody, prefixedBody, twoRequestsBody, mobilesyncBody, ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parsePOX(body)
		if err != nil {
			return
		}
		if strings.Contains(string(body), "<!") && !strings.Contains(string(body), "<![CDATA[") && !strings.Contains(string(body), "<!--") {
			t.Fatalf("accepted a body with a directive: %q", body)
		}
		if req.Email == "" {
			t.Fatal("accepted without an address")
		}
	})
}

func TestQueryParam(t *testing.T) {
	for _, tc := range []struct {
		query, want string
		ok          bool
	}{
		{"emailaddress=a%40b.jp", "a@b.jp", true},
		{"EmailAddress=a+b%40c.jp", "a+b@c.jp", true},
		{"x=1&emailaddress=&y=2", "", true},
		{"x=1", "", false},
		{"emailaddress=a%zz", "a%zz", true},
		{"emailaddressx=a", "", false},
	} {
		r := httptest.NewRequest("GET", "/?"+tc.query, nil)
		got, ok := queryParam(r, "emailaddress")
		if got != tc.want || ok != tc.ok {
			t.Errorf("queryParam(%q) = %q %v, want %q %v", tc.query, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/AutoDiscover/AutoDiscover.xml":                   "/autodiscover/autodiscover.xml",
		"/autodiscover/autodiscover.XML":                   "/autodiscover/autodiscover.xml",
		"/AUTODISCOVER/AUTODISCOVER.JSON/V1.0/Taro@Sky.jp": "/autodiscover/autodiscover.json/v1.0/Taro@Sky.jp",
		"/Mail/Config-v1.1.xml":                            "/mail/config-v1.1.xml",
		"/autodiscover/autodiscover.xmlx":                  "/autodiscover/autodiscover.xmlx",
		"/Setup":                                           "/Setup",
		"/.Well-Known/Autoconfig/Mail/Config-V1.1.xml":     "/.well-known/autoconfig/mail/config-v1.1.xml",
		"/Apple/MobileConfig":                              "/apple/mobileconfig",
	} {
		r := httptest.NewRequest("GET", in, nil)
		canonicalize(r.URL)
		if got := r.URL.Path; got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}

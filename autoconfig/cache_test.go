package autoconfig

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/skydesk/skydeskd/profiles"
)

// TestCache_followsDomainChanges: cached answers (and cached "not found")
// follow the domain list: removing a hosted domain turns its cached
// documents into 404s, adding one turns a cached 404 into a document.
func TestCache_followsDomainChanges(t *testing.T) {
	domains := profiles.DomainSet{"example.co.jp": true}
	ts := newTestServer(t, profiles.NewResolver(testSettings, domains), nil)
	targets := []string{
		"/mail/config-v1.1.xml?emailaddress=hanako%40example.co.jp",
		"/apple/mobileconfig?email=hanako%40example.co.jp",
		"/mail/config-v1.1.xml?emailaddress=jiro%40newly.example",
		"/apple/mobileconfig?email=jiro%40newly.example",
	}
	want := func(step string, codes ...int) {
		t.Helper()
		for i, target := range targets {
			for range 2 { // the second request is served from the cache
				if got := serveReq(ts.secure, "GET", target, "").Code; got != codes[i] {
					t.Errorf("%s: %s = %d, want %d", step, target, got, codes[i])
				}
			}
		}
	}
	want("initial", 200, 200, 404, 404)
	delete(domains, "example.co.jp")
	domains["newly.example"] = true
	want("after change", 404, 404, 200, 200)
}

// TestCache_bounded: made-up addresses cannot grow the caches past their
// bound.
func TestCache_bounded(t *testing.T) {
	s, err := New(Options{Source: testResolver(t), CacheEntries: 50})
	if err != nil {
		t.Fatal(err)
	}
	h := overTLS(s.Handler())
	for i := range 200 {
		if c := serveReq(h, "GET", "/mail/config-v1.1.xml?emailaddress=u"+strconv.Itoa(i)+"%40example.co.jp", "").Code; c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if n := s.cache.len(); n > 50 {
		t.Errorf("document cache has %d entries, bound 50", n)
	}
	if n := s.fast.len(); n > 50 {
		t.Errorf("fast cache has %d entries, bound 50", n)
	}
}

// TestCache_unknownDomainSamePath: after the first request, a domain that
// is not hosted is answered from the same cache path as a hosted one (one
// map lookup and one Kind check), so the two cost the same; and the
// answer for an unknown domain does not depend on the local part.
func TestCache_unknownDomainSamePath(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	hits := func() float64 {
		return counter(t, ts.reg, "skydeskd_autoconfig_cache_total", map[string]string{"format": "thunderbird", "result": "hit"})
	}
	for _, target := range []string{
		"/mail/config-v1.1.xml?emailaddress=hanako%40example.co.jp",
		"/mail/config-v1.1.xml?emailaddress=hanako%40gmail.com",
	} {
		first := serveReq(ts.secure, "GET", target, "")
		before := hits()
		second := serveReq(ts.secure, "GET", target, "")
		if hits() != before+1 {
			t.Errorf("%s: repeat not served from the cache", target)
		}
		if first.Code != second.Code || first.Body.String() != second.Body.String() {
			t.Errorf("%s: cached answer differs", target)
		}
	}
}

// TestCache_repeatSameAsFirst: a repeat answered from the cache sends the
// same status, headers and bytes as the first request that filled it,
// for documents and for "not found", on both listeners.
func TestCache_repeatSameAsFirst(t *testing.T) {
	signer, _ := signerOf(t)
	ts := newTestServer(t, nil, signer)
	for _, tc := range []struct {
		plain  bool
		target string
		host   string
	}{
		{false, "/mail/config-v1.1.xml?emailaddress=hanako%40example.co.jp", ""},
		{true, "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp", ""},
		{false, "/mail/config-v1.1.xml", "autoconfig.example.co.jp"},
		{false, "/mail/config-v1.1.xml?emailaddress=taro%40gmail.com", ""},
		{false, "/apple/mobileconfig?email=hanako%2Bnews%40example.co.jp", ""},
		{false, "/apple/mobileconfig?email=taro%40gmail.com", ""},
	} {
		h := ts.secure
		if tc.plain {
			h = ts.plain
		}
		var hdr []string
		if tc.host != "" {
			hdr = []string{"Host", tc.host}
		}
		first := serveReq(h, "GET", tc.target, "", hdr...)
		before := counter(t, ts.reg, "skydeskd_autoconfig_cache_total", map[string]string{"result": "hit"})
		second := serveReq(h, "GET", tc.target, "", hdr...)
		if counter(t, ts.reg, "skydeskd_autoconfig_cache_total", map[string]string{"result": "hit"}) == before {
			t.Errorf("%s: second request not served from the cache", tc.target)
		}
		if first.Code != second.Code || first.Body.String() != second.Body.String() {
			t.Errorf("%s: %d vs %d, bodies equal %v", tc.target, first.Code, second.Code, first.Body.String() == second.Body.String())
		}
		if a, b := fmt.Sprint(first.Header()), fmt.Sprint(second.Header()); a != b {
			t.Errorf("%s: headers differ:\n first  %s\n cached %s", tc.target, a, b)
		}
	}
}

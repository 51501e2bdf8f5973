package autoconfig

import (
	"slices"
	"sync"
	"testing"

	"github.com/skydesk/skydeskd/internal/httpfront"
)

// discoveries records Options.Discovered calls.
type discoveries struct {
	mu  sync.Mutex
	got []string
}

func (d *discoveries) add(f Format, address string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, f.String()+" "+address)
}

// Every format reports a document served for an address, normalised,
// from the handlers and from the hot path; unknown domains, errors and
// Thunderbird's address-less form report nothing.
func TestDiscovered_everyFormat(t *testing.T) {
	var d discoveries
	s, err := New(Options{Source: testResolver(t), Now: fixedNow, Discovered: d.add})
	if err != nil {
		t.Fatal(err)
	}
	h := overTLS(s.Handler())
	serveReq(h, "GET", "/mail/config-v1.1.xml?emailaddress=Taro%40SkyDesk.jp", "")
	serveReq(h, "GET", "/mail/config-v1.1.xml?emailaddress=Taro%40SkyDesk.jp", "") // the handler's fast path
	serveReq(h, "GET", "/mail/config-v1.1.xml", "", "Host", "autoconfig.example.co.jp")
	serveReq(h, "GET", "/mail/config-v1.1.xml?emailaddress=taro%40gmail.com", "")
	serveReq(h, "GET", "/mail/config-v1.1.xml?emailaddress=not-an-address", "")
	serveReq(h, "POST", "/autodiscover/autodiscover.xml", pox("hanako@example.co.jp"))
	serveReq(h, "POST", "/autodiscover/autodiscover.xml", pox("hanako@gmail.com"))
	serveReq(h, "GET", "/autodiscover/autodiscover.json?Protocol=AutodiscoverV1&Email=jiro%40skydesk.jp", "")
	serveReq(h, "GET", "/autodiscover/autodiscover.json?Protocol=ActiveSync&Email=jiro%40skydesk.jp", "")
	serveReq(h, "GET", "/apple/mobileconfig?email=saburo%40skydesk.jp", "")
	hot := s.Hot()
	for _, q := range []string{"emailaddress=Taro%40SkyDesk.jp", "emailaddress=taro%40gmail.com"} {
		if _, ok := hot.Respond(&httpfront.Request{Method: "GET", Path: "/mail/config-v1.1.xml", RawQuery: q, Host: "autoconfig.skydesk.jp", TLS: true}); !ok {
			t.Fatalf("%s: not answered by the hot path", q)
		}
	}
	if _, ok := hot.Respond(&httpfront.Request{Method: "GET", Path: "/apple/mobileconfig", RawQuery: "email=saburo%40skydesk.jp", Host: "autoconfig.skydesk.jp", TLS: true}); !ok {
		t.Fatal("mobileconfig: not answered by the hot path")
	}
	want := []string{
		"thunderbird taro@skydesk.jp",
		"thunderbird taro@skydesk.jp",
		"autodiscover_xml hanako@example.co.jp",
		"autodiscover_json jiro@skydesk.jp",
		"mobileconfig saburo@skydesk.jp",
		"thunderbird taro@skydesk.jp",
		"mobileconfig saburo@skydesk.jp",
	}
	if !slices.Equal(d.got, want) {
		t.Errorf("discoveries:\n%q\nwant\n%q", d.got, want)
	}
}

package dnssrv_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/autoconfig/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
)

// FuzzAnswer feeds raw packets through the same path the server takes
// (miekg/dns unpacking, then Handler.Answer) and checks that the answer,
// when there is one, is a well-formed response to the same query that
// fits the UDP limit. Run: go test -fuzz FuzzAnswer ./autoconfig/dnssrv
func FuzzAnswer(f *testing.F) {
	dom := &domains{serial: 7, list: []string{"example.co.jp"}}
	h, err := dnssrv.NewHandler(testOptions(profiles.NewResolver(settings, dom)), dom.snapshot)
	if err != nil {
		f.Fatal(err)
	}
	for _, tc := range answerCases {
		b, err := query(tc.qname, tc.qtype, tc.edns).Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, pkt []byte, udp bool) {
		req := new(dns.Msg)
		if req.Unpack(pkt) != nil {
			return // miekg/dns answers FORMERR or drops it before the handler
		}
		out, _, _ := h.Answer(req, udp)
		if out == nil {
			if !req.Response {
				t.Fatalf("no answer to a query: %v", req)
			}
			return
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(out); err != nil {
			t.Fatalf("answer does not unpack: %v\nquery %v", err, req)
		}
		if resp.Id != req.Id || !resp.Response {
			t.Fatalf("answer id %d qr %v to query id %d", resp.Id, resp.Response, req.Id)
		}
		limit := 512
		if opt := req.IsEdns0(); opt != nil {
			limit = int(min(max(opt.UDPSize(), 512), 1232))
		}
		if udp && len(out) > limit {
			t.Fatalf("UDP answer %d bytes > %d", len(out), limit)
		}
	})
}

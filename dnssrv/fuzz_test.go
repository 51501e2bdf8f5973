package dnssrv_test

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
)

// FuzzAnswer feeds raw packets through the same path the server takes
// (miekg/dns unpacking, then Handler.Answer) and checks that the answer,
// when there is one, is a well-formed response to the same query that
// fits the UDP limit. Run: go test -fuzz FuzzAnswer ./dnssrv
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

// FuzzAnswerWire checks the wire fast path against the slow path: for any
// packet, the cached answer (second call) says the same as the first and
// as miekg/dns unpacking plus Handler.Answer, with the question exactly
// as asked (0x20). Run: go test -fuzz FuzzAnswerWire ./dnssrv
func FuzzAnswerWire(f *testing.F) {
	dom := &domains{serial: 7, list: []string{"example.co.jp"}}
	h, err := dnssrv.NewHandler(testOptions(profiles.NewResolver(settings, dom)), dom.snapshot)
	if err != nil {
		f.Fatal(err)
	}
	for _, tc := range answerCases {
		q := query(tc.qname, tc.qtype, tc.edns)
		q.RecursionDesired = true
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, tc.only != "tcp")
		// The same with every header flag a query may carry (AA TC RD, Z AD CD).
		flagged := append([]byte(nil), b...)
		flagged[2] |= 0x07
		flagged[3] |= 0x70
		f.Add(flagged, tc.only != "tcp")
	}
	f.Fuzz(func(t *testing.T, pkt []byte, udp bool) {
		first := h.AnswerWire(pkt, udp, nil)
		second := h.AnswerWire(pkt, udp, nil)
		req := new(dns.Msg)
		if req.Unpack(pkt) != nil {
			return // FORMERR, or an answer learned from a well-formed twin
		}
		slow, _, _ := h.Answer(req, udp)
		if (first == nil) != (slow == nil) || (second == nil) != (slow == nil) {
			t.Fatalf("answered: first %v second %v slow %v", first != nil, second != nil, slow != nil)
		}
		if slow == nil {
			return
		}
		want := unpackString(t, slow)
		for _, got := range [][]byte{first, second} {
			if s := unpackString(t, got); !strings.EqualFold(s, want) {
				t.Fatalf("fast path:\n%s\nslow path:\n%s", s, want)
			}
			m := new(dns.Msg)
			_ = m.Unpack(got)
			if len(req.Question) == 1 && (len(m.Question) != 1 || m.Question[0] != req.Question[0]) {
				t.Fatalf("question %v, asked %v", m.Question, req.Question)
			}
		}
	})
}

func unpackString(t *testing.T, b []byte) string {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("answer does not unpack: %v", err)
	}
	return m.String()
}

package dnssrv_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
)

// BenchmarkAnswer measures the per-query work of the handler alone:
// lookup in the in-memory zones and packing, for a hit, a mixed-case hit
// (owner names copied), a NODATA and a refused query.
func BenchmarkAnswer(b *testing.B) {
	dom := &domains{serial: 1, list: []string{"example.co.jp"}}
	h, err := newTestHandler(profiles.NewResolver(settings, dom), dom)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"srv", "_pop3s._tcp.example.co.jp.", dns.TypeSRV},
		{"srv-mixed-case", "_POP3S._tcp.Example.co.jp.", dns.TypeSRV},
		{"nodata", "_pop3s._tcp.example.co.jp.", dns.TypeA},
		{"refused", "_pop3s._tcp.example.com.", dns.TypeSRV},
	} {
		q := query(bc.qname, bc.qtype, 1232)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if out, _, _ := h.Answer(q, true); out == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// wireCases are the queries of the wire-path benchmarks.
var wireCases = []struct {
	name  string
	qname string
	qtype uint16
	edns  uint16
}{
	{"srv", "_pop3s._tcp.example.co.jp.", dns.TypeSRV, 0},
	{"srv-edns", "_submissions._tcp.example.co.jp.", dns.TypeSRV, 1232},
	{"srv-mixed-case", "_POP3S._tcp.Example.co.jp.", dns.TypeSRV, 0},
	{"nxdomain", "nothing.example.co.jp.", dns.TypeSRV, 0},
}

// benchWire runs answer over wireCases; i counts the calls.
func benchWire(b *testing.B, answer func(pkt, out []byte, i int) []byte) {
	for _, bc := range wireCases {
		pkt, err := query(bc.qname, bc.qtype, bc.edns).Pack()
		if err != nil {
			b.Fatal(err)
		}
		out := make([]byte, 0, 4096)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if r := answer(pkt, out[:0], i); r == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// BenchmarkAnswerWire measures the wire fast path: a cached template
// patched with the query's ID, flags and question.
func BenchmarkAnswerWire(b *testing.B) {
	dom := &domains{serial: 1, list: []string{"example.co.jp"}}
	h, err := newTestHandler(profiles.NewResolver(settings, dom), dom)
	if err != nil {
		b.Fatal(err)
	}
	benchWire(b, func(pkt, out []byte, _ int) []byte { return h.AnswerWire(pkt, true, out) })
}

// BenchmarkAnswerUDP is BenchmarkAnswerWire through AnswerUDP, the path
// UDP queries take: the wire fast path plus the response rate limiting
// check. The clients cycle over 4096 networks and the rate is raised so
// that none is limited: this is the cost every legitimate answer pays.
func BenchmarkAnswerUDP(b *testing.B) {
	dom := &domains{serial: 1, list: []string{"example.co.jp"}}
	o := testOptions(profiles.NewResolver(settings, dom))
	o.RRL.ResponsesPerSecond = 1_000_000
	h, err := dnssrv.NewHandler(o, dom.snapshot)
	if err != nil {
		b.Fatal(err)
	}
	var clients [4096]netip.Addr
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
	}
	benchWire(b, func(pkt, out []byte, i int) []byte { return h.AnswerUDP(pkt, clients[i%len(clients)], out) })
}

// BenchmarkServerUDP measures a whole round trip over loopback UDP:
// the handler, response rate limiting, and the socket calls. The rate
// limit is raised out of the way (one client asks one name as fast as
// it can), but every answer still goes through the check.
func BenchmarkServerUDP(b *testing.B) {
	f := start(b, func(o *dnssrv.Options) { o.RRL.ResponsesPerSecond = 1_000_000 })
	c, err := net.Dial("udp", f.udp)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pkt, err := query("_pop3s._tcp.example.co.jp.", dns.TypeSRV, 0).Pack()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(pkt); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

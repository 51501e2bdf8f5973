package dnssrv_test

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
)

const (
	soaHosted   = "example.co.jp. 300 IN SOA ns1.skydesk.jp. hostmaster.skydesk.jp. 42 3600 900 1209600 300"
	soaPersonal = "skydesk.jp. 300 IN SOA ns1.skydesk.jp. hostmaster.skydesk.jp. 42 3600 900 1209600 300"
)

// answerCase is one query and its expected answer, written in the
// protocol's own text form (CoreDNS test.Case style).
type answerCase struct {
	name  string
	qname string
	qtype uint16
	edns  uint16 // requester's UDP payload size; 0 = no EDNS
	// only restricts the case to "udp" or "tcp"; "" runs both.
	only   string
	rcode  int
	aa     bool
	tc     bool
	answer []string
	ns     []string
	extra  []string // checked only when non-nil
}

var answerCases = []answerCase{
	// RFC 6186 / RFC 8314 SRV set, personal and hosted kinds.
	{name: "personal pop3s", qname: "_pop3s._tcp.skydesk.jp.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_pop3s._tcp.skydesk.jp. 3600 IN SRV 0 1 995 pop.skydesk.jp."},
		extra:  []string{"pop.skydesk.jp. 3600 IN A 127.0.0.1", "pop.skydesk.jp. 3600 IN AAAA ::1"}},
	{name: "hosted pop3s", qname: "_pop3s._tcp.example.co.jp.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_pop3s._tcp.example.co.jp. 3600 IN SRV 0 1 995 poppro.skydesk.jp."}},
	{name: "hosted submissions", qname: "_submissions._tcp.example.co.jp.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_submissions._tcp.example.co.jp. 3600 IN SRV 0 1 465 smtp.skydesk.jp."}},
	{name: "personal submission", qname: "_submission._tcp.skydesk.jp.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_submission._tcp.skydesk.jp. 3600 IN SRV 0 1 587 smtp.skydesk.jp."}},
	{name: "pop3 not offered", qname: "_pop3._tcp.example.co.jp.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_pop3._tcp.example.co.jp. 3600 IN SRV 0 0 0 ."}, extra: []string{}},
	{name: "imap not offered", qname: "_imap._tcp.skydesk.jp.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_imap._tcp.skydesk.jp. 3600 IN SRV 0 0 0 ."}},
	{name: "imaps not offered", qname: "_imaps._tcp.example.co.jp.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_imaps._tcp.example.co.jp. 3600 IN SRV 0 0 0 ."}},
	{name: "autodiscover", qname: "_autodiscover._tcp.example.co.jp.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_autodiscover._tcp.example.co.jp. 3600 IN SRV 0 1 443 autodiscover.skydesk.jp."}},
	// Service host addresses, apex SOA/NS/MX.
	{name: "A of a service host", qname: "poppro.skydesk.jp.", qtype: dns.TypeA, aa: true,
		answer: []string{"poppro.skydesk.jp. 3600 IN A 127.0.0.1"}},
	{name: "AAAA of a service host", qname: "smtp.skydesk.jp.", qtype: dns.TypeAAAA, aa: true,
		answer: []string{"smtp.skydesk.jp. 3600 IN AAAA ::1"}},
	{name: "SOA hosted apex", qname: "example.co.jp.", qtype: dns.TypeSOA, aa: true,
		answer: []string{"example.co.jp. 3600 IN SOA ns1.skydesk.jp. hostmaster.skydesk.jp. 42 3600 900 1209600 300"}},
	{name: "NS personal apex", qname: "skydesk.jp.", qtype: dns.TypeNS, aa: true,
		answer: []string{"skydesk.jp. 3600 IN NS ns1.skydesk.jp.", "skydesk.jp. 3600 IN NS ns2.skydesk.jp."},
		extra:  []string{"ns1.skydesk.jp. 3600 IN A 127.0.0.1", "ns1.skydesk.jp. 3600 IN AAAA ::1"}},
	{name: "MX hosted apex", qname: "example.co.jp.", qtype: dns.TypeMX, aa: true,
		answer: []string{"example.co.jp. 3600 IN MX 10 mx.skydesk.jp."}},
	{name: "autoconfig CNAME chased", qname: "autoconfig.example.co.jp.", qtype: dns.TypeA, aa: true,
		answer: []string{"autoconfig.example.co.jp. 3600 IN CNAME autoconfig.skydesk.jp.", "autoconfig.skydesk.jp. 3600 IN A 127.0.0.1"}},
	{name: "autodiscover CNAME itself", qname: "autodiscover.example.co.jp.", qtype: dns.TypeCNAME, aa: true,
		answer: []string{"autodiscover.example.co.jp. 3600 IN CNAME autodiscover.skydesk.jp."}},
	// Mixed case (0x20): the answer keeps the query's spelling.
	{name: "mixed case", qname: "_PoP3s._TcP.ExAmPlE.cO.Jp.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_PoP3s._TcP.ExAmPlE.cO.Jp. 3600 IN SRV 0 1 995 poppro.skydesk.jp."}},
	{name: "mixed case NXDOMAIN apex", qname: "Nope.EXAMPLE.co.jp.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, aa: true,
		ns: []string{strings.Replace(soaHosted, "example.co.jp.", "EXAMPLE.co.jp.", 1)}},
	// Unknown names and types.
	{name: "NXDOMAIN", qname: "_pop3s._udp.example.co.jp.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, aa: true,
		ns: []string{soaHosted}},
	{name: "NODATA missing type", qname: "_pop3s._tcp.example.co.jp.", qtype: dns.TypeTXT, aa: true,
		ns: []string{soaHosted}},
	{name: "NODATA no AAAA at apex", qname: "skydesk.jp.", qtype: dns.TypeAAAA, aa: true,
		ns: []string{soaPersonal}},
	{name: "NODATA empty non-terminal", qname: "_tcp.example.co.jp.", qtype: dns.TypeSRV, aa: true,
		ns: []string{soaHosted}},
	{name: "unknown domain refused", qname: "_pop3s._tcp.example.com.", qtype: dns.TypeSRV, rcode: dns.RcodeRefused},
	{name: "parent of a zone refused", qname: "co.jp.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
	{name: "zone transfer refused", qname: "example.co.jp.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused, only: "tcp"},
	// RFC 8482: ANY gets one RRset.
	{name: "ANY minimal", qname: "example.co.jp.", qtype: dns.TypeANY, aa: true,
		answer: []string{"example.co.jp. 3600 IN SOA ns1.skydesk.jp. hostmaster.skydesk.jp. 42 3600 900 1209600 300"}},
	// Truncation and EDNS0: big.skydesk.jp has ~700 bytes of A records.
	{name: "no EDNS: TC over UDP", qname: "big.skydesk.jp.", qtype: dns.TypeA, aa: true, tc: true, only: "udp"},
	{name: "EDNS 1232: whole answer over UDP", qname: "big.skydesk.jp.", qtype: dns.TypeA, edns: 1232, aa: true,
		answer: bigAnswer("big.skydesk.jp.", 40), only: "udp"},
	{name: "EDNS 600: TC over UDP", qname: "big.skydesk.jp.", qtype: dns.TypeA, edns: 600, aa: true, tc: true, only: "udp"},
	{name: "TCP fallback: whole answer", qname: "big.skydesk.jp.", qtype: dns.TypeA, aa: true,
		answer: bigAnswer("big.skydesk.jp.", 40), only: "tcp"},
	{name: "EDNS 4096 capped at 1232: TC", qname: "huge.skydesk.jp.", qtype: dns.TypeA, edns: 4096, aa: true, tc: true, only: "udp"},
	{name: "TCP: 1.7 KB answer", qname: "huge.skydesk.jp.", qtype: dns.TypeA, edns: 4096, aa: true,
		answer: bigAnswer("huge.skydesk.jp.", 100), only: "tcp"},
}

func bigAnswer(name string, n int) []string {
	var out []string
	for _, a := range bigHost(n) {
		out = append(out, name+" 3600 IN A "+a.String())
	}
	return out
}

// TestServer_answers runs every case through a real UDP and a real TCP
// listener on 127.0.0.1, twice: the first answer of a question is built
// by the slow path, the second comes from the wire fast path's template
// (and "mixed case" is answered from the template "hosted pop3s" left).
func TestServer_answers(t *testing.T) {
	f := start(t, nil)
	for _, run := range []string{"udp/first", "tcp/first", "udp/cached", "tcp/cached"} {
		network, _, _ := strings.Cut(run, "/")
		addr := map[string]string{"udp": f.udp, "tcp": f.tcp}[network]
		for _, tc := range answerCases {
			if tc.only != "" && tc.only != network {
				continue
			}
			t.Run(run+"/"+tc.name, func(t *testing.T) {
				q := query(tc.qname, tc.qtype, tc.edns)
				r := exchange(t, network, addr, q)
				if r.Rcode != tc.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if r.Authoritative != tc.aa || r.Truncated != tc.tc || r.RecursionAvailable || !r.Response {
					t.Errorf("flags aa=%v tc=%v ra=%v qr=%v, want aa=%v tc=%v ra=false qr=true",
						r.Authoritative, r.Truncated, r.RecursionAvailable, r.Response, tc.aa, tc.tc)
				}
				if len(r.Question) != 1 || r.Question[0].Name != tc.qname {
					t.Errorf("question %v, want %s as sent", r.Question, tc.qname)
				}
				if got, want := rrStrings(r.Answer), normAll(tc.answer); !slices.Equal(got, want) {
					t.Errorf("answer:\n got %q\nwant %q", got, want)
				}
				if got, want := rrStrings(r.Ns), normAll(tc.ns); !slices.Equal(got, want) {
					t.Errorf("authority:\n got %q\nwant %q", got, want)
				}
				if tc.extra != nil {
					if got, want := rrStrings(r.Extra), normAll(tc.extra); !slices.Equal(got, want) {
						t.Errorf("additional:\n got %q\nwant %q", got, want)
					}
				}
				opt := r.IsEdns0()
				switch {
				case tc.edns == 0 && opt != nil:
					t.Errorf("OPT in the answer to a query without EDNS")
				case tc.edns > 0 && opt == nil:
					t.Errorf("no OPT in the answer to an EDNS query")
				case tc.edns > 0 && opt.UDPSize() != 1232:
					t.Errorf("advertised UDP size %d, want 1232", opt.UDPSize())
				}
				if network == "udp" {
					limit := 512
					if tc.edns > 0 {
						limit = int(min(tc.edns, 1232))
					}
					r.Compress = true // the wire size, as sent
					if n := r.Len(); n > limit {
						t.Errorf("UDP answer of %d bytes exceeds %d", n, limit)
					}
				}
			})
		}
	}
}

// TestServer_ednsVersion: RFC 6891 §6.1.3, an unknown EDNS version gets
// BADVERS with our OPT (version 0).
func TestServer_ednsVersion(t *testing.T) {
	f := start(t, nil)
	q := query("_pop3s._tcp.skydesk.jp.", dns.TypeSRV, 1232)
	q.IsEdns0().SetVersion(1)
	r := exchange(t, "udp", f.udp, q)
	opt := r.IsEdns0()
	if opt == nil || opt.Version() != 0 || r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 {
		t.Fatalf("rcode %s, opt %v, answer %v: want BADVERS, OPT version 0, no answer", dns.RcodeToString[r.Rcode], opt, r.Answer)
	}
}

// TestServer_doBit: RFC 3225 §3, the DO bit is copied into the answer.
func TestServer_doBit(t *testing.T) {
	f := start(t, nil)
	q := query("_pop3s._tcp.skydesk.jp.", dns.TypeSRV, 1232)
	q.IsEdns0().SetDo()
	if r := exchange(t, "udp", f.udp, q); r.IsEdns0() == nil || !r.IsEdns0().Do() || len(r.Answer) != 1 {
		t.Fatalf("answer %v: want DO copied and the SRV record", r)
	}
}

// TestServer_classes: only IN is served; CHAOS (version.bind) is refused
// so the software version is never told.
func TestServer_classes(t *testing.T) {
	f := start(t, nil)
	q := query("version.bind.", dns.TypeTXT, 0)
	q.Question[0].Qclass = dns.ClassCHAOS
	if r := exchange(t, "udp", f.udp, q); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
		t.Fatalf("CHAOS version.bind: rcode %s answer %v, want REFUSED", dns.RcodeToString[r.Rcode], r.Answer)
	}
}

// TestServer_reload: a domain added or removed is answered or refused
// after Reload, and the SOA serial follows the domain list's.
func TestServer_reload(t *testing.T) {
	f := start(t, nil)
	ask := func(name string, t2 uint16) *dns.Msg { return exchange(t, "udp", f.udp, query(name, t2, 0)) }
	if r := ask("_pop3s._tcp.new.example.", dns.TypeSRV); r.Rcode != dns.RcodeRefused {
		t.Fatalf("before adding: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	f.dom.set(43, "example.co.jp", "new.example")
	f.h.Reload()
	r := ask("_pop3s._tcp.new.example.", dns.TypeSRV)
	if got := rrStrings(r.Answer); !slices.Equal(got, normAll([]string{"_pop3s._tcp.new.example. 3600 IN SRV 0 1 995 poppro.skydesk.jp."})) {
		t.Fatalf("after adding: %s %q", dns.RcodeToString[r.Rcode], got)
	}
	if soa := ask("new.example.", dns.TypeSOA); len(soa.Answer) != 1 || soa.Answer[0].(*dns.SOA).Serial != 43 {
		t.Fatalf("SOA after adding: %v, want serial 43", soa.Answer)
	}
	// Asked twice, the answer is now a fast-path template; Reload must drop it.
	for range 2 {
		if r := ask("_pop3s._tcp.example.co.jp.", dns.TypeSRV); len(r.Answer) != 1 {
			t.Fatalf("before removing: %v", r)
		}
	}
	f.dom.set(44, "new.example")
	f.h.Reload()
	if r := ask("_pop3s._tcp.example.co.jp.", dns.TypeSRV); r.Rcode != dns.RcodeRefused {
		t.Fatalf("after removing: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if soa := ask("skydesk.jp.", dns.TypeSOA); soa.Answer[0].(*dns.SOA).Serial != 44 {
		t.Fatalf("personal zone serial %v, want 44", soa.Answer)
	}
	if got := f.h.Zones(); !slices.Equal(got, []string{"new.example.", "skydesk.jp."}) {
		t.Fatalf("zones %q", got)
	}
}

// TestHandler_asDNSHandler: the Handler also works as a plain dns.Handler
// under miekg/dns's own server (e.g. embedded in another DNS server).
func TestHandler_asDNSHandler(t *testing.T) {
	f := start(t, nil)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: f.h, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	r := exchange(t, "udp", pc.LocalAddr().String(), query("_POP3S._tcp.skydesk.jp.", dns.TypeSRV, 1232))
	want := normAll([]string{"_POP3S._tcp.skydesk.jp. 3600 IN SRV 0 1 995 pop.skydesk.jp."})
	if got := rrStrings(r.Answer); !slices.Equal(got, want) || !r.Authoritative {
		t.Fatalf("answer %q aa=%v, want %q", got, r.Authoritative, want)
	}
}

// TestServer_wildcardSource: a server bound to the wildcard address (as
// listen.dns ":53" is) answers from the address each query was sent to;
// a connected client socket, like a resolver's, ignores any other source.
func TestServer_wildcardSource(t *testing.T) {
	dom := &domains{serial: 1, list: []string{"example.co.jp"}}
	h, err := newTestHandler(profiles.NewResolver(settings, dom), dom)
	if err != nil {
		t.Fatal(err)
	}
	pcs, err := dnssrv.ListenUDP(":0", 2)
	if err != nil {
		t.Fatal(err)
	}
	serveOnMany(t, h, pcs, nil)
	_, port, _ := net.SplitHostPort(pcs[0].LocalAddr().String())
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "::1"} {
		t.Run(ip, func(t *testing.T) {
			if ip == "::1" {
				if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					c.Close()
				}
			}
			r := exchange(t, "udp", net.JoinHostPort(ip, port), query("_pop3s._tcp.example.co.jp.", dns.TypeSRV, 0))
			if len(r.Answer) != 1 {
				t.Fatalf("answer %v", r.Answer)
			}
		})
	}
}

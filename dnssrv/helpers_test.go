package dnssrv_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
)

// settings are the shipped provider facts (config.Default).
var settings = profiles.Settings{
	Provider: profiles.Provider{
		ID: "skydesk.jp", Name: "SkyDesk Mail", ShortName: "SkyDesk",
		HelpURL: "https://www.skydesk.jp/help/mail/client-settings", WebURL: "https://autoconfig.skydesk.jp",
		AutoconfigHost: "autoconfig.skydesk.jp", AutodiscoverHost: "autodiscover.skydesk.jp",
	},
	PersonalDomain: "skydesk.jp", PersonalPOPHost: "pop.skydesk.jp", OrganizationPOPHost: "poppro.skydesk.jp",
	POPPort: 995, SMTPHost: "smtp.skydesk.jp", SMTPImplicitTLSPort: 465, SMTPSTARTTLSPort: 587,
}

// domains is a fake domain list with the store's snapshot semantics.
type domains struct {
	mu     sync.Mutex
	serial uint32
	list   []string
}

func (d *domains) snapshot() (uint32, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.serial, slices.Clone(d.list)
}

func (d *domains) set(serial uint32, list ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.serial, d.list = serial, list
}

func (d *domains) IsHosted(_ context.Context, name string) (bool, error) {
	_, l := d.snapshot()
	return slices.Contains(l, name), nil
}

type fixture struct {
	h        *dnssrv.Handler
	dom      *domains
	resolver *profiles.Resolver
	udp, tcp string
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// bigHost returns n addresses 10.0.i.j for a host whose A RRset does not
// fit in 512 bytes (n ≥ 30) or in 1232 (n ≥ 75).
func bigHost(n int) []netip.Addr {
	var out []netip.Addr
	for i := range n {
		out = append(out, netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(i%250 + 1)}))
	}
	return out
}

// testOptions are the Dev-like zone facts: the service hosts on loopback,
// plus two hosts with large A RRsets for truncation.
func testOptions(r *profiles.Resolver) dnssrv.Options {
	a := map[string][]netip.Addr{
		"big.skydesk.jp":  bigHost(40),  // ~700 bytes: > 512, < 1232
		"huge.skydesk.jp": bigHost(100), // ~1.7 KB: > 1232
	}
	for _, h := range []string{"pop.skydesk.jp", "poppro.skydesk.jp", "smtp.skydesk.jp", "autoconfig.skydesk.jp",
		"autodiscover.skydesk.jp", "mx.skydesk.jp", "ns1.skydesk.jp"} {
		a[h] = addrs("127.0.0.1", "::1")
	}
	return dnssrv.Options{
		Profile: r.ProfileFor, PersonalDomain: "skydesk.jp",
		Nameservers: []string{"ns1.skydesk.jp", "ns2.skydesk.jp"}, Addresses: a, TTL: 3600,
		MXHost: "mx.skydesk.jp",
	}
}

// start serves a Handler on real UDP and TCP sockets on 127.0.0.1. The
// sockets are bound before start returns, so queries queue in the kernel
// until the server goroutines read them: no readiness wait is needed.
func start(t testing.TB, mutate func(*dnssrv.Options)) *fixture {
	t.Helper()
	dom := &domains{serial: 42, list: []string{"example.co.jp"}}
	f := &fixture{dom: dom, resolver: profiles.NewResolver(settings, dom)}
	o := testOptions(f.resolver)
	if mutate != nil {
		mutate(&o)
	}
	h, err := dnssrv.NewHandler(o, dom.snapshot)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	pcs, l := listenPair(t, "127.0.0.1:0")
	f.udp, f.tcp = pcs[0].LocalAddr().String(), l.Addr().String()
	serveOnMany(t, h, pcs, l)
	return f
}

// listenPair is Listen with two UDP sockets, failing the test on error.
func listenPair(t testing.TB, addr string) ([]net.PacketConn, net.Listener) {
	t.Helper()
	pcs, l, err := dnssrv.Listen(addr, 2)
	if err != nil {
		t.Fatal(err)
	}
	return pcs, l
}

// serveOn runs a Server until the test ends and checks it stops cleanly.
func serveOn(t testing.TB, h *dnssrv.Handler, pc net.PacketConn, l net.Listener) {
	t.Helper()
	serveOnMany(t, h, []net.PacketConn{pc}, l)
}

// serveOnMany is serveOn with several UDP sockets (SO_REUSEPORT).
func serveOnMany(t testing.TB, h *dnssrv.Handler, pcs []net.PacketConn, l net.Listener) {
	t.Helper()
	run(t, dnssrv.NewServer(h, pcs, l))
}

// run serves UDP and TCP on srv until the test ends and checks it stops
// cleanly.
func run(t testing.TB, srv *dnssrv.Server) {
	t.Helper()
	errs := make(chan error, 2)
	go func() { errs <- srv.ServeUDP() }()
	go func() { errs <- srv.ServeTCP() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	})
}

// query builds a non-recursive query; edns 0 means no OPT record.
func query(name string, t uint16, edns uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	m.RecursionDesired = false
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	return m
}

// exchange sends m over network ("udp" or "tcp") and returns the answer.
func exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 3 * time.Second, UDPSize: dns.MaxMsgSize}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query %s: %v", network, m.Question[0].String(), err)
	}
	if r.Id != m.Id {
		t.Fatalf("answer id %d, query id %d", r.Id, m.Id)
	}
	return r
}

// rrStrings renders records in zone-file form, single-spaced.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, normRR(rr.String()))
	}
	return out
}

func normRR(s string) string {
	rr, err := dns.NewRR(s)
	if err != nil {
		return "unparsable: " + s
	}
	f := []byte(rr.String())
	for i, c := range f {
		if c == '\t' {
			f[i] = ' '
		}
	}
	return string(f)
}

func normAll(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, normRR(s))
	}
	return out
}

// newTestHandler is a Handler over testOptions and a fake domain list.
func newTestHandler(r *profiles.Resolver, dom *domains) (*dnssrv.Handler, error) {
	return dnssrv.NewHandler(testOptions(r), dom.snapshot)
}

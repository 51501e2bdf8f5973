package dnssrv_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
)

// floodUDP sends n queries for m with IDs 1..n from one socket (one
// client, one server socket under SO_REUSEPORT), then reads answers
// until want have come or the deadline passes. It returns the IDs of the
// whole answers and of the truncated empty ones.
func floodUDP(t *testing.T, c net.Conn, m *dns.Msg, n, want int) (whole, tc []uint16) {
	t.Helper()
	for i := 1; i <= n; i++ {
		m.Id = uint16(i)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for len(whole)+len(tc) < want {
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d whole and %d truncated answers: %v", len(whole), len(tc), err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Truncated && len(r.Answer) == 0:
			tc = append(tc, r.Id)
		case len(r.Answer) == 1:
			whole = append(whole, r.Id)
		default:
			t.Fatalf("unexpected answer %v", r)
		}
	}
	return whole, tc
}

func ids(from, to, step int) []uint16 {
	var out []uint16
	for i := from; i <= to; i += step {
		out = append(out, uint16(i))
	}
	return out
}

// TestServer_rrl runs RRL on real sockets on 127.0.0.1 with the clock
// stopped: one client flooding one name over UDP gets its burst, then
// every second answer truncated and the others dropped; over TCP it gets
// every answer; another /24 and, once time passes, the same client are
// answered again over UDP.
func TestServer_rrl(t *testing.T) {
	clk := newFakeClock()
	f := start(t, func(o *dnssrv.Options) { o.RRL.Clock = clk.now })
	c, err := net.Dial("udp", f.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := query(pop3s, dns.TypeSRV, 0)
	// 20 answered, then 20 limited: 21, 23, ... dropped, 22, 24, ... 40
	// truncated. The last is truncated, so when it has come every drop
	// before it has been counted.
	whole, tc := floodUDP(t, c, q, 40, 30)
	if !slices.Equal(whole, ids(1, 20, 1)) || !slices.Equal(tc, ids(22, 40, 2)) {
		t.Fatalf("whole answers %v, truncated %v; want 1-20 and the even 22-40", whole, tc)
	}
	if d, s := f.h.RateLimited(); d != 10 || s != 10 {
		t.Fatalf("RateLimited() = %d, %d; want 10, 10", d, s)
	}

	t.Run("TCP never limited", func(t *testing.T) {
		for range 50 {
			if r := exchange(t, "tcp", f.tcp, query(pop3s, dns.TypeSRV, 0)); len(r.Answer) != 1 || r.Truncated {
				t.Fatalf("TCP answer %v", r)
			}
		}
	})

	t.Run("another /24", func(t *testing.T) {
		// Linux routes all of 127/8 to lo; elsewhere only 127.0.0.1 may work.
		other, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 1, 1)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(f.udp)))
		if err != nil {
			t.Skipf("no second loopback /24: %v", err)
		}
		defer other.Close()
		whole, tc := floodUDP(t, other, q, 3, 3)
		if len(whole) != 3 || len(tc) != 0 {
			t.Fatalf("from 127.0.1.1: %v whole, %v truncated; want 3 whole", whole, tc)
		}
	})

	t.Run("after a second", func(t *testing.T) {
		clk.advance(time.Second)
		whole, tc := floodUDP(t, c, q, 20, 20)
		if len(whole) != 20 || len(tc) != 0 {
			t.Fatalf("%v whole, %v truncated; want 20 whole", whole, tc)
		}
	})
}

// TestCheck_overTCPWhenLimited: Check (skydeskd dns check) still gets its
// answer from a server whose rate limit drops its UDP query: it asks over
// TCP after the UDP timeout.
func TestCheck_overTCPWhenLimited(t *testing.T) {
	clk := newFakeClock()
	f := start(t, func(o *dnssrv.Options) {
		o.RRL = dnssrv.RRL{ResponsesPerSecond: 1, Burst: 1, Slip: -1, Clock: clk.now}
	})
	if r := exchange(t, "udp", f.udp, query(pop3s, dns.TypeSRV, 0)); len(r.Answer) != 1 {
		t.Fatalf("first UDP answer %v", r)
	}
	want := dnssrv.Record{Name: pop3s, Type: "SRV", Data: "0 1 995 poppro.skydesk.jp."}
	got := dnssrv.Check(context.Background(), f.udp, []dnssrv.Record{want})
	if len(got) != 1 || got[0].Status != dnssrv.OK {
		t.Fatalf("Check = %+v; want the record found over TCP", got)
	}
	if d, _ := f.h.RateLimited(); d != 1 {
		t.Fatalf("RateLimited drops = %d; want 1 (the check's UDP query)", d)
	}
}

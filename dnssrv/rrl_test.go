package dnssrv_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
)

// fakeClock is an injected RRL clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rrlHandler is a Handler over testOptions with r as its RRL settings
// and clk as its clock.
func rrlHandler(t testing.TB, clk *fakeClock, r dnssrv.RRL, log *slog.Logger) *dnssrv.Handler {
	t.Helper()
	dom := &domains{serial: 1, list: []string{"example.co.jp"}}
	o := testOptions(profiles.NewResolver(settings, dom))
	if clk != nil {
		r.Clock = clk.now
	}
	o.RRL, o.Logger = r, log
	h, err := dnssrv.NewHandler(o, dom.snapshot)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Outcomes of one UDP query.
const (
	sent    = "sent"    // the whole answer
	slipped = "slipped" // TC, header and question only
	dropped = "dropped" // nothing
)

// udpAsk sends one query through Handler.AnswerUDP as if from client and
// says what came back; the answer must be AnswerWire's when sent whole,
// and a well-formed empty TC answer to the same question when slipped.
func udpAsk(t testing.TB, h *dnssrv.Handler, client string, m *dns.Msg) string {
	t.Helper()
	pkt, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	// The unlimited answer first (TCP: no truncation, no RRL), for
	// comparison; then the same over UDP.
	want := h.AnswerWire(pkt, true, nil)
	got := h.AnswerUDP(pkt, netip.MustParseAddr(client), make([]byte, 0, 4096))
	if got == nil {
		return dropped
	}
	r := new(dns.Msg)
	if err := r.Unpack(got); err != nil {
		t.Fatalf("unpacking the UDP answer: %v", err)
	}
	if r.Id != m.Id || !r.Response || len(r.Question) != 1 || r.Question[0] != m.Question[0] {
		t.Fatalf("answer %v does not answer %v", r, m)
	}
	if !r.Truncated || bytes.Equal(got, want) {
		if !bytes.Equal(got, want) {
			t.Fatalf("answer differs from AnswerWire's:\n%v", r)
		}
		return sent
	}
	if len(r.Answer)+len(r.Ns) != 0 || len(r.Extra) != 0 && r.IsEdns0() == nil {
		t.Fatalf("slipped answer with records: %v", r)
	}
	if (m.IsEdns0() == nil) != (r.IsEdns0() == nil) {
		t.Fatalf("slipped answer's OPT %v, query's %v: want both or neither", r.IsEdns0(), m.IsEdns0())
	}
	return slipped
}

// outcomes asks m n times from client and lists what happened, run-length
// encoded: "20 sent, 1 dropped, 1 slipped, ...".
func outcomes(t testing.TB, h *dnssrv.Handler, client string, n int, m func(i int) *dns.Msg) string {
	t.Helper()
	var runs []string
	last, count := "", 0
	for i := range n {
		o := udpAsk(t, h, client, m(i))
		if o != last && count > 0 {
			runs = append(runs, fmt.Sprintf("%d %s", count, last))
			count = 0
		}
		last = o
		count++
	}
	return strings.Join(append(runs, fmt.Sprintf("%d %s", count, last)), ", ")
}

func same(m *dns.Msg) func(int) *dns.Msg { return func(int) *dns.Msg { return m } }

const pop3s = "_pop3s._tcp.example.co.jp."

// TestRRL_underLimit: a client at the limit (20 a second, after a burst
// of 20) gets every answer, byte for byte the unlimited one.
func TestRRL_underLimit(t *testing.T) {
	clk := newFakeClock()
	h := rrlHandler(t, clk, dnssrv.RRL{}, nil)
	q := query(pop3s, dns.TypeSRV, 1232)
	if got := outcomes(t, h, "192.0.2.1", 20, same(q)); got != "20 sent" {
		t.Fatalf("burst: %s", got)
	}
	for range 200 { // ten seconds at 20 a second
		clk.advance(50 * time.Millisecond)
		if o := udpAsk(t, h, "192.0.2.1", q); o != sent {
			t.Fatalf("at the steady rate: %s", o)
		}
	}
	if d, s := h.RateLimited(); d != 0 || s != 0 {
		t.Fatalf("RateLimited() = %d, %d; want 0, 0", d, s)
	}
}

// TestRRL_overLimit: past the burst, limited answers are dropped except
// every Slip-th, sent truncated; and the counters say so.
func TestRRL_overLimit(t *testing.T) {
	for _, tc := range []struct {
		slip      int
		want      string
		drop, tcs uint64
	}{
		{0, "20 sent, 1 dropped, 1 slipped, 1 dropped, 1 slipped, 1 dropped, 1 slipped", 3, 3}, // default 2
		{1, "20 sent, 6 slipped", 0, 6},
		{3, "20 sent, 2 dropped, 1 slipped, 2 dropped, 1 slipped", 4, 2},
		{-1, "20 sent, 6 dropped", 6, 0},
	} {
		t.Run(fmt.Sprintf("slip=%d", tc.slip), func(t *testing.T) {
			h := rrlHandler(t, newFakeClock(), dnssrv.RRL{Slip: tc.slip}, nil)
			if got := outcomes(t, h, "192.0.2.1", 26, same(query(pop3s, dns.TypeSRV, 0))); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if d, s := h.RateLimited(); d != tc.drop || s != tc.tcs {
				t.Errorf("RateLimited() = %d, %d; want %d, %d", d, s, tc.drop, tc.tcs)
			}
		})
	}
	// With EDNS the slipped answer keeps an OPT record (udpAsk checks).
	h := rrlHandler(t, newFakeClock(), dnssrv.RRL{Slip: 1}, nil)
	if got := outcomes(t, h, "192.0.2.1", 22, same(query(pop3s, dns.TypeSRV, 1232))); got != "20 sent, 2 slipped" {
		t.Fatalf("EDNS: %s", got)
	}
}

// TestRRL_recovery: the limit lifts as time passes, at the set rate.
func TestRRL_recovery(t *testing.T) {
	clk := newFakeClock()
	h := rrlHandler(t, clk, dnssrv.RRL{ResponsesPerSecond: 10, Burst: 5, Slip: -1}, nil)
	q := same(query(pop3s, dns.TypeSRV, 0))
	if got := outcomes(t, h, "192.0.2.1", 8, q); got != "5 sent, 3 dropped" {
		t.Fatalf("burst: %s", got)
	}
	clk.advance(100 * time.Millisecond) // one interval at 10/s
	if got := outcomes(t, h, "192.0.2.1", 3, q); got != "1 sent, 2 dropped" {
		t.Fatalf("after one interval: %s", got)
	}
	clk.advance(time.Second)
	if got := outcomes(t, h, "192.0.2.1", 7, q); got != "5 sent, 2 dropped" {
		t.Fatalf("after a second (the burst, no more): %s", got)
	}
	clk.advance(24 * time.Hour)
	if got := outcomes(t, h, "192.0.2.1", 6, q); got != "5 sent, 1 dropped" {
		t.Fatalf("after a day: %s", got)
	}
}

// TestRRL_prefixes: clients are grouped by IPv4 /24 and IPv6 /56 (or
// the lengths set); IPv4-mapped IPv6, as a dual-stack socket reports
// IPv4 clients, counts as IPv4.
func TestRRL_prefixes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rrl         dnssrv.RRL
		flood       string
		limited, ok []string
	}{
		{"IPv4 /24", dnssrv.RRL{}, "192.0.2.1",
			[]string{"192.0.2.1", "192.0.2.254", "::ffff:192.0.2.9"}, []string{"192.0.3.1", "198.51.100.1", "2001:db8::1"}},
		{"IPv4 /32", dnssrv.RRL{IPv4PrefixLen: 32}, "192.0.2.1",
			[]string{"192.0.2.1", "::ffff:192.0.2.1"}, []string{"192.0.2.2"}},
		{"IPv4-mapped flood", dnssrv.RRL{}, "::ffff:192.0.2.1",
			[]string{"192.0.2.200"}, []string{"192.0.4.1"}},
		{"IPv6 /56", dnssrv.RRL{}, "2001:db8:0:100::1",
			[]string{"2001:db8:0:100::2", "2001:db8:0:1ff:ffff:ffff:ffff:ffff", "2001:db8:0:1ab::53%eth0"},
			[]string{"2001:db8:0:200::1", "2001:db8:1:100::1", "192.0.2.1"}},
		{"IPv6 /64", dnssrv.RRL{IPv6PrefixLen: 64}, "2001:db8:0:100::1",
			[]string{"2001:db8:0:100:ffff::1"}, []string{"2001:db8:0:101::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rrl.Slip = -1
			h := rrlHandler(t, newFakeClock(), tc.rrl, nil)
			q := query(pop3s, dns.TypeSRV, 0)
			if got := outcomes(t, h, tc.flood, 21, same(q)); got != "20 sent, 1 dropped" {
				t.Fatalf("flood from %s: %s", tc.flood, got)
			}
			for _, c := range tc.limited {
				if o := udpAsk(t, h, c, q); o != dropped {
					t.Errorf("%s: %s, want dropped (same network as %s)", c, o, tc.flood)
				}
			}
			for _, c := range tc.ok {
				if o := udpAsk(t, h, c, q); o != sent {
					t.Errorf("%s: %s, want sent (another network)", c, o)
				}
			}
		})
	}
}

// TestRRL_classes: answers are limited per name and type; NXDOMAIN per
// zone, so random names share a key; NODATA per name, so random types
// share one; every error per client network; and a name's letter case
// (0x20) does not make a new key.
func TestRRL_classes(t *testing.T) {
	h := rrlHandler(t, newFakeClock(), dnssrv.RRL{Slip: -1}, nil)
	const c = "192.0.2.1"
	randomName := func(i int) *dns.Msg { return query(fmt.Sprintf("x%d.example.co.jp.", i), dns.TypeA, 0) }
	if got := outcomes(t, h, c, 25, randomName); got != "20 sent, 5 dropped" {
		t.Errorf("random names in one zone: %s", got)
	}
	if r := exchangeHandler(t, h, c, query("nothing.skydesk.jp.", dns.TypeA, 0)); r == nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("NXDOMAIN in another zone: %v, want it answered", r)
	}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX, dns.TypeNS, dns.TypeCAA, dns.TypeHTTPS, dns.TypeSVCB}
	randomType := func(i int) *dns.Msg {
		q := query(pop3s, types[i%len(types)], 0)
		q.Question[0].Qtype += uint16(i / len(types) * 256)
		return q
	}
	if got := outcomes(t, h, c, 25, randomType); got != "20 sent, 5 dropped" {
		t.Errorf("NODATA for random types of one name: %s", got)
	}
	mixedCase := func(i int) *dns.Msg {
		if i%2 == 1 {
			return query("_POP3S._tcp.Example.CO.jp.", dns.TypeSRV, 0)
		}
		return query(pop3s, dns.TypeSRV, 0)
	}
	if got := outcomes(t, h, c, 21, mixedCase); got != "20 sent, 1 dropped" {
		t.Errorf("one name in two spellings: %s", got)
	}
	if o := udpAsk(t, h, c, query("_submissions._tcp.example.co.jp.", dns.TypeSRV, 0)); o != sent {
		t.Errorf("another name: %s, want sent", o)
	}
	refused := func(i int) *dns.Msg { return query(fmt.Sprintf("zone%d.example.", i), dns.TypeSOA, 0) }
	if got := outcomes(t, h, c, 20, refused); got != "20 sent" {
		t.Errorf("REFUSED: %s", got)
	}
	formerr := append([]byte{0xAB, 0xCD, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 3, 'f', 'o')
	if r := h.AnswerUDP(formerr, netip.MustParseAddr(c), nil); r != nil {
		t.Errorf("FORMERR after 20 REFUSED: %x, want it limited with them", r)
	}
	if r := h.AnswerUDP(formerr, netip.MustParseAddr("192.0.3.1"), nil); len(r) != 12 || r[3]&0xF != dns.RcodeFormatError {
		t.Errorf("FORMERR to another network: %x", r)
	}
}

// exchangeHandler is udpAsk returning the answer itself.
func exchangeHandler(t *testing.T, h *dnssrv.Handler, client string, m *dns.Msg) *dns.Msg {
	t.Helper()
	pkt, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	b := h.AnswerUDP(pkt, netip.MustParseAddr(client), nil)
	if b == nil {
		return nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRRL_disabled: ResponsesPerSecond < 0 turns RRL off.
func TestRRL_disabled(t *testing.T) {
	h := rrlHandler(t, newFakeClock(), dnssrv.RRL{ResponsesPerSecond: -1}, nil)
	if got := outcomes(t, h, "192.0.2.1", 500, same(query(pop3s, dns.TypeSRV, 0))); got != "500 sent" {
		t.Fatalf("%s", got)
	}
	if d, s := h.RateLimited(); d != 0 || s != 0 {
		t.Fatalf("RateLimited() = %d, %d", d, s)
	}
}

// TestRRL_badOptions: out-of-range settings are refused, not clamped.
func TestRRL_badOptions(t *testing.T) {
	for _, r := range []dnssrv.RRL{
		{ResponsesPerSecond: 2_000_000}, {Slip: 11}, {Burst: -1}, {IPv4PrefixLen: 33}, {IPv6PrefixLen: -2},
		{IPv6PrefixLen: 129}, {TableSize: -1},
	} {
		dom := &domains{serial: 1, list: []string{"example.co.jp"}}
		o := testOptions(profiles.NewResolver(settings, dom))
		o.RRL = r
		if _, err := dnssrv.NewHandler(o, dom.snapshot); err == nil || !strings.Contains(err.Error(), "RRL.") {
			t.Errorf("%+v: error %v, want one naming the RRL field", r, err)
		}
	}
}

// logRecords is a slog.Handler keeping what is logged.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}

// rrl returns the RRL summary lines logged, as "key=value ..." text.
func (l *logRecords) rrl() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if !strings.Contains(r.Message, "rate limiting") {
			continue
		}
		var kv []string
		r.Attrs(func(a slog.Attr) bool { kv = append(kv, a.String()); return true })
		out = append(out, r.Level.String()+" "+strings.Join(kv, " "))
	}
	return out
}

// TestRRL_summaryLog: limited answers are never logged one by one; a
// summary with the counts comes at most once a minute.
func TestRRL_summaryLog(t *testing.T) {
	clk := newFakeClock()
	logs := &logRecords{}
	h := rrlHandler(t, clk, dnssrv.RRL{}, slog.New(logs))
	q := same(query(pop3s, dns.TypeSRV, 0))
	outcomes(t, h, "192.0.2.7", 1020, q) // 1000 limited
	want := []string{"WARN dropped=1 truncated=0 since=0s prefix=192.0.2.0/24"}
	if got := logs.rrl(); !equalStrings(got, want) {
		t.Fatalf("after the first flood:\n got %q\nwant %q", got, want)
	}
	clk.advance(59 * time.Second) // the key has its burst back
	outcomes(t, h, "192.0.2.7", 30, q)
	if got := logs.rrl(); len(got) != 1 {
		t.Fatalf("within the minute: %q, want still one line", got)
	}
	clk.advance(time.Second)
	outcomes(t, h, "2001:db8:0:100::1", 22, q)
	want = append(want, "WARN dropped=505 truncated=505 since=1m0s prefix=2001:db8:0:100::/56")
	if got := logs.rrl(); !equalStrings(got, want) {
		t.Fatalf("a minute later:\n got %q\nwant %q", got, want)
	}
}

func equalStrings(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

package dnssrv_test

import (
	"bufio"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/store/storetest"
)

// digResult is what dig printed, by section.
type digResult struct {
	status    string
	flags     []string
	answer    []string
	authority []string
}

var (
	digStatus = regexp.MustCompile(`status: ([A-Z]+)`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]+);`)
)

func runDig(t *testing.T, dig, addr string, args ...string) digResult {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	argv := append([]string{"@" + host, "-p", port, "+norec", "+noall", "+comments", "+answer", "+authority",
		"+time=3", "+tries=1"}, args...)
	out, err := exec.Command(dig, argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	var r digResult
	var section *[]string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case digStatus.MatchString(line):
			r.status = digStatus.FindStringSubmatch(line)[1]
		case digFlags.MatchString(line):
			r.flags = strings.Fields(digFlags.FindStringSubmatch(line)[1])
		case strings.HasPrefix(line, ";; ANSWER SECTION"):
			section = &r.answer
		case strings.HasPrefix(line, ";; AUTHORITY SECTION"):
			section = &r.authority
		case strings.HasPrefix(line, ";") || strings.TrimSpace(line) == "":
			if strings.TrimSpace(line) == "" {
				section = nil
			}
		case section != nil:
			*section = append(*section, normRR(line))
		}
	}
	if r.status == "" {
		t.Fatalf("dig printed no header:\n%s", out)
	}
	return r
}

// TestDig runs bind9's dig, a real third-party client, against the server
// over UDP and TCP, including its own TC→TCP fallback.
func TestDig(t *testing.T) {
	dig := storetest.RequireTool(t, "dig")
	f := start(t, nil)
	for _, tc := range []struct {
		name      string
		args      []string
		status    string
		flags     []string // must be present
		noFlags   []string // must be absent
		answer    []string
		authority []string
		count     int // answer count, when answer is not listed
	}{
		{"hosted pop3s", []string{"_pop3s._tcp.example.co.jp", "SRV"}, "NOERROR", []string{"qr", "aa"}, []string{"ra", "tc"},
			[]string{"_pop3s._tcp.example.co.jp. 3600 IN SRV 0 1 995 poppro.skydesk.jp."}, nil, 0},
		{"personal submissions over TCP", []string{"+tcp", "_submissions._tcp.skydesk.jp", "SRV"}, "NOERROR", []string{"aa"}, nil,
			[]string{"_submissions._tcp.skydesk.jp. 3600 IN SRV 0 1 465 smtp.skydesk.jp."}, nil, 0},
		{"imaps not offered", []string{"_imaps._tcp.skydesk.jp", "SRV"}, "NOERROR", []string{"aa"}, nil,
			[]string{"_imaps._tcp.skydesk.jp. 3600 IN SRV 0 0 0 ."}, nil, 0},
		{"autodiscover mixed case", []string{"_AutoDiscover._TCP.Example.Co.Jp", "SRV"}, "NOERROR", []string{"aa"}, nil,
			[]string{"_AutoDiscover._TCP.Example.Co.Jp. 3600 IN SRV 0 1 443 autodiscover.skydesk.jp."}, nil, 0},
		{"NXDOMAIN", []string{"nothing.example.co.jp", "SRV"}, "NXDOMAIN", []string{"aa"}, nil, nil,
			[]string{soaHosted}, 0},
		{"NODATA", []string{"_pop3s._tcp.skydesk.jp", "A"}, "NOERROR", []string{"aa"}, nil, nil,
			[]string{soaPersonal}, 0},
		{"unknown zone", []string{"_pop3s._tcp.example.org", "SRV"}, "REFUSED", nil, []string{"aa"}, nil, nil, 0},
		{"TC without EDNS", []string{"+noedns", "+ignore", "big.skydesk.jp", "A"}, "NOERROR", []string{"tc", "aa"}, nil, nil, nil, 0},
		{"dig retries over TCP", []string{"+noedns", "big.skydesk.jp", "A"}, "NOERROR", []string{"aa"}, []string{"tc"}, nil, nil, 40},
		{"EDNS bufsize honoured", []string{"+bufsize=1232", "big.skydesk.jp", "A"}, "NOERROR", []string{"aa"}, []string{"tc"}, nil, nil, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runDig(t, dig, f.udp, tc.args...)
			if r.status != tc.status {
				t.Errorf("status %s, want %s", r.status, tc.status)
			}
			for _, fl := range tc.flags {
				if !slices.Contains(r.flags, fl) {
					t.Errorf("flags %v lack %s", r.flags, fl)
				}
			}
			for _, fl := range tc.noFlags {
				if slices.Contains(r.flags, fl) {
					t.Errorf("flags %v have %s", r.flags, fl)
				}
			}
			if tc.count > 0 {
				if len(r.answer) != tc.count {
					t.Errorf("%d answers, want %d", len(r.answer), tc.count)
				}
			} else if !slices.Equal(r.answer, normAll(tc.answer)) {
				t.Errorf("answer:\n got %q\nwant %q", r.answer, normAll(tc.answer))
			}
			if !slices.Equal(r.authority, normAll(tc.authority)) {
				t.Errorf("authority:\n got %q\nwant %q", r.authority, normAll(tc.authority))
			}
		})
	}
}

// TestDig_tcpWhileRateLimited: while response rate limiting holds back
// every UDP answer to 127.0.0.0/24 (clock stopped, every limited answer
// slipped as an empty TC answer), dig +tcp from the same address is
// answered, TCP being never limited; and plain dig gets there too, by
// its own retry over TCP on TC, as a resolver does.
func TestDig_tcpWhileRateLimited(t *testing.T) {
	dig := storetest.RequireTool(t, "dig")
	clk := newFakeClock()
	f := start(t, func(o *dnssrv.Options) {
		o.RRL = dnssrv.RRL{ResponsesPerSecond: 1, Burst: 1, Slip: 1, Clock: clk.now}
	})
	q := query("_pop3s._tcp.example.co.jp.", dns.TypeSRV, 0)
	if r := exchange(t, "udp", f.udp, q); len(r.Answer) != 1 {
		t.Fatalf("first UDP query: %v", r)
	}
	if r := exchange(t, "udp", f.udp, q); !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("second UDP query: %v, want an empty TC answer (rate limited)", r)
	}
	want := normAll([]string{"_pop3s._tcp.example.co.jp. 3600 IN SRV 0 1 995 poppro.skydesk.jp."})
	for _, args := range [][]string{{"+tcp"}, {}} {
		r := runDig(t, dig, f.udp, append(args, "_pop3s._tcp.example.co.jp", "SRV")...)
		if r.status != "NOERROR" || !slices.Equal(r.answer, want) || slices.Contains(r.flags, "tc") {
			t.Errorf("dig %v while UDP is limited: %s %v %q, want NOERROR %q", args, r.status, r.flags, r.answer, want)
		}
	}
	if _, s := f.h.RateLimited(); s != 2 {
		t.Errorf("RateLimited() slipped %d, want 2 (the Go client's and plain dig's UDP tries)", s)
	}
}

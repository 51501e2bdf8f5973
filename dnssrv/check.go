package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Status is the verdict on one published record.
type Status string

// The verdicts of Check.
const (
	OK      Status = "ok"      // the resolver returns exactly this data
	Missing Status = "missing" // NXDOMAIN or no record of this type
	Wrong   Status = "wrong"   // records of this type exist with other data
	Failed  Status = "error"   // the resolver did not answer usefully
)

// Result is the verdict on one expected record.
type Result struct {
	Record Record
	Status Status
	// Got is what the resolver returned for the name and type (Wrong), or
	// why the query failed (Failed).
	Got []string
}

// DefaultResolver returns the first name server of /etc/resolv.conf as
// host:port (the system resolver, as mpop and msmtp use it).
func DefaultResolver() (string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return "", fmt.Errorf("reading /etc/resolv.conf: %w", err)
	}
	if len(cc.Servers) == 0 {
		return "", errors.New("no nameserver in /etc/resolv.conf")
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

// ResolverAddr normalises a --resolver value: an IP or host name, with an
// optional port (default 53).
func ResolverAddr(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "53")
}

// Check asks the resolver at server (host:port) for every name and type
// in want, with recursion desired, and compares the answers' data with
// want (TTLs are not compared: resolvers count them down).
func Check(ctx context.Context, server string, want []Record) []Result {
	c := &dns.Client{Timeout: 3 * time.Second}
	type key struct{ name, typ string }
	cache := map[key][]Result{}
	var out []Result
	for _, rec := range want {
		k := key{strings.ToLower(rec.Name), rec.Type}
		if _, done := cache[k]; !done {
			cache[k] = checkSet(ctx, c, server, rec.Name, rec.Type, want)
		}
		for _, r := range cache[k] {
			if r.Record == rec {
				out = append(out, r)
			}
		}
	}
	return out
}

// checkSet queries one name and type and judges every wanted record of it.
func checkSet(ctx context.Context, c *dns.Client, server, name, typ string, want []Record) []Result {
	var mine []Record
	for _, r := range want {
		if strings.EqualFold(r.Name, name) && r.Type == typ {
			mine = append(mine, r)
		}
	}
	verdict := func(s Status, got []string) []Result {
		var out []Result
		for _, r := range mine {
			out = append(out, Result{Record: r, Status: s, Got: got})
		}
		return out
	}
	got, err := query(ctx, c, server, name, dns.StringToType[typ])
	if errors.Is(err, errNoRecords) {
		return verdict(Missing, nil)
	}
	if err != nil {
		return verdict(Failed, []string{err.Error()})
	}
	var out []Result
	for _, r := range mine {
		s := Wrong
		if slices.Contains(got, normalise(r.Data)) {
			s = OK
		}
		out = append(out, Result{Record: r, Status: s, Got: got})
	}
	// Extra records of the same set are wrong too (e.g. a second, stale
	// _pop3s._tcp target that clients would pick by weight); a backup MX
	// next to ours is the organization's business.
	if len(got) > len(mine) && typ != "MX" {
		for i := range out {
			out[i].Status = Wrong
		}
	}
	return out
}

var errNoRecords = errors.New("no records")

// udpTimeout is how long query waits for a UDP answer before asking over
// TCP; the TCP query gets the client's whole timeout.
const udpTimeout = time.Second

// query returns the normalised RDATA of the name's records of type t.
func query(ctx context.Context, c *dns.Client, server, name string, t uint16) ([]string, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), t)
	q.RecursionDesired = true
	q.SetEdns0(1232, false)
	uc := *c
	uc.Timeout = udpTimeout
	r, _, err := uc.ExchangeContext(ctx, q, server)
	// Over TCP when the answer was truncated, and when UDP got no answer:
	// a server with response rate limiting (ours, BIND's, NSD's) drops
	// some UDP answers, and never limits TCP.
	var ne net.Error
	if (err == nil && r.Truncated) || (errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil) {
		tc := *c
		tc.Net = "tcp"
		r, _, err = tc.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, fmt.Errorf("asking %s: %w", server, err)
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, errNoRecords
	default:
		return nil, fmt.Errorf("%s answered %s", server, dns.RcodeToString[r.Rcode])
	}
	var got []string
	for _, rr := range r.Answer {
		h := rr.Header()
		if h.Rrtype == t && strings.EqualFold(h.Name, dns.Fqdn(name)) {
			got = append(got, normalise(strings.TrimPrefix(rr.String(), h.String())))
		}
	}
	if len(got) == 0 {
		return nil, errNoRecords
	}
	slices.Sort(got)
	return got, nil
}

// normalise makes RDATA comparable: names are case-insensitive.
func normalise(data string) string { return strings.ToLower(data) }

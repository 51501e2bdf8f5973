package dnssrv

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/profiles"
)

// Options are the facts the zones are built from (config `dns.*` and the
// provider section, through profiles).
type Options struct {
	// Profile builds a domain's Profile for its kind, without a lookup:
	// profiles.Resolver.ProfileFor, the same function the HTTP formats'
	// Profiles come from.
	Profile func(domain string, k profiles.Kind) profiles.Profile
	// PersonalDomain is the provider zone (A-labels, lower case).
	PersonalDomain string
	// Nameservers are published as NS at every apex; the first is the SOA
	// MNAME.
	Nameservers []string
	// Addresses are the A/AAAA records of service host names. A name is
	// served in the zone it falls in (the longest matching apex); names
	// outside every zone are not served.
	Addresses map[string][]netip.Addr
	// TTL of every record.
	TTL uint32
	// MXHost, when set, is published as "MX 10 MXHost" at every apex
	// (config dns.mx_host, only when the bundled MX listener is enabled).
	MXHost string
	// Hostmaster is the SOA RNAME as a domain name; default
	// hostmaster.<PersonalDomain>.
	Hostmaster string
	// MaxUDPSize caps the EDNS(0) UDP payload we answer with; default 1232
	// (DNS Flag Day 2020: no IP fragmentation).
	MaxUDPSize uint16
	// Logger receives zone rebuilds, handler panics and, at most once a
	// minute, a summary of rate-limited answers.
	Logger *slog.Logger
	// RRL is response rate limiting of UDP answers, on by default (see
	// RRL for the defaults; ResponsesPerSecond < 0 turns it off).
	RRL RRL
}

func (o *Options) defaults() error {
	if o.Profile == nil {
		return fmt.Errorf("dnssrv: Options.Profile is required")
	}
	if o.PersonalDomain == "" {
		return fmt.Errorf("dnssrv: Options.PersonalDomain is required")
	}
	if len(o.Nameservers) == 0 {
		return fmt.Errorf("dnssrv: at least one name server is required")
	}
	if o.TTL == 0 {
		o.TTL = 3600
	}
	if o.Hostmaster == "" {
		o.Hostmaster = "hostmaster." + o.PersonalDomain
	}
	if o.MaxUDPSize < dns.MinMsgSize {
		o.MaxUDPSize = 1232
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o.RRL.defaults()
}

// negativeTTL is the SOA MINIMUM and the TTL of negative answers
// (RFC 2308 §5): short, so a domain added later is seen soon.
func (o *Options) negativeTTL() uint32 { return min(o.TTL, 300) }

// Record is one resource record in zone-file (presentation) form, for
// `skydeskd dns records` and `dns check`.
type Record struct {
	Name string // absolute, with the final dot
	TTL  uint32
	Type string // SRV, CNAME, MX, ...
	Data string // RDATA in presentation form
}

// String returns the record as a zone-file line (RFC 1035 §5.1).
func (r Record) String() string {
	return fmt.Sprintf("%s\t%d\tIN\t%s\t%s", r.Name, r.TTL, r.Type, r.Data)
}

func fromRR(rr dns.RR) Record {
	h := rr.Header()
	return Record{
		Name: h.Name, TTL: h.Ttl, Type: dns.TypeToString[h.Rrtype],
		Data: strings.TrimPrefix(rr.String(), h.String()),
	}
}

// Publish lists what an organization must publish at its own DNS host for
// every client to configure itself for profile p: the RFC 6186/8314 SRV
// set and _autodiscover._tcp, the autoconfig./autodiscover. CNAMEs
// Thunderbird and Outlook look up, and the MX when o.MXHost is set. It is
// exactly what the server itself answers for a domain delegated to it.
func Publish(p profiles.Profile, o Options) []Record {
	if o.TTL == 0 {
		o.TTL = 3600
	}
	var out []Record
	for _, rr := range publishRRs(p, &o) {
		out = append(out, fromRR(rr))
	}
	return out
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func srv(name string, ttl uint32, prio, weight uint16, port int, target string) *dns.SRV {
	return &dns.SRV{Hdr: hdr(name, dns.TypeSRV, ttl), Priority: prio, Weight: weight, Port: uint16(port), Target: fqdn(target)}
}

// publishRRs renders Profile p as records (see Publish). RFC 6186 §3.4:
// target "." with port 0 says "decidedly not available", so clients don't
// guess IMAP or plain-text POP3 ports.
func publishRRs(p profiles.Profile, o *Options) []dns.RR {
	d, ttl := p.Domain, o.TTL
	var rrs []dns.RR
	for _, in := range p.Incoming {
		if in.Protocol == profiles.POP3 && in.Security == profiles.ImplicitTLS {
			rrs = append(rrs, srv("_pop3s._tcp."+d, ttl, 0, 1, in.Port, in.Host))
		}
	}
	// RFC 8314 §5.1 prefers implicit TLS; the issue asks for priority 0 on
	// both, and msmtp tries _submissions first anyway.
	for _, out := range p.Outgoing {
		if out.Protocol != profiles.SMTP {
			continue
		}
		switch out.Security {
		case profiles.ImplicitTLS:
			rrs = append(rrs, srv("_submissions._tcp."+d, ttl, 0, 1, out.Port, out.Host))
		case profiles.STARTTLS:
			rrs = append(rrs, srv("_submission._tcp."+d, ttl, 0, 1, out.Port, out.Host))
		}
	}
	for _, label := range []string{"_pop3._tcp.", "_imap._tcp.", "_imaps._tcp."} {
		rrs = append(rrs, srv(label+d, ttl, 0, 0, 0, "."))
	}
	if h := p.Provider.AutodiscoverHost; h != "" {
		rrs = append(rrs, srv("_autodiscover._tcp."+d, ttl, 0, 1, 443, h))
	}
	// Thunderbird fetches http(s)://autoconfig.<domain>/mail/config-v1.1.xml,
	// Outlook https://autodiscover.<domain>/autodiscover/autodiscover.xml.
	// No CNAME where the name is the target itself (the provider zone).
	for _, c := range [][2]string{{"autoconfig.", p.Provider.AutoconfigHost}, {"autodiscover.", p.Provider.AutodiscoverHost}} {
		name := c[0] + d
		if c[1] == "" || strings.EqualFold(name, c[1]) {
			continue
		}
		if _, hasAddr := o.Addresses[name]; hasAddr {
			continue // a CNAME cannot share its name with A/AAAA (RFC 1034 §3.6.2)
		}
		rrs = append(rrs, &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME, ttl), Target: fqdn(c[1])})
	}
	if o.MXHost != "" {
		rrs = append(rrs, &dns.MX{Hdr: hdr(d, dns.TypeMX, ttl), Preference: 10, Mx: fqdn(o.MXHost)})
	}
	return rrs
}

// addressRRs returns the A/AAAA records of a host.
func addressRRs(name string, addrs []netip.Addr, ttl uint32) []dns.RR {
	var rrs []dns.RR
	for _, a := range addrs {
		a = a.Unmap()
		if a.Is4() {
			rrs = append(rrs, &dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: a.AsSlice()})
		} else {
			rrs = append(rrs, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: a.AsSlice()})
		}
	}
	return rrs
}

package dnssrv

import (
	"sort"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/profiles"
)

// node is one owner name. An empty rrsets map is an empty non-terminal.
type node struct {
	rrsets map[uint16][]dns.RR
	// extra holds, per type, the A/AAAA of SRV/MX/NS/CNAME targets we know
	// (the additional section), computed once per rebuild.
	extra map[uint16][]dns.RR
	cname *dns.CNAME
}

// zone is one apex and the names below it.
type zone struct {
	apex  string // lower case, absolute
	soa   *dns.SOA
	nodes map[string]*node
}

// zones is an immutable set, swapped atomically on rebuild.
type zones struct {
	serial uint32
	byApex map[string]*zone
	apexes []string // sorted, for logs and tests
	cache  wireCache
}

// find returns the zone holding name (lower case, absolute): the longest
// apex that name equals or falls under.
func (zs *zones) find(name string) *zone {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if z := zs.byApex[name[off:]]; z != nil {
			return z
		}
	}
	return zs.byApex["."]
}

func (z *zone) add(rr dns.RR) {
	name := rr.Header().Name
	n := z.node(name)
	if c, ok := rr.(*dns.CNAME); ok {
		n.cname = c
		return
	}
	t := rr.Header().Rrtype
	n.rrsets[t] = append(n.rrsets[t], rr)
}

// node returns the node of name, creating it and any empty non-terminals
// between it and the apex (RFC 8020: they exist, so NODATA, not NXDOMAIN).
func (z *zone) node(name string) *node {
	n := z.nodes[name]
	if n != nil {
		return n
	}
	n = &node{rrsets: map[uint16][]dns.RR{}, extra: map[uint16][]dns.RR{}}
	z.nodes[name] = n
	if name != z.apex {
		if off, end := dns.NextLabel(name, 0); !end {
			z.node(name[off:])
		}
	}
	return n
}

// buildZones renders every zone from the options and the hosted domains.
func buildZones(o *Options, serial uint32, hosted []string) *zones {
	zs := &zones{serial: serial, byApex: map[string]*zone{}}
	kinds := map[string]profiles.Kind{o.PersonalDomain: profiles.Personal}
	for _, d := range hosted {
		if d != o.PersonalDomain {
			kinds[d] = profiles.Organization
		}
	}
	for d, k := range kinds {
		apex := fqdn(d)
		z := &zone{apex: apex, nodes: map[string]*node{}}
		z.soa = &dns.SOA{
			Hdr: hdr(apex, dns.TypeSOA, o.TTL), Ns: fqdn(o.Nameservers[0]), Mbox: fqdn(o.Hostmaster),
			Serial: serial, Refresh: 3600, Retry: 900, Expire: 1209600, Minttl: o.negativeTTL(),
		}
		z.add(z.soa)
		for _, ns := range o.Nameservers {
			z.add(&dns.NS{Hdr: hdr(apex, dns.TypeNS, o.TTL), Ns: fqdn(ns)})
		}
		for _, rr := range publishRRs(o.Profile(d, k), o) {
			z.add(rr)
		}
		zs.byApex[apex] = z
		zs.apexes = append(zs.apexes, apex)
	}
	sort.Strings(zs.apexes)
	addrs := map[string][]dns.RR{}
	for host, as := range o.Addresses {
		name := fqdn(host)
		z := zs.find(name)
		rrs := addressRRs(name, as, o.TTL)
		addrs[name] = rrs
		if z == nil {
			o.Logger.Debug("dns: address outside every zone, not served", "host", name)
			continue
		}
		if n := z.nodes[name]; n != nil && n.cname != nil {
			o.Logger.Warn("dns: address ignored, the name is a CNAME", "host", name)
			continue
		}
		for _, rr := range rrs {
			z.add(rr)
		}
	}
	// The additional section: addresses of the targets we know, so a
	// client needs no second query (RFC 2782 "Usage rules", RFC 1035 §3.3.9).
	missing := map[string]bool{}
	for _, z := range zs.byApex {
		for _, n := range z.nodes {
			for t, set := range n.rrsets {
				for _, rr := range set {
					var target string
					switch r := rr.(type) {
					case *dns.SRV:
						target = r.Target
					case *dns.MX:
						target = r.Mx
					case *dns.NS:
						target = r.Ns
					}
					n.extra[t] = append(n.extra[t], addrs[target]...)
					if target != "" && target != "." && addrs[target] == nil && zs.find(target) != nil {
						missing[target] = true
					}
				}
			}
			if n.cname != nil && zs.find(n.cname.Target) != nil && zs.find(n.cname.Target).nodes[n.cname.Target] == nil {
				missing[n.cname.Target] = true
			}
		}
	}
	// A target inside our own zones without addresses is NXDOMAIN from us:
	// clients told to use it cannot connect. Say so at every rebuild.
	for _, name := range sortedKeys(missing) {
		o.Logger.Warn("dns: host in a served zone has no address (add it to dns.addresses)", "host", name)
	}
	return zs
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

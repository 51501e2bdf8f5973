package dnssrv

import (
	"slices"
	"sort"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/profiles"
)

// node is one owner name; one without RRsets or CNAME is an empty
// non-terminal. A node has one to three RRsets, so they are a slice
// searched in order, not a map: with 10,000 zones of a dozen nodes each,
// two small maps per node were most of the server's memory.
type node struct {
	sets  []rrset
	cname *dns.CNAME
}

// rrset is the records of one type at a node (never none).
type rrset struct {
	rrs []dns.RR
	// extra holds the A/AAAA of the SRV/MX/NS targets we know (the
	// additional section), computed when the zone is built.
	extra []dns.RR
	t     uint16
}

// rrset returns the RRset of type t at n, or nil.
func (n *node) rrset(t uint16) *rrset {
	for i := range n.sets {
		if n.sets[i].t == t {
			return &n.sets[i]
		}
	}
	return nil
}

// zone is one apex and the names below it. It is immutable once built and
// is kept from one zone generation to the next while what it is built from
// stays the same: the options (fixed for the Handler's life), the domain
// and the service hosts (Options.Addresses) that fall in it. The SOA
// serial is the one thing that changes with every domain list, so it is
// not part of the zone: the SOA here has serial 0, and answers take
// zones.serial (withSerial, negativeSOA). So a domain added or removed
// builds one zone, not all of them.
type zone struct {
	apex   string // lower case, absolute
	domain string // as the snapshot named it, for Options.Profile
	soa    *dns.SOA
	nodes  map[string]*node
	// hosts are the Options.Addresses hosts (absolute, lower case, sorted)
	// whose longest apex is this one: the zone's input beyond its domain.
	hosts []string
	// ignored lists the hosts not served because the name is a CNAME here.
	ignored []string
	// targets are the zone's record targets without an address, for the
	// warnings every rebuild repeats.
	targets []target
}

// target is a name an SRV, MX or NS record (cname false) or a CNAME
// (cname true) points to, with no Options.Addresses entry. Inside our
// zones, the first is an address clients cannot find; the second is a
// dangling CNAME unless the name has other records.
type target struct {
	name  string
	cname bool
}

// zones is an immutable set, swapped atomically on rebuild.
type zones struct {
	serial uint32
	byApex map[string]*zone
	// withHosts are the zones with service hosts: the ones a rebuild looks
	// at although their domain did not change, as an apex added or removed
	// can move hosts between zones.
	withHosts []*zone
	// targets counts the zones with each target (zone.targets).
	targets map[target]int
	cache   wireCache
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

// apexOf is find while zones are being built, some not yet: the apex
// name falls under, and whether there is one.
func (zs *zones) apexOf(name string) (string, bool) {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if _, ok := zs.byApex[name[off:]]; ok {
			return name[off:], true
		}
	}
	_, ok := zs.byApex["."]
	return ".", ok
}

// apexes lists the apexes served, sorted.
func (zs *zones) apexes() []string {
	out := make([]string, 0, len(zs.byApex))
	for apex := range zs.byApex {
		out = append(out, apex)
	}
	sort.Strings(out)
	return out
}

func (z *zone) add(rr dns.RR) {
	name := rr.Header().Name
	n := z.node(name)
	if c, ok := rr.(*dns.CNAME); ok {
		n.cname = c
		return
	}
	t := rr.Header().Rrtype
	if s := n.rrset(t); s != nil {
		s.rrs = append(s.rrs, rr)
		return
	}
	n.sets = append(n.sets, rrset{rrs: []dns.RR{rr}, t: t})
}

// node returns the node of name, creating it and any empty non-terminals
// between it and the apex (RFC 8020: they exist, so NODATA, not NXDOMAIN).
func (z *zone) node(name string) *node {
	n := z.nodes[name]
	if n != nil {
		return n
	}
	n = &node{}
	z.nodes[name] = n
	if name != z.apex {
		if off, end := dns.NextLabel(name, 0); !end {
			z.node(name[off:])
		}
	}
	return n
}

// addrIndex is Options.Addresses as records, built once per Handler.
type addrIndex struct {
	rrs   map[string][]dns.RR // by host, absolute and lower case
	hosts []string            // the keys, sorted
}

func newAddrIndex(o *Options) *addrIndex {
	a := &addrIndex{rrs: map[string][]dns.RR{}}
	for host, as := range o.Addresses {
		name := fqdn(host)
		a.rrs[name] = addressRRs(name, as, o.TTL)
		a.hosts = append(a.hosts, name)
	}
	sort.Strings(a.hosts)
	return a
}

// buildZones renders the zones of the options and the hosted domains,
// reusing the zones of prev (nil: none) whose inputs did not change. It
// returns how many zones it built. The work beyond building those is a
// map insert per domain, and a map lookup per zone of prev when some
// zone of prev is gone.
func buildZones(o *Options, a *addrIndex, prev *zones, serial uint32, hosted []string) (*zones, int) {
	zs := &zones{serial: serial, byApex: make(map[string]*zone, len(hosted)+1), targets: map[target]int{}}
	if prev == nil {
		prev = &zones{}
	}
	// The apexes, each with its zone from prev or nil until built.
	var build []*zone // zones to build, apex and domain set
	var kb [256]byte
	add := func(d string) {
		key := appendFqdn(kb[:0], d)
		if _, dup := zs.byApex[string(key)]; dup {
			return // the provider zone, hosted too: it stays personal
		}
		if z := prev.byApex[string(key)]; z != nil {
			zs.byApex[z.apex] = z
			return
		}
		z := &zone{apex: fqdn(d), domain: d}
		zs.byApex[z.apex] = nil
		build = append(build, z)
	}
	add(o.PersonalDomain)
	for _, d := range hosted {
		add(d)
	}
	// Each service host is served in the zone of the longest apex it falls
	// under; a zone kept whose hosts changed (an apex added below or above
	// one of them, or removed) is built again.
	hosts := map[string][]string{}
	for _, h := range a.hosts {
		if apex, ok := zs.apexOf(h); ok {
			hosts[apex] = append(hosts[apex], h)
		} else {
			o.Logger.Debug("dns: address outside every zone, not served", "host", h)
		}
	}
	rebuild := func(z *zone) {
		if zs.byApex[z.apex] == z && !slices.Equal(z.hosts, hosts[z.apex]) {
			zs.byApex[z.apex] = nil
			build = append(build, &zone{apex: z.apex, domain: z.domain})
		}
	}
	for apex := range hosts {
		if z := zs.byApex[apex]; z != nil {
			rebuild(z)
		}
	}
	for _, z := range prev.withHosts {
		rebuild(z)
	}
	for _, z := range build {
		z.build(o, a, hosts[z.apex])
		zs.byApex[z.apex] = z
	}
	for _, z := range slices.Concat(prev.withHosts, build) {
		if zs.byApex[z.apex] == z && len(z.hosts) > 0 {
			zs.withHosts = append(zs.withHosts, z)
		}
	}
	zs.countTargets(prev, build)
	zs.warn(o)
	return zs, len(build)
}

// countTargets sets zs.targets: prev's counts, less those of the zones of
// prev gone, plus those of the zones built.
func (zs *zones) countTargets(prev *zones, build []*zone) {
	count := func(z *zone, n int) {
		for _, t := range z.targets {
			if zs.targets[t] += n; zs.targets[t] == 0 {
				delete(zs.targets, t)
			}
		}
	}
	for t, n := range prev.targets {
		zs.targets[t] = n
	}
	if kept := len(zs.byApex) - len(build); kept < len(prev.byApex) {
		for apex, z := range prev.byApex {
			if zs.byApex[apex] != z {
				count(z, -1)
			}
		}
	}
	for _, z := range build {
		count(z, 1)
	}
}

// build renders zone z (apex and domain set) with the service hosts that
// fall in it.
func (z *zone) build(o *Options, a *addrIndex, hosts []string) {
	k := profiles.Organization
	if z.domain == o.PersonalDomain {
		k = profiles.Personal
	}
	z.nodes = map[string]*node{}
	z.hosts = hosts
	z.soa = &dns.SOA{
		Hdr: hdr(z.apex, dns.TypeSOA, o.TTL), Ns: fqdn(o.Nameservers[0]), Mbox: fqdn(o.Hostmaster),
		Refresh: 3600, Retry: 900, Expire: 1209600, Minttl: o.negativeTTL(),
	}
	z.add(z.soa)
	for _, ns := range o.Nameservers {
		z.add(&dns.NS{Hdr: hdr(z.apex, dns.TypeNS, o.TTL), Ns: fqdn(ns)})
	}
	for _, rr := range publishRRs(o.Profile(z.domain, k), o) {
		z.add(rr)
	}
	for _, h := range hosts {
		if n := z.nodes[h]; n != nil && n.cname != nil {
			z.ignored = append(z.ignored, h)
			continue
		}
		for _, rr := range a.rrs[h] {
			z.add(rr)
		}
	}
	// The additional section: addresses of the targets we know, so a
	// client needs no second query (RFC 2782 "Usage rules", RFC 1035 §3.3.9).
	for _, n := range z.nodes {
		for i := range n.sets {
			set := &n.sets[i]
			for _, rr := range set.rrs {
				var name string
				switch r := rr.(type) {
				case *dns.SRV:
					name = r.Target
				case *dns.MX:
					name = r.Mx
				case *dns.NS:
					name = r.Ns
				}
				set.extra = appendShared(set.extra, a.rrs[name])
				if name != "" && name != "." && a.rrs[name] == nil {
					z.addTarget(target{name: name})
				}
			}
		}
		if n.cname != nil && a.rrs[n.cname.Target] == nil {
			z.addTarget(target{name: n.cname.Target, cname: true})
		}
	}
}

// appendShared is append(s, add...), except that an empty s takes add
// itself: extras are read only, and most RRsets have a single target
// whose addresses every zone can share.
func appendShared(s, add []dns.RR) []dns.RR {
	if len(s) == 0 {
		return add
	}
	return append(s[:len(s):len(s)], add...)
}

func (z *zone) addTarget(t target) {
	if !slices.Contains(z.targets, t) {
		z.targets = append(z.targets, t)
	}
}

// warn logs, at every rebuild, the service hosts not served because the
// name is a CNAME, and the targets inside our own zones without an
// address: those are NXDOMAIN from us, so clients told to use them cannot
// connect.
func (zs *zones) warn(o *Options) {
	var ignored []string
	for _, z := range zs.withHosts {
		ignored = append(ignored, z.ignored...)
	}
	slices.Sort(ignored)
	for _, h := range ignored {
		o.Logger.Warn("dns: address ignored, the name is a CNAME", "host", h)
	}
	missing := map[string]bool{}
	for t := range zs.targets {
		if z := zs.find(t.name); z != nil && (!t.cname || z.nodes[t.name] == nil) {
			missing[t.name] = true
		}
	}
	for _, name := range sortedKeys(missing) {
		o.Logger.Warn("dns: host in a served zone has no address (add it to dns.addresses)", "host", name)
	}
}

// appendFqdn appends name in lower case and absolute, as fqdn returns it,
// without allocating.
func appendFqdn(b []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	if len(b) == 0 || b[len(b)-1] != '.' {
		b = append(b, '.')
	}
	return b
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

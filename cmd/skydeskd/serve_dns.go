package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
)

// dnsOptions are the zone facts of a configuration (config dns.* and the
// provider section through profiles).
func dnsOptions(cfg *config.Config, r *profiles.Resolver) dnssrv.Options {
	o := dnssrv.Options{
		Profile:        r.ProfileFor,
		PersonalDomain: r.Settings().PersonalDomain,
		Nameservers:    cfg.DNS.Nameservers,
		Addresses:      map[string][]netip.Addr{},
		TTL:            cfg.DNS.TTL,
		RRL:            rrlOptions(cfg.DNS.RRL),
	}
	// The MX is published only when the bundled MX listener runs.
	if cfg.Listen.MX != "" {
		o.MXHost = cfg.DNS.MXHost
	}
	for host, as := range cfg.DNS.Addresses {
		for _, s := range as {
			if a, err := netip.ParseAddr(s); err == nil { // Validate refused the rest
				o.Addresses[host] = append(o.Addresses[host], a)
			}
		}
	}
	return o
}

// rrlOptions maps config dns.rrl onto dnssrv's options, where zero means
// "default" and off is negative: config's 0 (off, drop all) becomes -1.
func rrlOptions(c config.RRL) dnssrv.RRL {
	r := dnssrv.RRL{ResponsesPerSecond: c.ResponsesPerSecond, Slip: c.Slip,
		IPv4PrefixLen: c.IPv4PrefixLength, IPv6PrefixLen: c.IPv6PrefixLength}
	if r.ResponsesPerSecond == 0 {
		r.ResponsesPerSecond = -1
	}
	if r.Slip == 0 {
		r.Slip = -1
	}
	return r
}

// dnsComponents starts the authoritative DNS server on UDP and TCP at
// listen.dns (the same port for both).
func (a *app) dnsComponents() ([]component, error) {
	addr := a.cfg.Listen.DNS
	if addr == "" {
		return nil, nil
	}
	o := dnsOptions(a.cfg, a.resolver)
	o.Logger = a.log.With("service", "dns")
	if a.dev {
		// --dev: every name we hand out is on loopback, the name servers too.
		for _, ns := range o.Nameservers {
			if _, ok := o.Addresses[ns]; !ok {
				o.Addresses[ns] = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
			}
		}
	}
	h, err := dnssrv.NewHandler(o, func() (uint32, []string) {
		d := a.store.Domains()
		return d.Serial, d.List()
	})
	if err != nil {
		return nil, err
	}
	if err := a.reg.Register(dnsQueries{h}); err != nil {
		return nil, fmt.Errorf("registering dns metrics: %w", err)
	}
	// A domain added or removed (here or by `skydeskd domain` in another
	// process, seen by WatchDomains) is answered or refused at once.
	a.store.OnDomainsChanged(h.Reload)

	// One UDP socket per CPU (SO_REUSEPORT) and TCP, on one port.
	pcs, l, err := dnssrv.Listen(addr, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	srv := dnssrv.NewServer(h, pcs, l)
	return []component{
		{name: "dns-udp", addr: pcs[0].LocalAddr(), serve: srv.ServeUDP, shutdown: srv.Shutdown},
		{name: "dns-tcp", addr: l.Addr(), serve: srv.ServeTCP, shutdown: func(context.Context) error { return nil }},
	}, nil
}

// dnsQueries exports the handler's query counters at scrape time, so the
// query path only adds to an atomic counter.
type dnsQueries struct{ h *dnssrv.Handler }

var dnsQueriesDesc = prometheus.NewDesc("skydeskd_dns_queries_total",
	"DNS queries by query type and response code.", []string{"qtype", "rcode"}, nil)

var dnsDroppedDesc = prometheus.NewDesc("skydeskd_dns_dropped_total",
	"DNS packets dropped unanswered (shorter than a header, or responses).", nil, nil)

var dnsRRLDesc = prometheus.NewDesc("skydeskd_dns_rrl_total",
	"UDP answers held back by response rate limiting: dropped, or sent truncated so the client retries over TCP (slip).",
	[]string{"action"}, nil)

func (d dnsQueries) Describe(ch chan<- *prometheus.Desc) {
	ch <- dnsQueriesDesc
	ch <- dnsDroppedDesc
	ch <- dnsRRLDesc
}

func (d dnsQueries) Collect(ch chan<- prometheus.Metric) {
	d.h.QueryCounts(func(qtype, rcode string, n uint64) {
		ch <- prometheus.MustNewConstMetric(dnsQueriesDesc, prometheus.CounterValue, float64(n), qtype, rcode)
	})
	ch <- prometheus.MustNewConstMetric(dnsDroppedDesc, prometheus.CounterValue, float64(d.h.Dropped()))
	dropped, slipped := d.h.RateLimited()
	ch <- prometheus.MustNewConstMetric(dnsRRLDesc, prometheus.CounterValue, float64(dropped), "drop")
	ch <- prometheus.MustNewConstMetric(dnsRRLDesc, prometheus.CounterValue, float64(slipped), "slip")
}

// cmdDNS implements `skydeskd dns records DOMAIN` and
// `skydeskd dns check DOMAIN [--resolver ADDR]`.
func cmdDNS(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("dns: want records or check")
	}
	var c common
	switch args[0] {
	case "records":
		fs := newFlags("dns records", &c)
		pos, err := parse(fs, args[1:], "DOMAIN")
		if err != nil {
			return err
		}
		recs, domain, err := c.publishable(ctx, pos[0])
		if err != nil {
			return err
		}
		cfg, err := c.load()
		if err != nil {
			return err
		}
		printRecords(e.stdout, domain, recs, cfg.DNS.Nameservers)
		return nil
	case "check":
		fs := newFlags("dns check", &c)
		resolver := fs.String("resolver", "", "resolver to ask, IP[:PORT] (default: the first nameserver of /etc/resolv.conf)")
		pos, err := parse(fs, args[1:], "DOMAIN")
		if err != nil {
			return err
		}
		recs, domain, err := c.publishable(ctx, pos[0])
		if err != nil {
			return err
		}
		server := *resolver
		if server == "" {
			if server, err = dnssrv.DefaultResolver(); err != nil {
				return err
			}
		} else {
			server = dnssrv.ResolverAddr(server)
		}
		return printCheck(e.stdout, domain, server, dnssrv.Check(ctx, server, recs))
	}
	return usagef("dns: unknown subcommand %q (want records or check)", args[0])
}

// publishable returns the records an organization publishes for domain
// (the personal domain or a hosted one).
func (c *common) publishable(ctx context.Context, domain string) ([]dnssrv.Record, string, error) {
	d, err := profiles.ParseDomain(domain)
	if err != nil {
		return nil, "", err
	}
	cfg, err := c.load()
	if err != nil {
		return nil, "", err
	}
	var recs []dnssrv.Record
	err = c.withStore(ctx, func(s *store.Store) error {
		r := profiles.NewResolver(profileSettings(cfg), s)
		k, err := r.Kind(ctx, d)
		if err != nil {
			return err
		}
		if k == profiles.Unknown {
			return fmt.Errorf("%s is not hosted here (add it with: skydeskd domain add %s): %w", d, d, profiles.ErrUnknownDomain)
		}
		recs = dnssrv.Publish(r.ProfileFor(d, k), dnsOptions(cfg, r))
		return nil
	})
	return recs, d, err
}

func printRecords(w io.Writer, domain string, recs []dnssrv.Record, nameservers []string) {
	fmt.Fprintf(w, "; Publish these records in the zone of %s so mail clients configure\n", domain)
	fmt.Fprintf(w, "; themselves (RFC 6186/8314 SRV, Thunderbird autoconfig, Outlook autodiscover).\n")
	for _, r := range recs {
		fmt.Fprintln(w, r.String())
	}
	fmt.Fprintf(w, "; Or delegate the zone to this service; it then serves only the records above\n")
	fmt.Fprintf(w, "; (and SOA/NS), so do this only for a domain used for nothing else:\n")
	for _, ns := range nameservers {
		fmt.Fprintf(w, ";   %s.\tNS\t%s.\n", domain, strings.TrimSuffix(strings.ToLower(ns), "."))
	}
}

// errDNSCheck makes `dns check` exit 2 when a record is not as published.
var errDNSCheck = errors.New("dns check failed")

func printCheck(w io.Writer, domain, server string, res []dnssrv.Result) error {
	fmt.Fprintf(w, "; %s as seen by %s\n", domain, server)
	bad := 0
	for _, r := range res {
		line := fmt.Sprintf("%-8s %s", r.Status, r.Record)
		if r.Status != dnssrv.OK {
			bad++
			if len(r.Got) > 0 {
				line += fmt.Sprintf("\t; found: %s", joinGot(r.Got))
			}
		}
		fmt.Fprintln(w, line)
	}
	if bad > 0 {
		return fmt.Errorf("%s: %d of %d records not ok: %w", domain, bad, len(res), errDNSCheck)
	}
	fmt.Fprintf(w, "; all %d records ok\n", len(res))
	return nil
}

func joinGot(got []string) string {
	out := ""
	for i, g := range got {
		if i > 0 {
			out += " | "
		}
		out += g
	}
	return out
}

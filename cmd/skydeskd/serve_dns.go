package main

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
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
	srv := dnssrv.NewServer(h, pcs, a.proxied("dns_tcp", l))
	srv.SetTCPLimits(dnssrv.TCPLimits{MaxConnectionsPerNetwork: a.cfg.Limits.DNSTCP.ConnectionsPerNetwork,
		IPv4Prefix: a.cfg.Limits.IPv4Prefix, IPv6Prefix: a.cfg.Limits.IPv6Prefix,
		FirstQueryTimeout: a.cfg.Limits.DNSTCP.FirstQueryTimeoutValue()})
	return []component{
		{name: "dns-udp", addr: pcs[0].LocalAddr(), serve: srv.ServeUDP, shutdown: srv.Shutdown},
		{name: "dns-tcp", addr: l.Addr(), serve: srv.ServeTCP, shutdown: func(context.Context) error { return nil }},
	}, nil
}

// dnsQueries exports the handler's query counters at scrape time, so the
// query path only adds to an atomic counter.
type dnsQueries struct{ h *dnssrv.Handler }

var dnsQueriesDesc = prometheus.NewDesc("skydeskd_dns_queries_total",
	"DNS queries by query type (the types the server knows; any other is \"other\") and response code.", []string{"qtype", "rcode"}, nil)

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

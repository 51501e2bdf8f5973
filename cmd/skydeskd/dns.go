package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
)

// cmdDNS implements `skydeskd dns records DOMAIN` and
// `skydeskd dns check DOMAIN [--resolver ADDR]`.
func cmdDNS(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("dns: want records or check")
	}
	var c common
	var resolver *string
	fs := newFlags("dns "+args[0], &c)
	switch args[0] {
	case "records":
	case "check":
		resolver = fs.String("resolver", "", "resolver to ask, IP[:PORT] (default: the first nameserver of /etc/resolv.conf)")
	default:
		return usagef("dns: unknown subcommand %q (want records or check)", args[0])
	}
	pos, err := parse(fs, args[1:], "DOMAIN")
	if err != nil {
		return err
	}
	recs, domain, err := c.publishable(ctx, pos[0])
	if err != nil {
		return err
	}
	if resolver == nil { // records
		cfg, err := c.load()
		if err != nil {
			return err
		}
		printRecords(e.stdout, domain, recs, cfg.DNS.Nameservers)
		return nil
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
	err = c.withStore(ctx, func(s storeDriver) error {
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

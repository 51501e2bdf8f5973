package certs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Checker is the DNS pre-check run before a name is ordered: the name must
// already point at us, so an order cannot fail validation (and burn the
// CA's failed-validation limit, 5 per name and hour at Let's Encrypt)
// because an organization has not yet published its records.
type Checker struct {
	resolver *net.Resolver
	via      string // for errors: Go names /etc/resolv.conf's server even when Dial goes elsewhere
	addrs    map[netip.Addr]bool
	hosts    map[string]bool
}

// NewChecker accepts a name whose addresses are all in addrs, or is a CNAME to
// one of hosts (our service host names). resolver is the host:port of the
// DNS resolver to ask; "" means the system's.
func NewChecker(resolver string, addrs []netip.Addr, hosts []string) *Checker {
	c := &Checker{resolver: net.DefaultResolver, via: "system resolver", addrs: map[netip.Addr]bool{}, hosts: map[string]bool{}}
	if resolver != "" {
		c.via = resolver
		var d net.Dialer
		c.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, resolver)
		}}
	}
	for _, a := range addrs {
		c.addrs[a.Unmap()] = true
	}
	for _, h := range hosts {
		c.hosts[canonical(h)] = true
	}
	return c
}

// ErrNotPointed is wrapped by Check's error when the name resolves, but
// not to us.
var ErrNotPointed = errors.New("does not point at this service")

// checkTimeout bounds one pre-check.
const checkTimeout = 10 * time.Second

// Check reports nil when name points at us.
func (c *Checker) Check(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	fqdn := canonical(name) + "." // absolute: no search domains
	// A CNAME to one of our names is accepted even before our own A
	// records resolve everywhere: the organization has delegated the name.
	if cname, err := c.resolver.LookupCNAME(ctx, fqdn); err == nil {
		if cn := canonical(cname); cn != canonical(name) && c.hosts[cn] {
			return nil
		}
	}
	ips, err := c.resolver.LookupNetIP(ctx, "ip", fqdn)
	if err != nil {
		return fmt.Errorf("dns pre-check %s (via %s): %w", name, c.via, err)
	}
	// Every address must be ours: the CA validates at one of them, and a
	// stale record elsewhere would fail the validation.
	for _, ip := range ips {
		if !c.addrs[ip.Unmap()] {
			return fmt.Errorf("dns pre-check %s: resolves to %v, not only to this service: %w", name, ips, ErrNotPointed)
		}
	}
	return nil
}

func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

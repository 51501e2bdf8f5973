package config

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ProxyProtocol turns on the PROXY protocol (HAProxy's
// doc/proxy-protocol.txt, versions 1 and 2, told apart by their first
// octets) on TCP listeners behind a load balancer, so that connection
// caps, login throttles and logs see each client's address rather than
// the balancer's. Off unless Listeners names some.
//
// On such a listener a connection from a Trusted network MUST start with
// a PROXY header, or it is closed (a balancer's LOCAL header, its health
// check, keeps the balancer's address); a connection from anywhere else
// is served as a direct client, and a header it sends is read as
// protocol data, never as an address.
type ProxyProtocol struct {
	// Listeners are the listen keys to read headers on: pop3s, pop3,
	// smtps, submission, mx, http, https, dns_tcp.
	Listeners []string `yaml:"listeners"`
	// Trusted are the balancers' networks (CIDR, or one address).
	Trusted []string `yaml:"trusted"`
	// HeaderTimeout bounds the wait for a trusted connection's header
	// (Go duration; empty: 5s).
	HeaderTimeout string `yaml:"header_timeout"`
}

// ProxyListeners are the listener names ProxyProtocol.Listeners accepts.
var ProxyListeners = []string{"pop3s", "pop3", "smtps", "submission", "mx", "http", "https", "dns_tcp"}

// On reports whether listener (one of ProxyListeners) reads PROXY headers.
func (p ProxyProtocol) On(listener string) bool { return slices.Contains(p.Listeners, listener) }

// TrustedPrefixes returns Trusted parsed (Validate has checked them).
func (p ProxyProtocol) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.Trusted {
		if pr, err := parseTrusted(s); err == nil {
			out = append(out, pr)
		}
	}
	return out
}

// HeaderTimeoutValue returns HeaderTimeout parsed, 5s when empty.
func (p ProxyProtocol) HeaderTimeoutValue() time.Duration {
	if d, err := time.ParseDuration(p.HeaderTimeout); err == nil && d > 0 {
		return d
	}
	return 5 * time.Second
}

func parseTrusted(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("IPv4-mapped prefix; write the IPv4 network")
	}
	return p.Masked(), nil
}

// validateProxy refuses unknown or disabled listener names, unparsable
// or catch-all trusted networks, and a section that is half set.
func (c *Config) validateProxy() error {
	p := c.ProxyProtocol
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: "proxy_protocol." + key, Reason: fmt.Sprintf(format, a...)})
	}
	l := c.Listen
	addr := map[string]string{"pop3s": l.POP3S, "pop3": l.POP3, "smtps": l.SMTPS, "submission": l.Submission,
		"mx": l.MX, "http": l.HTTP, "https": l.HTTPS, "dns_tcp": l.DNS}
	for i, name := range p.Listeners {
		switch a, known := addr[name]; {
		case !known:
			bad("listeners", "%q is not one of %s", name, strings.Join(ProxyListeners, ", "))
		case slices.Contains(p.Listeners[:i], name):
			bad("listeners", "%q listed twice", name)
		case a == "":
			bad("listeners", "%q is off (empty listen value)", name)
		}
	}
	for _, s := range p.Trusted {
		pr, err := parseTrusted(s)
		switch {
		case err != nil:
			bad("trusted", "%q is not a network such as 10.0.0.0/24 or an address: %v", s, err)
		case pr.Bits() == 0:
			bad("trusted", "%q would let any client name its own address", s)
		}
	}
	if len(p.Listeners) > 0 && len(p.Trusted) == 0 {
		bad("trusted", "must name the load balancers' networks when listeners are set")
	}
	if len(p.Listeners) == 0 && len(p.Trusted) > 0 {
		bad("listeners", "must name the listeners behind the balancer when trusted is set")
	}
	if p.HeaderTimeout != "" {
		if d, err := time.ParseDuration(p.HeaderTimeout); err != nil || d <= 0 {
			bad("header_timeout", "%q is not a positive duration such as 5s", p.HeaderTimeout)
		}
	}
	return errors.Join(errs...)
}

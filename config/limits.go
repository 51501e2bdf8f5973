package config

import (
	"errors"
	"fmt"
	"time"
)

// Limits bound what one client can hold of the listeners (issue 13 §4):
// connections per client network on each listener, and the time a
// connection may spend before it is any use (the TLS handshake on the
// implicit-TLS ports, the POP3 login).
type Limits struct {
	// IPv4Prefix and IPv6Prefix are the network sizes that count as one
	// client: a /32 is one address (an office NAT is one client), a /64
	// is what one IPv6 host usually owns whole.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// TLSHandshakeTimeout bounds the TLS handshake on POP3S, SMTPS and
	// HTTPS (Go duration).
	TLSHandshakeTimeout string     `yaml:"tls_handshake_timeout"`
	POP                 POPLimits  `yaml:"pop"`
	SMTP                ConnLimits `yaml:"smtp"`
	HTTP                ConnLimits `yaml:"http"`
	DNSTCP              ConnLimits `yaml:"dns_tcp"`
}

// ConnLimits are one service's connection limits; each of its listeners
// counts on its own.
type ConnLimits struct {
	// ConnectionsPerNetwork open at once from one client network.
	ConnectionsPerNetwork int `yaml:"connections_per_network"`
}

// POPLimits are ConnLimits plus the time allowed to log in.
type POPLimits struct {
	ConnectionsPerNetwork int `yaml:"connections_per_network"`
	// LoginTimeout bounds the whole AUTHORIZATION state (Go duration).
	LoginTimeout string `yaml:"login_timeout"`
}

// defaultLimits keep one network to a small share of each listener's
// slots: POP 50 of 1000 (an office NAT polls with a client per desk),
// SMTP 20 of 1000 (a sending MTA opens a few at once), HTTP 64 (a
// browser opens 6 per host; a NAT of a few dozen users stays under it),
// DNS TCP 16 of 1024 (resolvers open TCP only for truncated or large
// answers and close it soon).
func defaultLimits() Limits {
	return Limits{
		IPv4Prefix: 32, IPv6Prefix: 64,
		TLSHandshakeTimeout: "10s",
		POP:                 POPLimits{ConnectionsPerNetwork: 50, LoginTimeout: "1m"},
		SMTP:                ConnLimits{ConnectionsPerNetwork: 20},
		HTTP:                ConnLimits{ConnectionsPerNetwork: 64},
		DNSTCP:              ConnLimits{ConnectionsPerNetwork: 16},
	}
}

// validate refuses impossible limits, naming each key.
func (l Limits) validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: "limits." + key, Reason: fmt.Sprintf(format, a...)})
	}
	if l.IPv4Prefix < 8 || l.IPv4Prefix > 32 {
		bad("ipv4_prefix", "%d out of range 8-32", l.IPv4Prefix)
	}
	if l.IPv6Prefix < 32 || l.IPv6Prefix > 128 {
		bad("ipv6_prefix", "%d out of range 32-128", l.IPv6Prefix)
	}
	for key, v := range map[string]string{"tls_handshake_timeout": l.TLSHandshakeTimeout, "pop.login_timeout": l.POP.LoginTimeout} {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			bad(key, "%q is not a positive duration such as 10s", v)
		}
	}
	for key, n := range map[string]int{"pop": l.POP.ConnectionsPerNetwork, "smtp": l.SMTP.ConnectionsPerNetwork,
		"http": l.HTTP.ConnectionsPerNetwork, "dns_tcp": l.DNSTCP.ConnectionsPerNetwork} {
		if n < 1 {
			bad(key+".connections_per_network", "must be at least 1")
		}
	}
	return errors.Join(errs...)
}

// TLSHandshakeTimeoutValue returns TLSHandshakeTimeout parsed (Validate
// has checked it).
func (l Limits) TLSHandshakeTimeoutValue() time.Duration {
	d, _ := time.ParseDuration(l.TLSHandshakeTimeout)
	return d
}

// LoginTimeoutValue returns LoginTimeout parsed (Validate has checked it).
func (p POPLimits) LoginTimeoutValue() time.Duration {
	d, _ := time.ParseDuration(p.LoginTimeout)
	return d
}

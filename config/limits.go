package config

import (
	"errors"
	"fmt"
	"time"
)

// Limits bound what one client can hold of the listeners (issue 13 §4):
// connections per client network on each listener, and the time a
// connection may spend before it is any use (the TLS handshake on the
// implicit-TLS ports, the POP3 login, the first SMTP command, the first
// DNS query over TCP).
type Limits struct {
	// IPv4Prefix and IPv6Prefix are the network sizes that count as one
	// client: a /32 is one address (an office NAT is one client), a /64
	// is what one IPv6 host usually owns whole.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// TLSHandshakeTimeout bounds the TLS handshake on POP3S, SMTPS and
	// HTTPS (Go duration).
	TLSHandshakeTimeout string       `yaml:"tls_handshake_timeout"`
	POP                 POPLimits    `yaml:"pop"`
	SMTP                SMTPLimits   `yaml:"smtp"`
	HTTP                ConnLimits   `yaml:"http"`
	DNSTCP              DNSTCPLimits `yaml:"dns_tcp"`
}

// ConnLimits are one service's connection limits; each of its listeners
// counts on its own.
type ConnLimits struct {
	// ConnectionsPerNetwork open at once from one client network.
	ConnectionsPerNetwork int `yaml:"connections_per_network"`
}

// POPLimits are ConnLimits plus the time allowed to log in.
type POPLimits struct {
	ConnLimits `yaml:",inline"`
	// LoginTimeout bounds the whole AUTHORIZATION state (Go duration).
	LoginTimeout string `yaml:"login_timeout"`
}

// SMTPLimits are ConnLimits plus the wait for a client's first command.
type SMTPLimits struct {
	ConnLimits `yaml:",inline"`
	// FirstCommandTimeout bounds the wait for the first command after the
	// greeting on plaintext connections (25, 587) and after the TLS
	// handshake on 465 (Go duration). RFC 5321 §4.5.3.2.7 asks a server
	// to wait 5 minutes between commands; an open connection that never
	// speaks only holds a slot, so the first one gets less.
	FirstCommandTimeout string `yaml:"first_command_timeout"`
}

// DNSTCPLimits are ConnLimits plus the wait for a TCP client's first
// query (RFC 7766 §6.2.3: servers may close idle connections quickly).
type DNSTCPLimits struct {
	ConnLimits        `yaml:",inline"`
	FirstQueryTimeout string `yaml:"first_query_timeout"`
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
		POP:                 POPLimits{ConnLimits: ConnLimits{ConnectionsPerNetwork: 50}, LoginTimeout: "1m"},
		SMTP:                SMTPLimits{ConnLimits: ConnLimits{ConnectionsPerNetwork: 20}, FirstCommandTimeout: "1m"},
		HTTP:                ConnLimits{ConnectionsPerNetwork: 64},
		DNSTCP:              DNSTCPLimits{ConnLimits: ConnLimits{ConnectionsPerNetwork: 16}, FirstQueryTimeout: "5s"},
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
	for key, v := range map[string]string{"tls_handshake_timeout": l.TLSHandshakeTimeout, "pop.login_timeout": l.POP.LoginTimeout,
		"smtp.first_command_timeout": l.SMTP.FirstCommandTimeout, "dns_tcp.first_query_timeout": l.DNSTCP.FirstQueryTimeout} {
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
func (l Limits) TLSHandshakeTimeoutValue() time.Duration { return parsed(l.TLSHandshakeTimeout) }

// LoginTimeoutValue returns LoginTimeout parsed (Validate has checked it).
func (p POPLimits) LoginTimeoutValue() time.Duration { return parsed(p.LoginTimeout) }

// FirstCommandTimeoutValue returns FirstCommandTimeout parsed.
func (s SMTPLimits) FirstCommandTimeoutValue() time.Duration { return parsed(s.FirstCommandTimeout) }

// FirstQueryTimeoutValue returns FirstQueryTimeout parsed.
func (d DNSTCPLimits) FirstQueryTimeoutValue() time.Duration { return parsed(d.FirstQueryTimeout) }

// parsed parses a duration Validate has checked.
func parsed(v string) time.Duration {
	d, _ := time.ParseDuration(v)
	return d
}

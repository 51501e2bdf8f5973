// Package profiles is the single source of truth of what a mail client is
// told (DESIGN.md §1, §3): the account kind of an address, decided by its
// domain alone, and the Profile of servers every format renders.
//
// Every HTTP format, the DNS SRV answers and the setup page are views of the
// same Profile, so they cannot disagree. The package imports nothing of the
// project's others.
package profiles

import (
	"context"
	"errors"
)

// Kind is the account kind of an address's domain.
type Kind int

// The account kinds of DESIGN.md §1.
const (
	Unknown      Kind = iota // a domain the provider does not host
	Personal                 // the provider's own domain, e.g. @skydesk.jp
	Organization             // a hosted domain, e.g. @example.co.jp
)

func (k Kind) String() string {
	switch k {
	case Personal:
		return "personal"
	case Organization:
		return "organization"
	}
	return "unknown"
}

// Protocol is a mail protocol a Server speaks.
type Protocol string

// Protocols offered.
const (
	POP3 Protocol = "pop3"
	SMTP Protocol = "smtp"
)

// Security is how a connection is protected.
type Security int

// Security modes. Plain text is never offered (RFC 8314 §4.1).
const (
	// ImplicitTLS: the TLS handshake starts on connect (RFC 8314 §3).
	ImplicitTLS Security = iota + 1
	// STARTTLS: a mandatory upgrade before authentication (RFC 3207, RFC 2595).
	STARTTLS
)

func (s Security) String() string {
	switch s {
	case ImplicitTLS:
		return "implicit-tls"
	case STARTTLS:
		return "starttls"
	}
	return "invalid"
}

// Auth is the authentication a Server requires.
type Auth int

// Authentication methods.
const (
	// PasswordCleartext: USER/PASS, SASL PLAIN or LOGIN inside TLS
	// (autoconfig draft: "password-cleartext").
	PasswordCleartext Auth = iota + 1
)

// Server is one endpoint a client connects to.
type Server struct {
	Protocol Protocol
	Host     string // A-labels, lower case
	Port     int
	Security Security
	Auth     Auth
	// AuthRequired is true for every server we advertise (SMTP AUTH is
	// mandatory on submission, RFC 6409 §4.3).
	AuthRequired bool
}

// Provider is the branding and the service host names rendered into every
// document.
type Provider struct {
	ID               string
	Name             string
	ShortName        string
	HelpURL          string
	WebURL           string
	AutoconfigHost   string
	AutodiscoverHost string
}

// Profile is everything a client is told for one domain. The user name is
// always the full address (DESIGN.md §1).
type Profile struct {
	Domain   string // A-labels, lower case
	Kind     Kind
	Provider Provider
	// Incoming has exactly one POP3 server: the kind's host.
	Incoming []Server
	// Outgoing lists submission servers in order of preference: implicit
	// TLS (465) first, then STARTTLS (587), as RFC 8314 §5.1 prefers.
	Outgoing []Server
}

// ErrUnknownDomain is returned for a domain the provider does not host.
// Every format answers it with the same clean "not found".
var ErrUnknownDomain = errors.New("domain not hosted")

// Source looks up the Profile of a domain. It returns ErrUnknownDomain for
// domains that are neither the personal domain nor hosted.
type Source interface {
	Lookup(ctx context.Context, domain string) (Profile, error)
}

package profiles

import (
	"context"
	"fmt"
)

// Settings are the provider facts of DESIGN.md §1, taken from config.
type Settings struct {
	Provider       Provider
	PersonalDomain string // A-labels, lower case
	// PersonalPOPHost serves personal accounts, OrganizationPOPHost
	// organizations' hosted domains.
	PersonalPOPHost     string
	OrganizationPOPHost string
	POPPort             int
	SMTPHost            string
	SMTPImplicitTLSPort int
	SMTPSTARTTLSPort    int
}

// Domains tells whether a domain is hosted for an organization. The store
// implements it; tests use a map.
type Domains interface {
	IsHosted(ctx context.Context, domain string) (bool, error)
}

// DomainSet is a fixed set of hosted domains.
type DomainSet map[string]bool

// IsHosted implements Domains.
func (s DomainSet) IsHosted(_ context.Context, d string) (bool, error) { return s[d], nil }

// Resolver decides an address's kind from its domain alone, never from
// whether the mailbox exists (no user enumeration), and builds its Profile.
// It implements Source.
type Resolver struct {
	settings Settings
	domains  Domains
}

var _ Source = (*Resolver)(nil)

// NewResolver returns a Resolver for the given facts and hosted domains.
func NewResolver(s Settings, d Domains) *Resolver {
	return &Resolver{settings: s, domains: d}
}

// Settings returns the provider facts the resolver renders.
func (r *Resolver) Settings() Settings { return r.settings }

// Kind returns the account kind of an A-label, lower-case domain.
func (r *Resolver) Kind(ctx context.Context, domain string) (Kind, error) {
	return KindOf(ctx, domain, r.settings.PersonalDomain, r.domains)
}

// KindOf is the one kind rule (DESIGN.md §1, §4), shared by the Resolver
// and the store: the personal domain is Personal, a domain hosted decides
// Organization, any other Unknown. The domain is in A-labels, lower case;
// the mailbox's existence never enters (no user enumeration).
func KindOf(ctx context.Context, domain, personal string, hosted Domains) (Kind, error) {
	if domain == personal {
		return Personal, nil
	}
	ok, err := hosted.IsHosted(ctx, domain)
	if err != nil {
		return Unknown, fmt.Errorf("looking up domain: %w", err)
	}
	if ok {
		return Organization, nil
	}
	return Unknown, nil
}

// Lookup returns the Profile of a domain (in any case, U- or A-labels), or
// ErrUnknownDomain.
func (r *Resolver) Lookup(ctx context.Context, domain string) (Profile, error) {
	d, err := ParseDomain(domain)
	if err != nil {
		return Profile{}, err
	}
	k, err := r.Kind(ctx, d)
	if err != nil {
		return Profile{}, err
	}
	if k == Unknown {
		return Profile{}, ErrUnknownDomain
	}
	return r.profile(d, k), nil
}

// Resolve parses an address and returns it with its Profile. The error is
// an *AddressError for a malformed address and ErrUnknownDomain for a
// domain not hosted.
func (r *Resolver) Resolve(ctx context.Context, address string) (Address, Profile, error) {
	a, err := ParseAddress(address)
	if err != nil {
		return Address{}, Profile{}, err
	}
	p, err := r.Lookup(ctx, a.Domain)
	return a, p, err
}

// ProfileFor builds the Profile of a domain of a known kind, without a
// lookup (for the DNS server, which keeps the domain list in memory).
func (r *Resolver) ProfileFor(domain string, k Kind) Profile { return r.profile(domain, k) }

func (r *Resolver) profile(domain string, k Kind) Profile {
	s := r.settings
	popHost := s.OrganizationPOPHost
	if k == Personal {
		popHost = s.PersonalPOPHost
	}
	return Profile{
		Domain:   domain,
		Kind:     k,
		Provider: s.Provider,
		Incoming: []Server{{
			Protocol: POP3, Host: popHost, Port: s.POPPort,
			Security: ImplicitTLS, Auth: PasswordCleartext, AuthRequired: true,
		}},
		Outgoing: []Server{
			{Protocol: SMTP, Host: s.SMTPHost, Port: s.SMTPImplicitTLSPort,
				Security: ImplicitTLS, Auth: PasswordCleartext, AuthRequired: true},
			{Protocol: SMTP, Host: s.SMTPHost, Port: s.SMTPSTARTTLSPort,
				Security: STARTTLS, Auth: PasswordCleartext, AuthRequired: true},
		},
	}
}

package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
)

// ACME turns on trusted certificates from an ACME CA (RFC 8555) for every
// name clients fetch: the service host names and autoconfig./autodiscover.
// of every hosted domain, one certificate per name (package certs). Off,
// the tls section's certificate serves everything, as before.
type ACME struct {
	Enabled bool `yaml:"enabled"`
	// CAURL is the CA's directory URL.
	CAURL string `yaml:"ca_url"`
	// Email is given to the CA for expiry notices; optional.
	Email string `yaml:"email"`
	// KeyType of certificate keys: p256, p384, rsa2048 or rsa4096.
	KeyType string `yaml:"key_type"`
	// TrustedRoots is a PEM file of roots that verify the CA's own HTTPS
	// endpoint (a private or test CA); empty means the system roots.
	TrustedRoots string `yaml:"trusted_roots"`
	// Resolver (host:port) answers the DNS pre-check made before a name
	// is ordered; empty means the system's resolver.
	Resolver string `yaml:"resolver"`
}

// LetsEncryptDirectory is the default acme.ca_url.
const LetsEncryptDirectory = "https://acme-v02.api.letsencrypt.org/directory"

func defaultACME() ACME { return ACME{CAURL: LetsEncryptDirectory, KeyType: "p256"} }

// validateACME checks the acme section; with acme.enabled, the pre-check
// also needs our addresses: dns.addresses of the autoconfig host.
func (c *Config) validateACME(bad func(key, format string, a ...any)) {
	a := c.ACME
	if u, err := url.Parse(a.CAURL); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("acme.ca_url", "%q is not an https URL", a.CAURL)
	}
	switch a.KeyType {
	case "p256", "p384", "rsa2048", "rsa4096":
	default:
		bad("acme.key_type", "%q is not p256, p384, rsa2048 or rsa4096", a.KeyType)
	}
	if a.Email != "" {
		if err := checkAddress(a.Email); err != nil {
			bad("acme.email", "%v", err)
		}
	}
	if a.Resolver != "" {
		if _, _, err := net.SplitHostPort(a.Resolver); err != nil {
			bad("acme.resolver", "%q is not host:port", a.Resolver)
		}
	}
	if !a.Enabled {
		return
	}
	if len(c.DNS.Addresses[c.Provider.AutoconfigHost]) == 0 {
		bad("acme.enabled", "dns.addresses must list the addresses of %s (names are ordered once they resolve there)", c.Provider.AutoconfigHost)
	}
	if c.Listen.HTTP == "" && c.Listen.HTTPS == "" {
		bad("acme.enabled", "needs listen.http (HTTP-01) or listen.https (TLS-ALPN-01) to answer the CA's challenges")
	}
}

// RootPool reads acme.trusted_roots; nil (system roots) when unset.
func (a ACME) RootPool() (*x509.CertPool, error) {
	if a.TrustedRoots == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(a.TrustedRoots)
	if err != nil {
		return nil, fmt.Errorf("acme.trusted_roots: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("acme.trusted_roots: no PEM certificate in %s", a.TrustedRoots)
	}
	return pool, nil
}

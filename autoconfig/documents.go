package autoconfig

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/templates"
)

// contentTypeXML is what Thunderbird needs to parse a body as XML at all
// (FetchHTTP.sys.mjs accepts text/xml, application/xml, text/rdf;
// REFERENCE §1.1).
const contentTypeXML = "text/xml; charset=utf-8"

// errNotHosted is the one "not found" of every format: it never says
// whether the domain or a mailbox exists beyond "no configuration".
var errNotHosted = fail(http.StatusNotFound, "no configuration for this address", nil)

// lookup resolves a domain. A domain that is not hosted, or no domain at
// all (an IP address in Host), is errNotHosted; only store failures are
// internal errors.
func (s *Server) lookup(ctx context.Context, domain string) (profiles.Profile, error) {
	p, err := s.src.Lookup(ctx, domain)
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, profiles.ErrUnknownDomain), errors.Is(err, profiles.ErrInvalidAddress):
		return profiles.Profile{}, errNotHosted
	}
	return profiles.Profile{}, err
}

// parseAddress parses and normalises a client-supplied address. The
// reason sent back is fixed: the raw value is never echoed.
func parseAddress(v, param string) (profiles.Address, error) {
	a, err := profiles.ParseAddress(strings.TrimSpace(v))
	if err != nil {
		return profiles.Address{}, fail(http.StatusBadRequest, "invalid "+param, err)
	}
	return a.Fold(), nil
}

// document returns a built document from the cache or builds and caches
// it.
func (s *Server) document(f format, p profiles.Profile, a profiles.Address,
	build func(profiles.Profile, profiles.Address) ([]byte, error)) ([]byte, error) {
	k := cacheKey{format: f, domain: p.Domain}
	if a != (profiles.Address{}) {
		k.address = a.String()
	}
	if b, ok := s.cache.get(k, p); ok {
		s.obs.Cache(f, true)
		return b, nil
	}
	s.obs.Cache(f, false)
	b, err := build(p, a)
	if err != nil {
		return nil, err
	}
	s.cache.put(k, p, b)
	return b, nil
}

// hostDomain is the mail domain a Host header names: autoconfig.<domain>
// or <domain> itself (the .well-known URL), without a port.
func hostDomain(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if len(host) > len("autoconfig.") && strings.EqualFold(host[:len("autoconfig.")], "autoconfig.") {
		host = host[len("autoconfig."):]
	}
	return host
}

// thunderbird serves config-v1.1.xml (REFERENCE §1). The address's domain
// decides, so the provider's own autoconfig host answers for every hosted
// domain (Thunderbird's MX path asks autoconfig.<mx-domain>); without
// emailaddress the Host header's domain decides and the document carries
// %EMAILADDRESS%.
func (s *Server) thunderbird(c echo.Context) error {
	r := c.Request()
	key, _ := hotKey(fmtThunderbird, r.URL.RawQuery, r.Host)
	if e, ok := s.fastHit(r.Context(), key); ok {
		if e.kind == profiles.Unknown {
			return errNotHosted
		}
		return c.Blob(http.StatusOK, contentTypeXML, e.body)
	}
	var a profiles.Address
	domain := ""
	if v, ok := queryParam(r, "emailaddress"); ok && v != "" {
		var err error
		if a, err = parseAddress(v, "emailaddress"); err != nil {
			return err
		}
		domain = a.Domain
	} else {
		domain = hostDomain(r.Host)
	}
	p, err := s.lookup(r.Context(), domain)
	if err != nil {
		s.rememberNotFound(key, domain, err)
		return err
	}
	body, err := s.document(fmtThunderbird, p, a, templates.Thunderbird)
	if err != nil {
		return err
	}
	var addr string
	if a != (profiles.Address{}) {
		addr = a.String()
	}
	s.fast.put(key, fastEntry{domain: p.Domain, kind: p.Kind, body: body, wire: wireXML, address: addr})
	s.discover(fmtThunderbird, addr)
	return c.Blob(http.StatusOK, contentTypeXML, body)
}

// rememberNotFound caches a "not found" for a well-formed domain, so an
// unknown domain's repeat takes the same fast path as a hosted one's.
func (s *Server) rememberNotFound(k fastKey, domain string, err error) {
	if err != errNotHosted || s.kinds == nil {
		return
	}
	d, perr := profiles.ParseDomain(domain)
	if perr != nil {
		return
	}
	s.fast.put(k, fastEntry{domain: d, kind: profiles.Unknown})
}

// mobileconfig serves the signed Apple profile of ?email= (REFERENCE §3.4)
// as an attachment with a file name made only of [A-Za-z0-9._-].
func (s *Server) mobileconfig(c echo.Context) error {
	r := c.Request()
	raw, _ := rawQueryParam(r.URL.RawQuery, "email")
	key := fastKey{f: fmtMobileConfig, raw: raw}
	if raw != "" {
		if e, ok := s.fastHit(r.Context(), key); ok {
			if e.kind == profiles.Unknown {
				return errNotHosted
			}
			return s.writeProfile(c, e.disposition, e.body)
		}
	}
	v, ok := queryParam(r, "email")
	if !ok || v == "" {
		return fail(http.StatusBadRequest, "missing email parameter", nil)
	}
	a, err := parseAddress(v, "email")
	if err != nil {
		return err
	}
	p, err := s.lookup(r.Context(), a.Domain)
	if err != nil {
		s.rememberNotFound(key, a.Domain, err)
		return err
	}
	sg := s.signer.Load()
	body, err := s.signedProfile(p, a, sg)
	if err != nil {
		return err
	}
	disp := `attachment; filename="` + profileFileName(p, a) + `"`
	s.fast.put(key, fastEntry{domain: p.Domain, kind: p.Kind, signer: sg, body: body, disposition: disp,
		wire: wireProfile(disp), address: a.String()})
	s.discover(fmtMobileConfig, a.String())
	return s.writeProfile(c, disp, body)
}

func (s *Server) writeProfile(c echo.Context, disposition string, body []byte) error {
	h := c.Response().Header()
	h.Set("Content-Disposition", disposition)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	// A length, not chunks: iOS shows download progress, and the answer
	// is framed as httpfront frames it.
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return c.Blob(http.StatusOK, templates.MobileConfigContentType, body)
}

// signedProfile returns the cached signed profile, or builds and signs it
// (the one expensive step; the cache key includes the certificate).
func (s *Server) signedProfile(p profiles.Profile, a profiles.Address, sg *signerState) ([]byte, error) {
	k := cacheKey{format: fmtMobileConfig, address: a.String(), domain: p.Domain}
	if sg != nil {
		k.cert = sg.fingerprint
	}
	if b, ok := s.cache.get(k, p); ok {
		s.obs.Cache(fmtMobileConfig, true)
		return b, nil
	}
	s.obs.Cache(fmtMobileConfig, false)
	b, err := templates.MobileConfig(p, a)
	if err != nil {
		return nil, err
	}
	if sg != nil {
		if b, err = templates.Sign(b, sg.Signer); err != nil {
			return nil, err
		}
		s.obs.Signed()
	}
	s.cache.put(k, p, b)
	return b, nil
}

// profileFileName is a Content-Disposition file name that can never break
// the header: every byte outside [A-Za-z0-9._-] becomes '_'.
func profileFileName(p profiles.Profile, a profiles.Address) string {
	prefix := p.Provider.ShortName
	if prefix == "" {
		prefix = "mail"
	}
	name := strings.ToLower(prefix) + "-" + a.Local + "_" + a.Domain
	b := []byte(name)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-' || ch == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b) + ".mobileconfig"
}

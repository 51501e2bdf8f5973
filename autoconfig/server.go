// Package autoconfig is the HTTP service that hands every mail client the
// settings of the address it asks about, in its own format (DESIGN.md §5;
// REFERENCE §1-§3, §6): Thunderbird autoconfig, Outlook Autodiscover POX
// and v2 JSON, and signed Apple configuration profiles. echo v4 is used
// only in this package (the web pages, package webui, are served next to
// it from net/http; cmd/skydeskd composes the two).
//
// The documents come from templates, built from one profiles.Profile, and
// are cached together with their signatures. The kind of an address, and
// so every answer, depends on its domain alone: no endpoint, status code
// or timing says whether a mailbox exists.
package autoconfig

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/templates"
)

// MaxBodyBytes caps an Autodiscover POST body (REFERENCE §6: ~64 KiB; a
// real request is under 1 KiB).
const MaxBodyBytes = 64 << 10

// DefaultCacheEntries bounds the document cache. Entries are keyed by
// address, so the bound keeps a scan of made-up addresses from growing
// memory without limit.
const DefaultCacheEntries = 20000

// Options configure a Server. Source is required; the rest have safe
// defaults.
type Options struct {
	// Source resolves a domain to its Profile (a *profiles.Resolver).
	Source profiles.Source
	// Signer signs Apple profiles (the service certificate, its chain and
	// key). Nil serves them unsigned (iOS shows "Unsigned").
	Signer *templates.Signer
	// Logger receives errors and, at debug level, one line per request.
	// Authorization headers (Thunderbird sends the user's password to
	// Autodiscover) are never logged.
	Logger *slog.Logger
	// Observer is told of every request, cache lookup and signature (for
	// metrics); nil discards.
	Observer Observer
	// RedirectBase is where the plain-HTTP listener sends Autodiscover and
	// Apple requests, e.g. "https://autodiscover.skydesk.jp" (REFERENCE
	// §2.5). Empty: https:// plus the Host of the request.
	RedirectBase string
	// ServerName names this service in Autodiscover <Error Id=...>.
	ServerName string
	// CacheEntries bounds the document cache (default DefaultCacheEntries).
	CacheEntries int
	// Now is the clock for Autodiscover error times (default time.Now).
	Now func() time.Time
	// Discovered, if set, is told of every document served for one
	// address of a hosted domain, with the address normalised
	// (profiles.NormalizeAddress) and the format: cmd/skydeskd records
	// onboarding figures from it (a discovery, then a first login).
	// Documents without an address (Thunderbird's %EMAILADDRESS% form)
	// are not reported. It runs before the answer is sent; keep it cheap.
	Discovered func(f Format, address string)
}

// Server serves the autoconfig formats. It is safe for concurrent use.
type Server struct {
	src          profiles.Source
	log          *slog.Logger
	signer       atomic.Pointer[signerState]
	cache        *docCache
	fast         *fastCache
	errDocs      errorDocs
	kinds        kindSource // nil: no fast path
	obs          Observer
	redirectBase string
	serverName   string
	now          func() time.Time
	discovered   func(Format, string)
}

// signerState is the signing material plus an identity for cache keys: a
// new certificate gets new cache entries.
type signerState struct {
	templates.Signer
	fingerprint [32]byte
}

// New returns a Server. It fails only on missing options.
func New(o Options) (*Server, error) {
	if o.Source == nil {
		return nil, errors.New("autoconfig: Options.Source is required")
	}
	s := &Server{
		src: o.Source, log: o.Logger,
		redirectBase: strings.TrimSuffix(o.RedirectBase, "/"), serverName: o.ServerName, now: o.Now,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	n := o.CacheEntries
	if n <= 0 {
		n = DefaultCacheEntries
	}
	s.cache = newDocCache(n)
	s.fast = newFastCache(n)
	s.kinds, _ = o.Source.(kindSource)
	s.obs = o.Observer
	s.discovered = o.Discovered
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	s.SetSigner(o.Signer)
	return s, nil
}

// SetSigner replaces the signing material (certificate renewal). Profiles
// signed with the old certificate are no longer served.
func (s *Server) SetSigner(sg *templates.Signer) {
	if sg == nil || sg.Cert == nil {
		s.signer.Store(nil)
		return
	}
	s.signer.Store(&signerState{Signer: *sg, fingerprint: sha256.Sum256(sg.Cert.Raw)})
}

// recoverPanics turns a handler panic into a logged 500 (the request boundary,
// as go-smtp and CoreDNS recover per connection or query).
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "path", c.Request().URL.Path, "panic", fmt.Sprint(v),
					"stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v", v)
			}
		}()
		return next(c)
	}
}

// Handler returns the HTTP handler of both listeners. A request without
// TLS (Request.TLS nil: the plain-HTTP listener) gets Thunderbird's
// autoconfig (Thunderbird falls back to http://autoconfig.<domain>/) and a
// redirect to HTTPS for Autodiscover and Apple. /healthz and /metrics are
// not served here.
func (s *Server) Handler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Pre(canonicalPath)
	e.Use(s.observe)
	e.Use(s.recoverPanics)
	getHead := []string{http.MethodGet, http.MethodHead}
	e.Match(getHead, pathTBConfig, s.thunderbird)
	e.Match(getHead, pathTBWellKnown, s.thunderbird)
	e.Match([]string{http.MethodGet, http.MethodHead, http.MethodPost}, pathAutodiscoverXML, s.tlsOnly(s.autodiscoverXML))
	e.Match(getHead, pathAutodiscoverJSON, s.tlsOnly(s.autodiscoverJSON))
	e.Match(getHead, pathAutodiscoverJSON+"/v1.0/:email", s.tlsOnly(s.autodiscoverJSON))
	e.Match(getHead, pathMobileConfig, s.tlsOnly(s.mobileconfig))
	return e
}

// tlsOnly serves next over TLS and redirects a plain-HTTP request to
// HTTPS (toHTTPS): Autodiscover carries passwords and Apple profiles
// install accounts, so neither is answered in clear text.
func (s *Server) tlsOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !c.IsTLS() {
			return s.toHTTPS(c)
		}
		return next(c)
	}
}

package autoconfig

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/skydesk/skydeskd/internal/httpfront"
	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/templates"
)

// kindSource is the optional fast interface of a Source whose Profile is
// a pure function of (domain, kind), as *profiles.Resolver's is: its
// settings never change, and Kind is an in-memory lookup of the domain
// list. With it, a repeated request skips address parsing, IDNA and the
// Profile build: it costs one map lookup on the raw query value plus one
// Kind lookup that revalidates the cached answer against the current
// domain list (STYLE: optional features by type assertion).
type kindSource interface {
	Kind(ctx context.Context, domain string) (profiles.Kind, error)
}

var _ kindSource = (*profiles.Resolver)(nil)

// fastKey is a request as sent: the format, the raw (still
// percent-encoded) parameter value, and for a request without one the
// Host header. Two spellings of one address are two keys for the same
// answer; the bound below caps the cost of that.
type fastKey struct {
	f    format
	raw  string
	host string
}

// fastEntry is a built answer and what it was built for. kind Unknown
// records a "not found" so that unknown domains take the same path, and
// about the same time, as hosted ones.
type fastEntry struct {
	domain      string // A-labels, lower case: what Kind is asked
	kind        profiles.Kind
	signer      *signerState // mobileconfig: the certificate it was signed with
	body        []byte
	disposition string // mobileconfig: the Content-Disposition header value
	wire        []byte // the header block httpfront sends (see Hot)
	address     string // the normalised address it was built for; "" for none
}

// fastCache is read on every request from both cores, so reads must not
// write shared memory: a sync.Map's read path is one atomic load (an
// RWMutex's RLock/RUnlock would bounce a cache line between cores). The
// size is kept approximately by an atomic counter; when full, arbitrary
// entries are evicted.
type fastCache struct {
	max     int64
	n       atomic.Int64
	entries sync.Map // fastKey → fastEntry
}

func newFastCache(max int) *fastCache { return &fastCache{max: int64(max)} }

func (c *fastCache) get(k fastKey) (fastEntry, bool) {
	v, ok := c.entries.Load(k)
	if !ok {
		return fastEntry{}, false
	}
	return v.(fastEntry), true
}

func (c *fastCache) put(k fastKey, e fastEntry) {
	// Keys are substrings of the request; don't pin its memory.
	k.raw, k.host = strings.Clone(k.raw), strings.Clone(k.host)
	if _, loaded := c.entries.Swap(k, e); loaded {
		return
	}
	if c.n.Add(1) <= c.max {
		return
	}
	// Full: evict one other entry.
	c.entries.Range(func(old, _ any) bool {
		if old.(fastKey) == k {
			return true
		}
		if _, ok := c.entries.LoadAndDelete(old); ok {
			c.n.Add(-1)
			return false
		}
		return true
	})
}

func (c *fastCache) len() int { return int(c.n.Load()) }

// fastHit returns a cached answer that is still valid: the domain's kind
// is unchanged and, for signed profiles, the certificate too.
func (s *Server) fastHit(ctx context.Context, k fastKey) (fastEntry, bool) {
	if s.kinds == nil {
		return fastEntry{}, false
	}
	e, ok := s.fast.get(k)
	if !ok {
		return fastEntry{}, false
	}
	if k.f == fmtMobileConfig && e.kind != profiles.Unknown && e.signer != s.signer.Load() {
		return fastEntry{}, false
	}
	kind, err := s.kinds.Kind(ctx, e.domain)
	if err != nil || kind != e.kind {
		return fastEntry{}, false
	}
	s.obs.Cache(k.f, true)
	if e.kind != profiles.Unknown {
		s.discover(k.f, e.address)
	}
	return e, true
}

// discover reports a document served for an address (Options.Discovered).
func (s *Server) discover(f format, address string) {
	if s.discovered != nil && address != "" {
		s.discovered(f, address)
	}
}

// rawQueryParam returns the raw (undecoded) value of the first parameter
// named like any of names, case-insensitively, without allocating: the
// one query-string scanner of the hot path and the handlers (queryParam).
func rawQueryParam(q string, names ...string) (string, bool) {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		for _, n := range names {
			if strings.EqualFold(k, n) {
				return v, true
			}
		}
	}
	return "", false
}

// hotKey is the cache key of a request to a hot route: the raw
// emailaddress (Thunderbird) or email (Apple) parameter, or for a
// Thunderbird request without one, the Host header. ok is false when the
// request cannot be a cache hit (an Apple request needs its address).
func hotKey(f format, rawQuery, host string) (k fastKey, ok bool) {
	k.f = f
	if f == fmtThunderbird {
		if raw, ok := rawQueryParam(rawQuery, "emailaddress"); ok && raw != "" {
			k.raw = raw
		} else {
			k.host = host
		}
		return k, true
	}
	k.raw, _ = rawQueryParam(rawQuery, "email")
	return k, k.raw != ""
}

// Hot returns the Responder for an httpfront loop in front of Handler():
// it answers the same cached requests as the handler's own fast path,
// with the same status, headers and body (TestHot_sameAsHandler), before
// net/http builds a Request at all. httpfront says whether the connection
// is TLS (Request.TLS), as net/http does for the handler.
func (s *Server) Hot() httpfront.Responder { return &hot{s: s} }

type hot struct{ s *Server }

// Header blocks as net/http writes the handler's headers: sorted, one
// "Name: value" line each.
var (
	wireXML      = []byte("Content-Type: " + contentTypeXML + "\r\n")
	wireNotFound = []byte("Cache-Control: no-store\r\nContent-Type: " + echo.MIMETextPlainCharsetUTF8 + "\r\nX-Content-Type-Options: nosniff\r\n")
	// bodyNotHosted is what errorHandler writes for errNotHosted.
	bodyNotHosted = []byte(errNotHosted.(*statusError).reason + "\n")
)

// wireProfile is the header block of a signed Apple profile.
func wireProfile(disposition string) []byte {
	return []byte("Cache-Control: private, no-store\r\nContent-Disposition: " + disposition +
		"\r\nContent-Type: " + templates.MobileConfigContentType + "\r\nX-Content-Type-Options: nosniff\r\n")
}

func (h *hot) Respond(r *httpfront.Request) (httpfront.Answer, bool) {
	var f format
	switch r.Path {
	case pathTBConfig, pathTBWellKnown:
		f = fmtThunderbird
	case pathMobileConfig:
		if !r.TLS {
			return httpfront.Answer{}, false // redirected to HTTPS by the handler
		}
		f = fmtMobileConfig
	default:
		return httpfront.Answer{}, false
	}
	start := time.Now()
	key, ok := hotKey(f, r.RawQuery, r.Host)
	if !ok {
		return httpfront.Answer{}, false
	}
	e, ok := h.s.fastHit(context.Background(), key)
	if !ok {
		return httpfront.Answer{}, false
	}
	a, o := httpfront.Answer{Status: http.StatusOK, Header: e.wire, Body: e.body}, outcomeOK
	if e.kind == profiles.Unknown {
		a, o = httpfront.Answer{Status: http.StatusNotFound, Header: wireNotFound, Body: bodyNotHosted}, outcomeNotFound
	}
	h.s.obs.Request(f, o, clientFamily(r.UserAgent), time.Since(start))
	return a, true
}

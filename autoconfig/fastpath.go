package autoconfig

import (
	"context"
	"strings"
	"sync"

	"github.com/skydesk/skydeskd/profiles"
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
	disposition string // mobileconfig: the Content-Disposition value
}

type fastCache struct {
	mu      sync.RWMutex
	max     int
	entries map[fastKey]fastEntry
}

func newFastCache(max int) *fastCache {
	return &fastCache{max: max, entries: make(map[fastKey]fastEntry, min(max, 1024))}
}

func (c *fastCache) get(k fastKey) (fastEntry, bool) {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	return e, ok
}

func (c *fastCache) put(k fastKey, e fastEntry) {
	// Keys are substrings of the request; don't pin its memory.
	k.raw, k.host = strings.Clone(k.raw), strings.Clone(k.host)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = e
}

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
	s.m.cacheHit(k.f)
	return e, true
}

// rawQueryParam returns the raw (undecoded) value of the first parameter
// named like name, case-insensitively, without allocating.
func rawQueryParam(q, name string) (string, bool) {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

package autoconfig

import (
	"slices"
	"sync"

	"github.com/skydesk/skydeskd/profiles"
)

// format identifies a document kind in cache keys and metrics.
type format uint8

const (
	fmtOther format = iota
	fmtThunderbird
	fmtAutodiscoverXML
	fmtAutodiscoverJSON
	fmtMobileConfig
	nFormats
)

var formatNames = [nFormats]string{"other", "thunderbird", "autodiscover_xml", "autodiscover_json", "mobileconfig"}

func (f format) String() string { return formatNames[f] }

// cacheKey identifies a built document: the format, the normalised
// address ("" for a domain's generic document), the domain, and for
// signed profiles the certificate. The Profile itself is compared on
// lookup, so a change of kind or of the provider's settings misses.
type cacheKey struct {
	format  format
	address string
	domain  string
	cert    [32]byte
}

type cacheEntry struct {
	profile profiles.Profile
	body    []byte
}

// docCache is a bounded map of built (and signed) documents: a repeated
// request costs a map lookup, not a build or a signature (DESIGN.md §7).
// When full, an arbitrary entry is evicted (Go's map iteration order),
// which keeps hot entries with high probability at no bookkeeping cost.
type docCache struct {
	mu      sync.RWMutex
	max     int
	entries map[cacheKey]cacheEntry
}

func newDocCache(max int) *docCache {
	return &docCache{max: max, entries: make(map[cacheKey]cacheEntry, min(max, 1024))}
}

func (c *docCache) get(k cacheKey, p profiles.Profile) ([]byte, bool) {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !sameProfile(e.profile, p) {
		return nil, false
	}
	return e.body, true
}

func (c *docCache) put(k cacheKey, p profiles.Profile, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = cacheEntry{profile: p, body: body}
}

func (c *docCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func sameProfile(a, b profiles.Profile) bool {
	return a.Domain == b.Domain && a.Kind == b.Kind && a.Provider == b.Provider &&
		slices.Equal(a.Incoming, b.Incoming) && slices.Equal(a.Outgoing, b.Outgoing)
}

package autoconfig

import (
	"slices"

	"github.com/skydesk/skydeskd/internal/cache"
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

// docCache holds built (and signed) documents: a repeated request costs a
// map lookup, not a build or a signature (DESIGN.md §7). The Profile is
// stored with the body and compared on lookup, so a change of kind or of
// the provider's settings misses.
type docCache struct {
	c *cache.Cache[cacheKey, cacheEntry]
}

func newDocCache(max int) *docCache {
	return &docCache{c: cache.New[cacheKey, cacheEntry](max, nil)}
}

func (c *docCache) get(k cacheKey, p profiles.Profile) ([]byte, bool) {
	e, ok := c.c.Get(k)
	if !ok || !sameProfile(e.profile, p) {
		return nil, false
	}
	return e.body, true
}

func (c *docCache) put(k cacheKey, p profiles.Profile, body []byte) {
	c.c.Put(k, cacheEntry{profile: p, body: body}, 0)
}

func (c *docCache) len() int { return c.c.Len() }

func sameProfile(a, b profiles.Profile) bool {
	return a.Domain == b.Domain && a.Kind == b.Kind && a.Provider == b.Provider &&
		slices.Equal(a.Incoming, b.Incoming) && slices.Equal(a.Outgoing, b.Outgoing)
}

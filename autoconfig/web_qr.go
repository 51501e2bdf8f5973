package autoconfig

import (
	"html/template"
	"sync"

	"github.com/skydesk/skydeskd/templates/web"
)

// qrCacheEntries bounds the QR cache; at ~6 KiB an entry this is ~25 MiB.
const qrCacheEntries = 4096

// qrCache keeps the inline SVG of recent QR codes: encoding one costs
// about a millisecond (all eight masks are scored, ISO/IEC 18004 §7.8),
// and help-desk links and reloads ask for the same address again. When
// full it is emptied: cheaper than LRU bookkeeping, and refilling costs
// one encoding per address.
type qrCache struct {
	mu sync.Mutex
	m  map[[2]string]template.HTML
}

func (c *qrCache) get(text, label string) (template.HTML, error) {
	k := [2]string{text, label}
	c.mu.Lock()
	svg, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return svg, nil
	}
	svg, err := web.QRCode(text, label)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= qrCacheEntries {
		c.m = make(map[[2]string]template.HTML)
	}
	c.m[k] = svg
	c.mu.Unlock()
	return svg, nil
}

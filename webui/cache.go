package webui

import (
	"html/template"

	"github.com/skydesk/skydeskd/templates/web"
)

// QR codes: encoding one costs about a millisecond (all eight masks are
// scored, ISO/IEC 18004 §7.8). ~6 KiB an entry.
const qrCacheEntries = 2048

func (h *Handler) qrCode(text, label string) (template.HTML, error) {
	k := [2]string{text, label}
	if svg, ok := h.qr.Get(k); ok {
		return svg, nil
	}
	svg, err := web.QRCode(text, label)
	if err != nil {
		return "", err
	}
	h.qr.Put(k, svg, 0)
	return svg, nil
}

// Setup pages: the page is a function of the language, the query string
// and the outcome of resolving the address (invalid, unknown, or the
// account kind, whose servers come from static configuration). The
// outcome is computed fresh for every request — one in-memory lookup —
// so adding or removing a domain shows at once; only the rendering
// (html/template, ~0.2 ms) is saved. ~12 KiB an entry.
const pageCacheEntries = 1024

// maxCachedQuery keeps odd, long queries out of the cache.
const maxCachedQuery = 512

type pageKey struct {
	lang    web.Lang
	query   string
	outcome string
}

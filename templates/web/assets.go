package web

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
)

// Asset is an embedded static file.
type Asset struct {
	Body        []byte
	ContentType string
	// ETag is a strong validator (RFC 9110 §8.8.3) from the content hash.
	ETag string
}

var assetTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// LookupAsset returns the embedded asset called name ("site.css").
func LookupAsset(name string) (Asset, bool) {
	ctype, ok := assetTypes[path.Ext(name)]
	if !ok || name != path.Base(name) {
		return Asset{}, false
	}
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		return Asset{}, false
	}
	sum := sha256.Sum256(b)
	return Asset{Body: b, ContentType: ctype, ETag: `"` + hex.EncodeToString(sum[:8]) + `"`}, true
}

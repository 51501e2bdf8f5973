package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"sync"
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

// assets are read and hashed once.
var assets = sync.OnceValue(func() map[string]Asset {
	out := map[string]Asset{}
	entries, _ := fs.ReadDir(static, "static")
	for _, e := range entries {
		ctype, ok := assetTypes[path.Ext(e.Name())]
		if !ok || e.IsDir() {
			continue
		}
		b, err := static.ReadFile("static/" + e.Name())
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = Asset{Body: b, ContentType: ctype, ETag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
})

// LookupAsset returns the embedded asset called name ("site.css").
func LookupAsset(name string) (Asset, bool) {
	a, ok := assets()[name]
	return a, ok
}

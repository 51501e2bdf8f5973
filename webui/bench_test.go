package webui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/store"
)

// BenchmarkWeb_Setup measures the setup page: parse, resolve, and either
// a page-cache hit (the same link opened again) or, for "address-first",
// a new address each time (QR encoding and rendering).
func BenchmarkWeb_Setup(b *testing.B) {
	for _, tc := range []struct{ name, target string }{
		{"form", "/"},
		{"address", "/?email=hanako%40example.co.jp"},
		{"unknown", "/?email=someone%40gmail.com"},
		{"address-first", "/?email=u%d%%40example.co.jp"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			env := newWebEnv(b, store.ThrottlePolicy{})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				target := tc.target
				if strings.Contains(target, "%d") {
					i++
					target = fmt.Sprintf(target, i)
				}
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, testWebURL+target, nil) // https: r.TLS is set
				req.Header.Set("Accept-Language", "ja")
				env.web.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

// BenchmarkWeb_SessionCheck measures what every signed-in request pays for
// its session: one indexed read of the session joined to its account
// (credential generation included); the last-seen write happens at most
// once a minute, so not in this loop.
func BenchmarkWeb_SessionCheck(b *testing.B) {
	env := newWebEnv(b, store.ThrottlePolicy{})
	acc, err := env.st.AddAccount(b.Context(), store.NewAccount{Address: "taro@skydesk.jp", Password: "correct horse"})
	if err != nil {
		b.Fatal(err)
	}
	id, err := env.web.sessions.create(b.Context(), acc, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := env.web.sessions.get(b.Context(), id); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

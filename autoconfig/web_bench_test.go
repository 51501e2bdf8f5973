package autoconfig

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/skydesk/skydeskd/store"
)

// BenchmarkWeb_Setup measures the setup page for one address: parse,
// resolve, QR code, render (the page a help-desk link opens).
func BenchmarkWeb_Setup(b *testing.B) {
	for _, tc := range []struct{ name, target string }{
		{"form", "/"},
		{"address", "/?email=hanako%40example.co.jp"},
		{"unknown", "/?email=someone%40gmail.com"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			env := newWebEnv(b, store.ThrottlePolicy{})
			e := echo.New()
			env.web.Register(e, true)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, tc.target, nil)
				req.Header.Set("Accept-Language", "ja")
				e.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

package autoconfig

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/internal/httpfront"
)

// benchEndpoint measures one route through the full echo stack
// (canonical path, metrics, routing, lookup, cache, write).
func benchEndpoint(b *testing.B, h http.Handler, method, target, body string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		var r *http.Request
		if body != "" {
			r = httptest.NewRequest(method, target, strings.NewReader(body))
		} else {
			r = httptest.NewRequest(method, target, nil)
		}
		r.Header.Set("User-Agent", "Mozilla/5.0 Thunderbird/128.0")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkEndpointThunderbird(b *testing.B) {
	ts := newTestServer(b, nil, nil)
	benchEndpoint(b, ts.secure, "GET", "/mail/config-v1.1.xml?emailaddress=hanako%40example.co.jp", "")
}

func BenchmarkEndpointThunderbirdGeneric(b *testing.B) {
	ts := newTestServer(b, nil, nil)
	benchEndpoint(b, ts.secure, "GET", "http://autoconfig.example.co.jp/mail/config-v1.1.xml", "")
}

func BenchmarkEndpointThunderbirdUnknownDomain(b *testing.B) {
	ts := newTestServer(b, nil, nil)
	benchEndpoint(b, ts.secure, "GET", "/mail/config-v1.1.xml?emailaddress=taro%40gmail.com", "")
}

func BenchmarkEndpointAutodiscoverPOX(b *testing.B) {
	ts := newTestServer(b, nil, nil)
	benchEndpoint(b, ts.secure, "POST", "/Autodiscover/Autodiscover.xml", pox("hanako@example.co.jp"))
}

func BenchmarkEndpointAutodiscoverNotFound(b *testing.B) {
	ts := newTestServer(b, nil, nil)
	benchEndpoint(b, ts.secure, "POST", "/autodiscover/autodiscover.xml", pox("taro@gmail.com"))
}

func BenchmarkEndpointAutodiscoverJSON(b *testing.B) {
	ts := newTestServer(b, nil, nil)
	benchEndpoint(b, ts.secure, "GET", "/autodiscover/autodiscover.json/v1.0/hanako%40example.co.jp?Protocol=AutodiscoverV1", "")
}

func BenchmarkEndpointMobileConfigCached(b *testing.B) {
	signer, _ := signerOf(b)
	ts := newTestServer(b, nil, signer)
	benchEndpoint(b, ts.secure, "GET", "/apple/mobileconfig?email=hanako%40example.co.jp", "")
}

// BenchmarkEndpointMobileConfigUncached signs on every request (a new
// address each time): the cost of a cache miss.
func BenchmarkEndpointMobileConfigUncached(b *testing.B) {
	signer, _ := signerOf(b)
	ts := newTestServer(b, nil, signer)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r := httptest.NewRequest("GET", "/apple/mobileconfig?email=u"+strconv.Itoa(i)+"%40example.co.jp", nil)
		w := httptest.NewRecorder()
		ts.secure.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkEndpointPlainRedirect(b *testing.B) {
	ts := newTestServer(b, nil, nil)
	benchEndpoint(b, ts.plain, "POST", "/autodiscover/autodiscover.xml", pox("hanako@example.co.jp"))
}

// discardWriter is a ResponseWriter that keeps nothing, so the handler
// benchmarks below measure our code, not httptest's recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchHandlerOnly(b *testing.B, h http.Handler, target string) {
	b.Helper()
	r := httptest.NewRequest("GET", target, nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 Thunderbird/128.0")
	w := &discardWriter{h: http.Header{}}
	path := r.URL.Path
	h.ServeHTTP(w, r) // fill the cache
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		r.URL.Path = path // canonicalPath rewrites it in place
		h.ServeHTTP(w, r)
	}
}

// BenchmarkHandlerThunderbirdCached is the per-request cost of a cached
// Thunderbird answer through echo (net/http excluded): what an HTTP/2
// client, or one whose connection httpfront handed on, pays.
func BenchmarkHandlerThunderbirdCached(b *testing.B) {
	ts := newTestServer(b, nil, nil)
	benchHandlerOnly(b, ts.secure, "/mail/config-v1.1.xml?emailaddress=hanako%40example.co.jp")
}

func BenchmarkHandlerMobileConfigCached(b *testing.B) {
	signer, _ := signerOf(b)
	ts := newTestServer(b, nil, signer)
	benchHandlerOnly(b, ts.secure, "/apple/mobileconfig?email=hanako%40example.co.jp")
}

// benchHot measures the httpfront Responder on a cached answer: the
// per-request cost of the hot path apart from parsing and the socket.
func benchHot(b *testing.B, ts *testServer, path, query string, parallel bool) {
	b.Helper()
	warm := httptest.NewRequest("GET", path+"?"+query, nil)
	ts.secure.ServeHTTP(&discardWriter{h: http.Header{}}, warm) // fill the cache
	h := ts.Hot()
	r := &httpfront.Request{Method: "GET", Path: path, RawQuery: query, Host: "autoconfig.skydesk.jp", UserAgent: "Mozilla/5.0 Thunderbird/128.0", TLS: true}
	if _, ok := h.Respond(r); !ok {
		b.Fatal("not answered from the cache")
	}
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			h.Respond(r)
		}
		return
	}
	// Both cores at once: the cost of shared state (cache, counters).
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Respond(r)
		}
	})
}

func BenchmarkHotThunderbird(b *testing.B) {
	benchHot(b, newTestServer(b, nil, nil), pathTBConfig, "emailaddress=hanako%40example.co.jp", false)
}

func BenchmarkHotThunderbirdParallel(b *testing.B) {
	benchHot(b, newTestServer(b, nil, nil), pathTBConfig, "emailaddress=hanako%40example.co.jp", true)
}

func BenchmarkHotMobileConfig(b *testing.B) {
	signer, _ := signerOf(b)
	benchHot(b, newTestServer(b, nil, signer), pathMobileConfig, "email=hanako%40example.co.jp", false)
}

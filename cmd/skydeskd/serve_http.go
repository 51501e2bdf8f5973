package main

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skydesk/skydeskd/internal/connlimit"
	"github.com/skydesk/skydeskd/internal/httpfront"
)

// httpServer returns a server with bounded reads and writes.
func httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
}

// opsMux serves /healthz and /metrics and hands everything else to next.
func (a *app) opsMux(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.store.Ping(r.Context()); err != nil {
			a.log.Error("health check", "err", err)
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.Handle("/", next)
	return mux
}

// httpComponents starts the plain HTTP listener (autoconfig, which
// Thunderbird falls back to, and redirects) and the HTTPS listener. Each
// runs an httpfront loop that answers cached autoconfig documents itself
// and hands every other connection to a net/http server.
func (a *app) httpComponents() ([]component, error) {
	h, err := a.webHandlers()
	if err != nil {
		return nil, err
	}
	handler := a.opsMux(h.handler)
	var out []component
	if addr := a.cfg.Listen.HTTP; addr != "" {
		l, err := listen(addr)
		if err != nil {
			return nil, err
		}
		fr := httpfront.NewWithOptions(h.hot, httpServer(a.acmeHTTP(handler)), a.frontOptions("http"))
		a.frontMetrics("http", fr)
		out = append(out, component{name: "http", addr: l.Addr(),
			serve:    func() error { return ignoreClosed(fr.Serve(l)) },
			shutdown: fr.Shutdown})
	}
	if addr := a.cfg.Listen.HTTPS; addr != "" {
		l, err := listen(addr)
		if err != nil {
			stopAll(out)
			return nil, err
		}
		srv := httpServer(handler)
		srv.TLSConfig = a.serverTLS(a.cfg.Provider.AutoconfigHost)
		srv.TLSConfig.NextProtos = []string{"h2", "http/1.1", "acme-tls/1"} // acme-tls/1: TLS-ALPN-01 (RFC 8737)
		fr := httpfront.NewWithOptions(h.hot, srv, a.frontOptions("https"))
		a.frontMetrics("https", fr)
		out = append(out, component{name: "https", addr: l.Addr(),
			serve:    func() error { return ignoreClosed(fr.ServeTLS(l)) },
			shutdown: fr.Shutdown})
	}
	return out, nil
}

// frontOptions are a listener's httpfront options from config limits.
func (a *app) frontOptions(service string) httpfront.Options {
	lim := a.cfg.Limits
	return httpfront.Options{
		Logger:           a.log.With("service", service),
		HandshakeTimeout: lim.TLSHandshakeTimeoutValue(),
		Limits: connlimit.Limits{PerNetwork: lim.HTTP.ConnectionsPerNetwork,
			IPv4Prefix: lim.IPv4Prefix, IPv6Prefix: lim.IPv6Prefix},
	}
}

// frontMetrics exports a listener's httpfront counters: how many
// requests the front answered itself and how many connections went on to
// net/http (a browser's, a POST, an uncached first request).
func (a *app) frontMetrics(listener string, fr *httpfront.Front) {
	labels := prometheus.Labels{"listener": listener}
	for _, m := range []struct {
		name, help string
		get        func(httpfront.Stats) uint64
	}{
		{"skydeskd_http_connections_total", "HTTP connections accepted.", func(s httpfront.Stats) uint64 { return s.Connections }},
		{"skydeskd_http_front_answers_total", "Requests answered from the autoconfig cache on the connection, before net/http.", func(s httpfront.Stats) uint64 { return s.Answers }},
		{"skydeskd_http_handoffs_total", "Connections handed to net/http (first request not a cached answer, HTTP/2).", func(s httpfront.Stats) uint64 { return s.HandedOff }},
	} {
		a.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help, ConstLabels: labels},
			func() float64 { return float64(m.get(fr.Stats())) }))
	}
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

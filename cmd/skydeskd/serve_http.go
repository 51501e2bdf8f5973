package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skydesk/skydeskd/internal/connlimit"
	"github.com/skydesk/skydeskd/internal/httpfront"
	"github.com/skydesk/skydeskd/store"
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

// opsMux serves /healthz, /readyz and /metrics and hands everything else
// to next. A load balancer polls /readyz to route traffic and an
// orchestrator /healthz to restart the process: a database outage makes
// a node unready, never "dead", since restarting would not bring the
// database back.
func (a *app) opsMux(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// Alive: this process answers HTTP.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	ready := a.readiness()
	// Balancers poll every second or two: one line per OutageLogInterval
	// during an outage, not one per poll.
	var quiet store.OutageLog
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			if store.IsUnavailable(err) {
				quiet.Warn(a.log, "readiness check", err)
			} else {
				a.log.Warn("not ready", "err", err)
			}
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.Handle("/", next)
	return mux
}

// readyTimeout bounds one /readyz check; balancers poll every few seconds.
const readyTimeout = 2 * time.Second

// schemaVersioner is the optional part of a store driver that reports
// the highest migration applied to its database (store.Store and
// store/postgres.Store both have it).
type schemaVersioner interface {
	SchemaVersion(ctx context.Context) (int, error)
}

// readiness returns the /readyz check: the store answers, and its schema
// version is still the one this process opened it at (Open applied every
// migration this binary embeds), so a database restored from an older
// backup, or migrated further by a newer node, takes the node out of the
// balancer instead of serving with the wrong tables.
func (a *app) readiness() func(context.Context) error {
	sv, ok := any(a.store).(schemaVersioner)
	var want atomic.Int64 // -1 until read: at start, or at the first check if that failed
	want.Store(-1)
	if ok {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		if v, err := sv.SchemaVersion(ctx); err == nil {
			want.Store(int64(v))
		}
		cancel()
	}
	return func(ctx context.Context) error {
		if err := a.store.Ping(ctx); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if !ok {
			return nil
		}
		v, err := sv.SchemaVersion(ctx)
		if err != nil {
			return fmt.Errorf("reading the schema version: %w", err)
		}
		want.CompareAndSwap(-1, int64(v))
		if w := want.Load(); int64(v) != w {
			return fmt.Errorf("schema version %d, this node opened it at %d", v, w)
		}
		return nil
	}
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
		l = a.proxied("http", l)
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
		l = a.proxied("https", l)
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

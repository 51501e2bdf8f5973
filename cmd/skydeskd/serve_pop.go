package main

import (
	"crypto/tls"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/popstore"
)

// settingsURL is the settings page that POP3 and SMTP hints name.
func settingsURL(cfg *config.Config) string {
	return strings.TrimSuffix(cfg.Provider.WebURL, "/") + "/settings"
}

// popComponents starts the POP3 listeners: POP3S (implicit TLS, RFC 8314)
// on listen.pop3s and POP3 with mandatory STLS (RFC 2595) on listen.pop3.
// Both share one popd.Server, so the shutdown is common; the maildrop
// lock is a lease in the database, common to every node on it.
func (a *app) popComponents() ([]component, error) {
	if a.cfg.Listen.POP3S == "" && a.cfg.Listen.POP3 == "" {
		return nil, nil
	}
	be, err := popstore.New(popstore.Options{
		Auth:        a.auth,
		Store:       a.store,
		Leases:      a.store,
		LeaseTTL:    a.cfg.POP.LeaseTTLValue(),
		SettingsURL: settingsURL(a.cfg),
		Logger:      a.log.With("service", "pop3"),
	})
	if err != nil {
		return nil, err
	}
	tlsConf := a.serverTLS(a.cfg.Provider.POP.PersonalHost)
	lim := a.cfg.Limits
	srv := popd.NewServer(countingBackend{be, a.popMetrics()}, popd.Options{
		Hostname:                 a.cfg.Provider.POP.PersonalHost,
		Implementation:           "skydeskd",
		TLSConfig:                tlsConf,
		HandshakeTimeout:         lim.TLSHandshakeTimeoutValue(),
		LoginTimeout:             lim.POP.LoginTimeoutValue(),
		MaxConnectionsPerNetwork: lim.POP.ConnectionsPerNetwork,
		IPv4Prefix:               lim.IPv4Prefix,
		IPv6Prefix:               lim.IPv6Prefix,
		Logger:                   a.log.With("service", "pop3"),
	})
	implicit := func(l net.Listener) error { return srv.Serve(tls.NewListener(l, tlsConf)) }
	// One server behind both listeners: the first shutdown drains
	// everything, the second finds it closed.
	return a.bindAll([]endpoint{
		{name: "pop3s", addr: a.cfg.Listen.POP3S, serve: implicit, shutdown: srv.Shutdown},
		{name: "pop3", addr: a.cfg.Listen.POP3, serve: srv.Serve, shutdown: srv.Shutdown},
	}, popd.ErrServerClosed)
}

// popMetrics are the POP3 session counters on /metrics (login outcomes,
// including throttling, are skydeskd_logins_total{service="pop3"}).
type popMetrics struct {
	sessions prometheus.Counter
	active   prometheus.Gauge
}

func (a *app) popMetrics() popMetrics {
	m := popMetrics{
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "skydeskd_pop3_sessions_total", Help: "POP3 connections accepted."}),
		active:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "skydeskd_pop3_sessions_active", Help: "POP3 connections open now."}),
	}
	a.reg.MustRegister(m.sessions, m.active)
	return m
}

// countingBackend counts sessions around the store's backend.
type countingBackend struct {
	be popd.Backend
	m  popMetrics
}

func (b countingBackend) NewSession(c *popd.Conn) (popd.Session, error) {
	s, err := b.be.NewSession(c)
	if err != nil {
		return nil, err
	}
	b.m.sessions.Inc()
	b.m.active.Inc()
	return countedSession{s, b.m}, nil
}

type countedSession struct {
	popd.Session
	m popMetrics
}

func (s countedSession) Logout() error {
	s.m.active.Dec()
	return s.Session.Logout()
}

// Retrieved forwards popd.RetrievedSession: the wrapper must not hide the
// add-on (the last POP access counts downloads through it).
func (s countedSession) Retrieved(n int) {
	if rs, ok := s.Session.(popd.RetrievedSession); ok {
		rs.Retrieved(n)
	}
}

var _ popd.RetrievedSession = countedSession{}

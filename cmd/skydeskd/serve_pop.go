package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/store"
)

// popComponents starts the POP3 listeners: POP3S (implicit TLS, RFC 8314)
// on listen.pop3s and POP3 with mandatory STLS (RFC 2595) on listen.pop3.
// Both share one popd.Server, so the maildrop lock and the shutdown are
// common.
func (a *app) popComponents() ([]component, error) {
	if a.cfg.Listen.POP3S == "" && a.cfg.Listen.POP3 == "" {
		return nil, nil
	}
	be, err := a.store.NewMaildrop(store.MaildropOptions{
		Auth:        a.auth,
		SettingsURL: strings.TrimSuffix(a.cfg.Provider.WebURL, "/") + "/settings",
		Logger:      a.log.With("service", "pop3"),
	})
	if err != nil {
		return nil, err
	}
	tlsConf := a.serverTLS(a.cfg.Provider.POP.PersonalHost)
	srv := popd.NewServer(countingBackend{be, a.popMetrics()}, popd.Options{
		Hostname:       a.cfg.Provider.POP.PersonalHost,
		Implementation: "skydeskd",
		TLSConfig:      tlsConf,
		Logger:         a.log.With("service", "pop3"),
	})
	var out []component
	closeAll := func() {
		for _, c := range out {
			_ = c.shutdown(context.Background())
		}
	}
	for _, l := range []struct {
		name, addr string
		implicit   bool
	}{{"pop3s", a.cfg.Listen.POP3S, true}, {"pop3", a.cfg.Listen.POP3, false}} {
		if l.addr == "" {
			continue
		}
		ln, err := listen(l.addr)
		if err != nil {
			closeAll()
			return nil, err
		}
		served := ln
		if l.implicit {
			served = tls.NewListener(ln, tlsConf)
		}
		out = append(out, component{name: l.name, addr: ln.Addr(),
			serve: func() error {
				if err := srv.Serve(served); err != nil && !errors.Is(err, popd.ErrServerClosed) {
					return err
				}
				return nil
			},
			shutdown: func(ctx context.Context) error {
				// One server behind both listeners: the first shutdown
				// drains everything, the second finds it closed.
				if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
					return err
				}
				return nil
			}})
	}
	return out, nil
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

package main

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/smtpd"
)

// smtpComponents serves SMTPS (465, implicit TLS), submission (587,
// STARTTLS) and the MX (25) from one smtpd.Server, which also runs the
// smarthost relay when one is configured.
func (a *app) smtpComponents() ([]component, error) {
	l := a.cfg.Listen
	relay, err := a.smtpRelay()
	if err != nil {
		return nil, err
	}
	if l.MX != "" {
		a.checkPostmaster()
	}
	m := a.smtpMetrics()
	scanner, err := a.spamScanner()
	if err != nil {
		return nil, err
	}
	o := smtpd.Options{
		Hostname:       a.cfg.SMTP.Hostname,
		TLSConfig:      a.serverTLS(a.cfg.Provider.SMTP.Host),
		MaxMessageSize: a.cfg.SMTP.MaxMessageSize,
		Postmaster:     a.cfg.SMTP.Postmaster,
		Scanner:        scanner,
		SpoolDir:       a.cfg.DataDir,
		// Validate checked the sizes.
		MaxBytesInFlight:    configSize(a.cfg.SMTP.MaxBytesInFlight),
		MXMessagesPerMinute: a.cfg.SMTP.MXMessagesPerMinute,
		MXBytesPerMinute:    configSize(a.cfg.SMTP.MXBytesPerMinute),
		Logger:              a.log,
		// config limits: the per-network cap, the 465 handshake and the
		// first command.
		MaxConnectionsPerNetwork: a.cfg.Limits.SMTP.ConnectionsPerNetwork,
		FirstCommandTimeout:      a.cfg.Limits.SMTP.FirstCommandTimeoutValue(),
		IPv4Prefix:               a.cfg.Limits.IPv4Prefix,
		IPv6Prefix:               a.cfg.Limits.IPv6Prefix,
		HandshakeTimeout:         a.cfg.Limits.TLSHandshakeTimeoutValue(),
		Observe: func(mode smtpd.Mode, outcome string) {
			m.messages.WithLabelValues(mode.String(), outcome).Inc()
		},
		Connected: func(listener string) { m.sessions.WithLabelValues(listener).Inc() },
	}
	if relay != nil {
		o.Relay, o.SRS = relay, a.srs
	}
	o.ObserveForward = a.forwardMetric() // metrics_forward.go
	// One group-committing store for every listener (smtpd.Batcher).
	srv := smtpd.NewServer(smtpd.NewBatcher(a.store), a.auth, o)
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skydeskd_smtp_bytes_in_flight",
		Help: "Octets of mail received and not yet stored (bounded by smtp.max_bytes_in_flight)."},
		func() float64 { return float64(srv.BytesInFlight()) }))
	// One server behind every listener: the first shutdown drains them
	// all, the others wait for the same drain.
	eps := []endpoint{
		{name: "smtps", addr: l.SMTPS, serve: srv.ServeTLS, shutdown: srv.Shutdown},
		{name: "submission", addr: l.Submission, serve: srv.Serve, shutdown: srv.Shutdown},
		{name: "mx", addr: l.MX, serve: srv.ServeMX, shutdown: srv.Shutdown},
	}
	for _, ep := range eps {
		if ep.addr != "" {
			m.sessions.WithLabelValues(ep.name) // listed at 0 from the start
		}
	}
	return a.bindAll(eps, smtpd.ErrServerClosed)
}

// smtpRelay returns the relay of smtp.smarthost, nil when there is none.
func (a *app) smtpRelay() (*smtpd.Relay, error) {
	sh := a.cfg.SMTP.Smarthost
	if sh.Host == "" {
		return nil, nil
	}
	period, err := time.ParseDuration(sh.RetryPeriod)
	if err != nil {
		return nil, err // Validate already refused it
	}
	lease, err := time.ParseDuration(sh.ClaimLease)
	if err != nil {
		return nil, err // Validate already refused it
	}
	if sh.TLS == "none" && sh.Username != "" && !loopbackHost(sh.Host) {
		return nil, errors.New("smtp.smarthost: tls none with a username would send the password in clear; use implicit or starttls")
	}
	// Forwarding (smtpd/forward.go) rewrites senders under a key every
	// node shares (srs-key, secrets.go), so addresses stay valid across
	// restarts and whichever node's MX a bounce reaches.
	if a.srs, err = smtpd.NewSRS(a.secret("srs-key"), nil); err != nil {
		return nil, err
	}
	a.relay = smtpd.NewRelay(a.store, smtpd.RelayOptions{
		Host: sh.Host, Port: sh.Port, TLS: sh.TLS, Username: sh.Username, Password: sh.Password,
		RetryPeriod: period, Hostname: a.cfg.SMTP.Hostname, Logger: a.log.With("service", "smtp-relay"), SRS: a.srs,
		ClaimLease: lease,
	})
	// Every node's relay works the shared queue: mail queued on another
	// node wakes this one (PostgreSQL LISTEN/NOTIFY), not its poll timer.
	a.store.OnQueueChanged(a.relay.Wake)
	return a.relay, nil
}

// OnQueueChanged: one SQLite file is one node, whose accepting session
// wakes its relay itself.
func (sqliteDriver) OnQueueChanged(func()) {}

// checkPostmaster warns once at start when the MX would refuse mail for
// postmaster@ every local domain without a postmaster account of its own,
// which RFC 5321 §4.5.1 forbids: smtp.postmaster names no account. The
// warning carries the admin command that fixes it. Empty smtp.postmaster
// is the operator's choice and not warned about.
func (a *app) checkPostmaster() {
	pm := a.cfg.SMTP.Postmaster
	if pm == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := a.store.AccountExists(ctx, pm)
	if err != nil {
		a.log.Warn("checking the smtp.postmaster account", "account", pm, "err", err)
		return
	}
	if ok {
		return
	}
	fix := "skydeskd user add " + shellQuote(pm) + " --password-stdin" + a.adminFlags
	if addr, err := profiles.NormalizeAddress(pm); err == nil && !a.store.IsLocalDomain(addr.Domain) {
		fix = "skydeskd domain add " + addr.Domain + a.adminFlags + "; then " + fix
	}
	a.log.Warn("smtp.postmaster names no account: the MX refuses mail for postmaster@ of domains without their own postmaster account (RFC 5321 §4.5.1)",
		"key", "smtp.postmaster", "account", pm, "fix", fix+` (or point smtp.postmaster at an existing account)`)
}

// smtpMetrics are the SMTP counters on /metrics (AUTH outcomes are
// skydeskd_logins_total{service="smtp"}).
type smtpMetrics struct {
	sessions *prometheus.CounterVec
	messages *prometheus.CounterVec
}

func (a *app) smtpMetrics() smtpMetrics {
	m := smtpMetrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skydeskd_smtp_connections_total",
			Help: "SMTP connections accepted, by listener."}, []string{"listener"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skydeskd_smtp_messages_total",
			Help: "SMTP transaction outcomes (accepted, queued, spam, spam_refused, spam_deferred, unknown_rcpt, rcpt_limited, relay_denied, sender_mismatch, too_big, mailbox_full, over_quota, rate_limited, busy, temp_error) by service."},
			[]string{"service", "outcome"}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skydeskd_smtp_queue_recipients",
		Help: "Recipients waiting in the outbound (smarthost) queue."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := a.store.QueueLen(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	a.reg.MustRegister(m.sessions, m.messages, queue)
	return m
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

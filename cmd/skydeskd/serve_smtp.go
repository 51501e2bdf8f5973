package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store"
)

// smtpGrace is how long shutdown lets a transaction in progress finish
// before closing connections (an unfinished DATA was never acknowledged,
// so the client retries: nothing is lost).
const smtpGrace = 3 * time.Second

// smtpComponents starts SMTPS (465, implicit TLS), submission (587,
// STARTTLS) and the MX (25), plus the smarthost relay when configured.
func (a *app) smtpComponents() ([]component, error) {
	var relay *smtpd.Relay
	sh := a.cfg.SMTP.Smarthost
	if sh.Host != "" {
		period, err := time.ParseDuration(sh.RetryPeriod)
		if err != nil {
			return nil, err // Validate already refused it
		}
		if sh.TLS == "none" && sh.Username != "" && !loopbackHost(sh.Host) {
			return nil, errors.New("smtp.smarthost: tls none with a username would send the password in clear; use implicit or starttls")
		}
		relay = smtpd.NewRelay(a.store, smtpd.RelayOptions{
			Host: sh.Host, Port: sh.Port, TLS: sh.TLS, Username: sh.Username, Password: sh.Password,
			RetryPeriod: period, Hostname: a.cfg.SMTP.Hostname, Logger: a.log.With("service", "smtp-relay"),
		})
	}
	if a.cfg.Listen.MX != "" {
		a.checkPostmaster()
	}
	m := a.smtpMetrics()
	scanner, err := a.spamScanner()
	if err != nil {
		return nil, err
	}
	opts := func() smtpd.Options {
		o := smtpd.Options{
			Hostname:       a.cfg.SMTP.Hostname,
			TLSConfig:      a.cert.ServerTLS(),
			MaxMessageSize: a.cfg.SMTP.MaxMessageSize,
			Postmaster:     a.cfg.SMTP.Postmaster,
			Relay:          relay != nil,
			Scanner:        scanner,
			Logger:         a.log,
			Observe: func(mode smtpd.Mode, outcome string) {
				m.messages.WithLabelValues(mode.String(), outcome).Inc()
			},
		}
		if relay != nil {
			o.Queued = relay.Wake
		}
		return o
	}
	// One group-committing store for every listener (smtpd.Batcher).
	st := smtpd.NewBatcher(a.store)
	var out []component
	fail := func(err error) ([]component, error) {
		for _, c := range out {
			_ = c.shutdown(context.Background())
		}
		return nil, err
	}
	for _, l := range []struct {
		name     string
		addr     string
		mode     smtpd.Mode
		implicit bool
	}{
		{"smtps", a.cfg.Listen.SMTPS, smtpd.Submission, true},
		{"submission", a.cfg.Listen.Submission, smtpd.Submission, false},
		{"mx", a.cfg.Listen.MX, smtpd.MX, false},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := listen(l.addr)
		if err != nil {
			return fail(err)
		}
		o := opts()
		srv := smtpd.NewServer(l.mode, st, a.auth, o)
		tl := &trackListener{Listener: ln, conns: map[net.Conn]struct{}{}, accepted: m.sessions.WithLabelValues(l.name),
			max: maxSMTPConns, plaintext: !l.implicit}
		var serveOn net.Listener = tl
		if l.implicit {
			serveOn = tls.NewListener(tl, o.TLSConfig)
		}
		out = append(out, component{name: l.name, addr: ln.Addr(),
			serve: func() error {
				if err := srv.Serve(serveOn); err != nil && !errors.Is(err, net.ErrClosed) {
					return err
				}
				return nil
			},
			shutdown: func(ctx context.Context) error { return shutdownSMTP(ctx, srv, tl) },
		})
	}
	if relay != nil {
		ctx, cancel := context.WithCancel(context.Background())
		started, done := make(chan struct{}), make(chan struct{})
		out = append(out, component{name: "smtp-relay", addr: relayAddr(net.JoinHostPort(sh.Host, strconv.Itoa(sh.Port))),
			serve: func() error {
				close(started)
				defer close(done)
				relay.Run(ctx)
				return nil
			},
			shutdown: func(sctx context.Context) error {
				cancel()
				select {
				case <-started:
				default:
					return nil // never started; a late start sees ctx done at once
				}
				select {
				case <-done:
					return nil
				case <-sctx.Done():
					return sctx.Err()
				}
			},
		})
	}
	return out, nil
}

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
	if addr, err := store.NormalizeAddress(pm); err == nil && !a.store.IsLocalDomain(addr.Domain) {
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
			Help: "SMTP transaction outcomes (accepted, queued, spam, unknown_rcpt, relay_denied, sender_mismatch, too_big, temp_error) by service."},
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

// relayAddr names the smarthost in the listener list.
type relayAddr string

func (r relayAddr) Network() string { return "smarthost" }
func (r relayAddr) String() string  { return "→ " + string(r) }

// shutdownSMTP stops accepting, gives transactions smtpGrace to finish,
// then closes the remaining (idle) connections. go-smtp's Shutdown alone
// would wait for idle clients until their read timeout.
func shutdownSMTP(ctx context.Context, srv *smtp.Server, tl *trackListener) error {
	// Close the listener ourselves as well: go-smtp closes only listeners
	// Serve has registered, and Serve may not have started yet.
	_ = tl.Close()
	gctx, cancel := context.WithTimeout(ctx, smtpGrace)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Shutdown(ctx) }()
	select {
	case err := <-errc:
		return ignoreSMTPClosed(err)
	case <-gctx.Done():
	}
	tl.closeAll()
	return ignoreSMTPClosed(<-errc)
}

func ignoreSMTPClosed(err error) error {
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// maxSMTPConns bounds open connections per listener: go-smtp has no
// limit of its own, and each connection holds a goroutine and buffers.
const maxSMTPConns = 1000

// tooBusy is RFC 5321 §3.8's reply for a server that cannot take the
// connection now.
const tooBusy = "421 4.7.0 Too many connections, try again later\r\n"

// trackListener remembers accepted connections so shutdown can close them,
// and refuses connections beyond max.
type trackListener struct {
	net.Listener
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool
	accepted  prometheus.Counter
	max       int
	plaintext bool // the 421 can be written (not before a TLS handshake)
}

func (l *trackListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		if l.max > 0 && len(l.conns) >= l.max {
			l.mu.Unlock()
			if l.plaintext {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.Write([]byte(tooBusy))
			}
			c.Close()
			continue
		}
		l.accepted.Inc()
		tc := &trackedConn{Conn: c, l: l}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

func (l *trackListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.conns {
		c.(*trackedConn).Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

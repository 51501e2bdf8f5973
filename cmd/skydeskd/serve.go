package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/internal/proxyproto"
	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store"
)

// app is the wiring shared by every listener.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	store    storeDriver
	auth     *store.Authenticator
	resolver *profiles.Resolver
	cert     *config.Certificate
	acme     acmeWiring // serve_acme.go
	// onboarding records discoveries and first logins (onboarding.go).
	onboarding *onboardingRecorder
	reg        *prometheus.Registry
	dev        bool
	// srs rewrites forwarded senders; relay sends queued mail (nil
	// without smtp.smarthost). Set by smtpRelay.
	srs   *smtpd.SRS
	relay *smtpd.Relay
	// adminFlags are the flags that point an admin command at this
	// instance's store (" --config FILE" or " --data DIR"), for hints.
	adminFlags string
	// secrets are the keys every node shares (secrets.go).
	secrets map[string][]byte
	// ready is closed once every listener is bound (for tests).
	ready chan struct{}
}

// component is one running server: serve blocks until the listener is
// closed; shutdown stops accepting and drains.
type component struct {
	name     string
	addr     net.Addr
	serve    func() error
	shutdown func(ctx context.Context) error
}

// shutdownTimeout bounds the drain on SIGINT/SIGTERM.
const shutdownTimeout = 15 * time.Second

func cmdServe(ctx context.Context, args []string, e env) error {
	var c common
	fs := newFlags("serve", &c)
	dev := fs.Bool("dev", false, "quick start: 127.0.0.1 only, unprivileged ports, demo data")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var cfg *config.Config
	var err error
	if *dev {
		dir := c.dataDir
		if dir == "" {
			return usagef("serve --dev: --data DIR is required")
		}
		if c.configFile != "" {
			return usagef("serve --dev: takes --data, not --config")
		}
		cfg = config.Dev(dir)
		if err := cfg.Validate(); err != nil {
			return err
		}
	} else if cfg, err = c.load(); err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, *dev, e)
	if err != nil {
		return err
	}
	defer a.store.Close()
	a.adminFlags = c.adminFlags()
	return a.run(ctx, e)
}

func newLogger(cfg *config.Config, e env) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.Log.Format
	if format == "auto" {
		format = "json"
		if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(e.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(e.stderr, opts))
}

// passwordHashGauge exports one of store.HashSlots' counts as
// skydeskd_password_hashes{state}.
func passwordHashGauge(state string, get func() int) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "skydeskd_password_hashes",
		Help:        "argon2id password hashes running and waiting for a slot (at most one runs per CPU).",
		ConstLabels: prometheus.Labels{"state": state},
	}, func() float64 { return float64(get()) })
}

func newApp(ctx context.Context, cfg *config.Config, dev bool, e env) (*app, error) {
	a := &app{cfg: cfg, dev: dev, log: newLogger(cfg, e), reg: prometheus.NewRegistry(), ready: make(chan struct{})}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hp := hashParams(e.getenv)
	s, err := openStore(ctx, cfg, hp)
	if err != nil {
		return nil, err
	}
	a.store = s
	if err := a.loadSecrets(ctx); err != nil {
		s.Close()
		return nil, err
	}
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skydeskd_logins_total", Help: "Login attempts by service and outcome.",
	}, []string{"service", "outcome"})
	a.reg.MustRegister(logins,
		passwordHashGauge("running", func() int { r, _, _ := store.HashSlots(); return r }),
		passwordHashGauge("waiting", func() int { _, w, _ := store.HashSlots(); return w }))
	policy := store.DefaultThrottlePolicy
	policy.FreeFailures = cfg.Auth.FailuresBeforeDelay
	policy.LockAfter = cfg.Auth.FailuresBeforeLock
	policy.LockFor = cfg.Auth.LockDurationValue()
	policy.NetworkLockAfter = cfg.Auth.NetworkFailuresBeforeLock
	policy.IPv4Prefix, policy.IPv6Prefix = cfg.Auth.IPv4Prefix, cfg.Auth.IPv6Prefix
	if a.onboarding, err = newOnboardingRecorder(s, a.log.With("component", "onboarding"), a.reg); err != nil {
		s.Close()
		return nil, err
	}
	a.auth, err = store.NewAuthenticator(s, store.AuthOptions{Policy: policy, SettingsURL: settingsURL(cfg), HashParams: hp, Observe: func(svc store.Service, outcome string) {
		logins.WithLabelValues(string(svc), outcome).Inc()
	}, LoggedIn: a.onboarding.LoggedIn, Logger: a.log.With("component", "auth")})
	if err != nil {
		s.Close()
		return nil, err
	}
	settings := profileSettings(cfg)
	a.resolver = profiles.NewResolver(settings, s)
	if a.cert, err = cfg.LoadCertificate(); err != nil {
		s.Close()
		return nil, err
	}
	if dev {
		if err := a.seedDemo(ctx, e); err != nil {
			s.Close()
			return nil, fmt.Errorf("adding demo data: %w", err)
		}
	}
	return a, nil
}

// profileSettings converts the provider section for profiles.
func profileSettings(cfg *config.Config) profiles.Settings {
	p := cfg.Provider
	lower := strings.ToLower
	return profiles.Settings{
		Provider: profiles.Provider{
			ID: p.ID, Name: p.Name, ShortName: p.ShortName, HelpURL: p.HelpURL, WebURL: p.WebURL,
			AutoconfigHost: lower(p.AutoconfigHost), AutodiscoverHost: lower(p.AutodiscoverHost),
		},
		PersonalDomain:      lower(p.PersonalDomain),
		PersonalPOPHost:     lower(p.POP.PersonalHost),
		OrganizationPOPHost: lower(p.POP.OrganizationHost),
		POPPort:             p.POP.Port,
		SMTPHost:            lower(p.SMTP.Host),
		SMTPImplicitTLSPort: p.SMTP.ImplicitTLSPort,
		SMTPSTARTTLSPort:    p.SMTP.STARTTLSPort,
	}
}

// listen binds a TCP listener for a configured address ("" = disabled).
func listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return l, nil
}

// proxied wraps l, the listener named name (a config.ProxyListeners
// name), to read PROXY headers from the balancers of proxy_protocol when
// that section lists it, so everything downstream (connection caps, login
// throttles, logs) sees the client. Wrapped below TLS: the header comes
// before the ClientHello.
func (a *app) proxied(name string, l net.Listener) net.Listener {
	p := a.cfg.ProxyProtocol
	if !p.On(name) {
		return l
	}
	return proxyproto.Wrap(l, proxyproto.Options{Trusted: p.TrustedPrefixes(),
		HeaderTimeout: p.HeaderTimeoutValue(), Logger: a.log.With("service", name)})
}

// endpoint is one configured listener of a server: serve runs the
// server on it, shutdown stops the server.
type endpoint struct {
	name     string
	addr     string // "" = disabled
	serve    func(net.Listener) error
	shutdown func(context.Context) error
}

// bindAll listens on every enabled endpoint and returns a component for
// each; serve returning closed (the server's ErrServerClosed) is a clean
// stop. If one address cannot be bound, the listeners bound before it are
// closed and the error returned.
func (a *app) bindAll(eps []endpoint, closed error) ([]component, error) {
	var out []component
	for _, ep := range eps {
		if ep.addr == "" {
			continue
		}
		l, err := listen(ep.addr)
		if err != nil {
			stopAll(out)
			return nil, err
		}
		l = a.proxied(ep.name, l)
		out = append(out, component{name: ep.name, addr: l.Addr(),
			serve: func() error {
				if err := ep.serve(l); err != nil && !errors.Is(err, closed) {
					return err
				}
				return nil
			},
			shutdown: func(ctx context.Context) error {
				err := ep.shutdown(ctx)
				// A listener never served is not the server's to close.
				_ = l.Close()
				if err != nil && !errors.Is(err, net.ErrClosed) {
					return err
				}
				return nil
			}})
	}
	return out, nil
}

// stopAll shuts down components that were set up but will not run,
// because one set up after them failed.
func stopAll(cs []component) {
	for _, c := range cs {
		_ = c.shutdown(context.Background())
	}
}

// components sets up every server; the one place they are listed.
func (a *app) components() ([]component, error) {
	var all []component
	for _, f := range []func() ([]component, error){a.httpComponents, a.dnsComponents, a.popComponents, a.smtpComponents} {
		cs, err := f()
		if err != nil {
			stopAll(all)
			return nil, err
		}
		all = append(all, cs...)
	}
	return all, nil
}

func (a *app) run(ctx context.Context, e env) error {
	if err := a.newACME(); err != nil {
		return err
	}
	comps, err := a.components()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.store.WatchDomains(ctx, time.Second, func(err error) { a.log.Warn("refreshing domains", "err", err) })
	go a.runACME(ctx, comps)
	go a.onboarding.run(ctx)

	g := new(errgroup.Group)
	for _, c := range comps {
		a.log.Info("listening", "service", c.name, "addr", c.addr.String())
		g.Go(func() error {
			if err := c.serve(); err != nil {
				cancel()
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	close(a.ready)
	if a.dev {
		a.printDev(e, comps)
	}
	<-ctx.Done()
	a.log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.shutdown(sctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	errs = append(errs, g.Wait())
	err = errors.Join(errs...)
	a.log.Info("stopped", "err", err)
	return err
}

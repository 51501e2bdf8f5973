package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/autoconfig"
	"github.com/skydesk/skydeskd/store"
)

// formatSetupPage names the setup page among the discovery formats
// (autoconfig.Format names the others: thunderbird, autodiscover_xml,
// autodiscover_json, mobileconfig). DNS SRV is not per address, so it has
// no figures.
const formatSetupPage = "setup_page"

// Bounds of the onboarding recorder. Discoveries are written to the
// store synchronously (so a login right after one is counted, and the
// counters are exact when a client sees its answer), but at most once
// per (address, format) per store.OnboardingWindow, and at most
// discoveryRate per second: a scan of made-up addresses cannot turn the
// read-only autoconfig service into a stream of database writes. A login
// is looked up at most once per address per loginRecheck.
const (
	maxTracked     = 20_000
	discoveryRate  = 50.0 // writes per second, sustained
	discoveryBurst = 200
	loginRecheck   = 5 * time.Minute
	settleEvery    = time.Minute
	onboardingTime = 2 * time.Second // bounds one store call on a request path
)

// onboardingRecorder turns discoveries (autoconfig.Options.Discovered,
// the setup page) and logins (store.AuthOptions.LoggedIn) into the store's
// onboarding records and skydeskd_onboarding_total{format,outcome}. No
// address reaches a label; the store keeps only keyed hashes.
type onboardingRecorder struct {
	st    store.Onboarding
	log   *slog.Logger
	now   func() time.Time
	total *prometheus.CounterVec

	// disc and logins are read on every autoconfig answer and every
	// login: lock-free reads (sync.Map), as the autoconfig fast path is.
	disc   recent[discoveryKey] // last discovery written
	logins recent[string]       // last login looked up

	mu     sync.Mutex // the token bucket
	tokens float64
	filled time.Time
}

type discoveryKey struct{ format, address string }

func newOnboardingRecorder(st store.Onboarding, log *slog.Logger, reg prometheus.Registerer) (*onboardingRecorder, error) {
	r := &onboardingRecorder{st: st, log: log, now: time.Now, tokens: discoveryBurst,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skydeskd_onboarding_total",
			Help: "Addresses that asked a discovery format for their settings, by format and whether they " +
				"logged in to POP or SMTP within an hour (first_login) or not (no_login).",
		}, []string{"format", "outcome"})}
	if err := reg.Register(r.total); err != nil {
		return nil, err
	}
	// Export every series from the start, at 0.
	for f := range autoconfig.Format(autoconfig.NumFormats) {
		if f.String() != "other" {
			r.total.WithLabelValues(f.String(), "first_login")
			r.total.WithLabelValues(f.String(), "no_login")
		}
	}
	r.total.WithLabelValues(formatSetupPage, "first_login")
	r.total.WithLabelValues(formatSetupPage, "no_login")
	return r, nil
}

// Autoconfig is the autoconfig.Options.Discovered hook.
func (r *onboardingRecorder) Autoconfig(f autoconfig.Format, address string) {
	r.Discovered(f.String(), address)
}

// Discovered records that address (normalised) asked format for its
// settings.
func (r *onboardingRecorder) Discovered(format, address string) {
	now := r.now()
	k := discoveryKey{format, address}
	if r.disc.fresh(k, now, store.OnboardingWindow) {
		return
	}
	r.mu.Lock()
	ok := r.take(now)
	r.mu.Unlock()
	if !ok || !r.disc.mark(k, now, store.OnboardingWindow) {
		r.log.Debug("onboarding: discovery not recorded (rate or memory bound)", "format", format)
		return
	}
	r.logins.forget(address) // the next login must be looked up
	ctx, cancel := context.WithTimeout(context.Background(), onboardingTime)
	defer cancel()
	if _, err := r.st.RecordDiscovery(ctx, address, format, now); err != nil {
		r.log.Warn("recording a discovery", "format", format, "err", err)
	}
}

// LoggedIn is the store.AuthOptions.LoggedIn hook: a POP or SMTP login
// settles the address's waiting discoveries as first logins.
func (r *onboardingRecorder) LoggedIn(svc store.Service, address string) {
	if svc != store.ServicePOP3 && svc != store.ServiceSMTP {
		return
	}
	now := r.now()
	if r.logins.fresh(address, now, loginRecheck) || !r.logins.mark(address, now, loginRecheck) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), onboardingTime)
	defer cancel()
	formats, err := r.st.RecordLogin(ctx, address, now)
	if err != nil {
		r.log.Warn("recording a first login", "err", err)
	}
	for _, f := range formats {
		r.total.WithLabelValues(f, "first_login").Inc()
	}
}

// run settles discoveries without a login as no_login every settleEvery
// (and prunes old records) until ctx ends.
func (r *onboardingRecorder) run(ctx context.Context) {
	t := time.NewTicker(settleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.settle(ctx)
		}
	}
}

func (r *onboardingRecorder) settle(ctx context.Context) {
	formats, err := r.st.SettleOnboarding(ctx, r.now())
	if err != nil {
		r.log.Warn("settling onboarding records", "err", err)
	}
	for _, f := range formats {
		r.total.WithLabelValues(f, "no_login").Inc()
	}
}

// take spends one discovery-write token (a token bucket; r.mu held).
func (r *onboardingRecorder) take(now time.Time) bool {
	if !r.filled.IsZero() {
		r.tokens = min(discoveryBurst, r.tokens+now.Sub(r.filled).Seconds()*discoveryRate)
	}
	r.filled = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// recent remembers when each key was last seen, for at most maxTracked
// keys. Reads take no lock.
type recent[K comparable] struct {
	m  sync.Map // K → time.Time
	n  atomic.Int64
	mu sync.Mutex // pruning
}

// fresh: k was marked less than ttl ago.
func (c *recent[K]) fresh(k K, now time.Time, ttl time.Duration) bool {
	v, ok := c.m.Load(k)
	return ok && now.Sub(v.(time.Time)) < ttl
}

// mark records k at now; false if the set is full of keys younger than
// ttl (then nothing is recorded).
func (c *recent[K]) mark(k K, now time.Time, ttl time.Duration) bool {
	if c.n.Load() >= maxTracked {
		c.mu.Lock()
		c.m.Range(func(k, v any) bool {
			if now.Sub(v.(time.Time)) >= ttl {
				if _, ok := c.m.LoadAndDelete(k); ok {
					c.n.Add(-1)
				}
			}
			return true
		})
		c.mu.Unlock()
		if c.n.Load() >= maxTracked {
			return false
		}
	}
	if _, loaded := c.m.Swap(k, now); !loaded {
		c.n.Add(1)
	}
	return true
}

func (c *recent[K]) forget(k K) {
	if _, ok := c.m.LoadAndDelete(k); ok {
		c.n.Add(-1)
	}
}

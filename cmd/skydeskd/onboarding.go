package main

import (
	"context"
	"log/slog"
	"sync"
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

	mu     sync.Mutex
	disc   map[discoveryKey]time.Time // last discovery written
	logins map[string]time.Time       // last login looked up
	tokens float64
	filled time.Time
}

type discoveryKey struct{ format, address string }

func newOnboardingRecorder(st store.Onboarding, log *slog.Logger, reg prometheus.Registerer) (*onboardingRecorder, error) {
	r := &onboardingRecorder{st: st, log: log, now: time.Now, disc: map[discoveryKey]time.Time{},
		logins: map[string]time.Time{}, tokens: discoveryBurst,
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
	r.mu.Lock()
	if t, ok := r.disc[k]; ok && now.Sub(t) < store.OnboardingWindow {
		r.mu.Unlock()
		return
	}
	if !r.take(now) || !room(r.disc, now, store.OnboardingWindow) {
		r.mu.Unlock()
		r.log.Debug("onboarding: discovery not recorded (rate or memory bound)", "format", format)
		return
	}
	r.disc[k] = now
	delete(r.logins, address) // the next login must be looked up
	r.mu.Unlock()
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
	r.mu.Lock()
	if t, ok := r.logins[address]; ok && now.Sub(t) < loginRecheck {
		r.mu.Unlock()
		return
	}
	if !room(r.logins, now, loginRecheck) {
		r.mu.Unlock()
		return
	}
	r.logins[address] = now
	r.mu.Unlock()
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

// room makes room for one more entry in m (maxTracked), dropping entries
// older than ttl; false if every entry is younger.
func room[K comparable](m map[K]time.Time, now time.Time, ttl time.Duration) bool {
	if len(m) < maxTracked {
		return true
	}
	for k, t := range m {
		if now.Sub(t) >= ttl {
			delete(m, k)
		}
	}
	return len(m) < maxTracked
}

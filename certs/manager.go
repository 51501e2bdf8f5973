// Package certs obtains and renews trusted certificates by ACME (RFC 8555)
// for exactly the names clients fetch: the service host names and, for
// every hosted domain, autoconfig.<domain> and autodiscover.<domain>.
//
// certmagic does the ACME work (HTTP-01 and TLS-ALPN-01, RFC 8737, on our
// own listeners; renewal ahead of expiry without a restart) on a Storage
// shared by every node, so one node orders and every node serves. What
// this package adds:
//   - one certificate per name, never batched: one organization's broken
//     DNS cannot block the others (mailcow and Mail-in-a-Box batch names);
//   - a DNS pre-check before the first order, retried with backoff, so a
//     name that does not point at us yet never costs a failed validation;
//   - no on-demand issuance: a name outside the managed list never gets a
//     certificate, whatever SNI a client sends (Caddy's open on-demand mode
//     has been abused to order names nobody owns);
//   - a removed domain's names are dropped from the cache and not served.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"
)

// LetsEncrypt is the default CA directory.
const LetsEncrypt = certmagic.LetsEncryptProductionCA

// Options configure a Manager. Backend, Check and ServiceNames are
// required.
type Options struct {
	// CA is the ACME directory URL; "" means Let's Encrypt's production one.
	CA    string
	Email string
	// KeyType is p256 (default), p384, rsa2048 or rsa4096.
	KeyType string
	// TrustedRoots verify the CA's own HTTPS endpoint (a private or test
	// CA); nil means the system roots.
	TrustedRoots *x509.CertPool
	Backend      Backend
	// ServiceNames are always managed (web, autoconfig, autodiscover, POP
	// and SMTP hosts).
	ServiceNames []string
	// Check is the DNS pre-check (Checker.Check); nil error = points at us.
	Check func(ctx context.Context, name string) error
	// HTTPAddr and TLSAddr are the bound addresses of our HTTP and HTTPS
	// listeners, which answer HTTP-01 (HTTPHandler) and TLS-ALPN-01
	// (GetCertificate). "" disables that challenge type. Both empty: set
	// them with SetChallengeAddrs before Run.
	HTTPAddr, TLSAddr string
	// DefaultName is the certificate for clients that send no SNI.
	DefaultName string
	// Fallback is served when no managed certificate matches (no SNI match,
	// not issued yet, a name outside the list); nil fails the handshake.
	Fallback *tls.Certificate
	// RenewalWindowRatio is the part of a certificate's lifetime left when
	// it is renewed; 0 means certmagic's default (1/3).
	RenewalWindowRatio float64
	// RenewCheckInterval is how often certificates are checked for renewal;
	// 0 means certmagic's default (10 minutes).
	RenewCheckInterval time.Duration
	// RetryMin and RetryMax bound the pre-check backoff; 0 means 1 minute
	// and 1 hour.
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
	// Observe, if set, is told of events for metrics: "precheck_failed",
	// "order", "obtained", "failed", "renewal_failed".
	Observe func(event, name string)
}

// Manager keeps the managed names' certificates. It is safe for concurrent
// use.
type Manager struct {
	opts    Options
	log     *slog.Logger
	storage *Storage
	cache   *certmagic.Cache
	cfg     *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	wake    chan struct{}

	mu      sync.Mutex
	domains []string
	desired map[string]bool
	states  map[string]*nameState
}

// nameState is what the Manager knows of one desired name.
type nameState struct {
	managed bool // handed to certmagic
	next    time.Time
	backoff time.Duration
}

// New builds a Manager; nothing is ordered before Run.
func New(opts Options) (*Manager, error) {
	if opts.Backend == nil || opts.Check == nil {
		return nil, errors.New("certs: Backend and Check are required")
	}
	if opts.CA == "" {
		opts.CA = LetsEncrypt
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Minute
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Hour
	}
	kt, err := keyType(opts.KeyType)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{opts: opts, log: log, storage: NewStorage(opts.Backend), wake: make(chan struct{}, 1),
		desired: map[string]bool{}, states: map[string]*nameState{}}
	zl := zap.New(newZapCore(log, nil))
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: opts.RenewCheckInterval,
		Logger:             zl,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: opts.RenewalWindowRatio,
		KeySource:          certmagic.StandardKeyGenerator{KeyType: kt},
		Storage:            m.storage,
		OnEvent:            m.onEvent,
		// Let's Encrypt ended OCSP in 2025; stapling would only fetch
		// responses nobody needs.
		OCSP:   certmagic.OCSPConfig{DisableStapling: true},
		Logger: zl,
	})
	tmpl := certmagic.ACMEIssuer{
		CA: opts.CA, Email: opts.Email, Agreed: true, TrustedRoots: opts.TrustedRoots, Logger: zl,
		// No challenge until SetChallengeAddrs names our listeners, so
		// certmagic never binds ports 80 and 443 itself.
		DisableHTTPChallenge: true, DisableTLSALPNChallenge: true,
	}
	m.issuer = certmagic.NewACMEIssuer(m.cfg, tmpl)
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	if opts.HTTPAddr != "" || opts.TLSAddr != "" {
		if err := m.SetChallengeAddrs(opts.HTTPAddr, opts.TLSAddr); err != nil {
			return nil, err
		}
	}
	m.SetDomains(nil)
	return m, nil
}

// SetChallengeAddrs names the bound HTTP and HTTPS listeners that answer
// HTTP-01 (HTTPHandler) and TLS-ALPN-01 (GetCertificate); "" disables that
// challenge type. Call it before Run.
func (m *Manager) SetChallengeAddrs(httpAddr, tlsAddr string) error {
	if httpAddr == "" && tlsAddr == "" {
		return errors.New("certs: neither an HTTP nor an HTTPS listener answers challenges")
	}
	// certmagic binds a challenge listener of its own unless the port is
	// taken; pointing it at our bound listeners makes it find them busy
	// and leave the answering to HTTPHandler and GetCertificate.
	httpHost, httpPort, err := hostPort(httpAddr)
	if err != nil {
		return err
	}
	tlsHost, tlsPort, err := hostPort(tlsAddr)
	if err != nil {
		return err
	}
	if httpAddr != "" && tlsAddr != "" && httpHost != tlsHost {
		return fmt.Errorf("certs: HTTP (%s) and HTTPS (%s) listeners must share one host for the challenges", httpAddr, tlsAddr)
	}
	iss := m.issuer
	iss.DisableHTTPChallenge, iss.DisableTLSALPNChallenge = httpAddr == "", tlsAddr == ""
	iss.ListenHost, iss.AltHTTPPort, iss.AltTLSALPNPort = httpHost, httpPort, tlsPort
	if httpAddr == "" {
		iss.ListenHost = tlsHost
	}
	return nil
}

func hostPort(addr string) (string, int, error) {
	if addr == "" {
		return "", 0, nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("certs: listener address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("certs: listener address %q: %w", addr, err)
	}
	return h, port, nil
}

func keyType(s string) (certmagic.KeyType, error) {
	switch strings.ToLower(s) {
	case "", "p256":
		return certmagic.P256, nil
	case "p384":
		return certmagic.P384, nil
	case "rsa2048":
		return certmagic.RSA2048, nil
	case "rsa4096":
		return certmagic.RSA4096, nil
	}
	return "", fmt.Errorf("certs: key type %q is not p256, p384, rsa2048 or rsa4096", s)
}

// Names returns the managed names for the service names and hosted
// domains: each service name, and autoconfig.<d> and autodiscover.<d> for
// every domain d; lower case, without duplicates, in order.
func Names(service, domains []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		n = canonical(n)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range service {
		add(n)
	}
	for _, d := range domains {
		add("autoconfig." + d)
		add("autodiscover." + d)
	}
	return out
}

// SetDomains replaces the hosted domains (from the store's snapshot); the
// next Run pass orders new names and drops removed ones.
func (m *Manager) SetDomains(domains []string) {
	m.mu.Lock()
	m.domains = slices.Clone(domains)
	m.desired = map[string]bool{}
	for _, n := range Names(m.opts.ServiceNames, domains) {
		m.desired[n] = true
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Managed returns the managed names, service names first.
func (m *Manager) Managed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Names(m.opts.ServiceNames, m.domains)
}

func (m *Manager) isDesired(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.desired[name]
}

// Run reconciles the managed names with the desired ones until ctx ends,
// then stops certmagic's maintenance.
func (m *Manager) Run(ctx context.Context) {
	defer m.cache.Stop()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-t.C:
		}
		next := m.reconcile(ctx)
		t.Stop()
		t.Reset(time.Until(next))
	}
}

// reconcile drops names no longer desired, pre-checks the due ones and
// hands those that pass to certmagic, one name per certificate. It
// returns when it wants to run again.
func (m *Manager) reconcile(ctx context.Context) time.Time {
	m.mu.Lock()
	var drop []certmagic.SubjectIssuer
	for n := range m.states {
		if !m.desired[n] {
			drop = append(drop, certmagic.SubjectIssuer{Subject: n})
			delete(m.states, n)
		}
	}
	var due []string
	next := time.Now().Add(m.opts.RetryMax)
	for n := range m.desired {
		st := m.states[n]
		if st == nil {
			st = &nameState{backoff: m.opts.RetryMin}
			m.states[n] = st
		}
		switch {
		case st.managed:
		case !time.Now().Before(st.next):
			due = append(due, n)
		case st.next.Before(next):
			next = st.next
		}
	}
	m.mu.Unlock()
	if len(drop) > 0 {
		m.cache.RemoveManaged(drop)
		m.log.Info("certificates dropped", "names", len(drop))
	}
	slices.Sort(due)
	for _, n := range due {
		if ctx.Err() != nil {
			break
		}
		err := m.opts.Check(ctx, n)
		if err == nil {
			err = m.cfg.ManageAsync(ctx, []string{n})
		}
		m.mu.Lock()
		st := m.states[n]
		if st == nil { // removed meanwhile
			m.mu.Unlock()
			continue
		}
		if err == nil {
			st.managed = true
		} else {
			st.next = time.Now().Add(st.backoff)
			st.backoff = min(2*st.backoff, m.opts.RetryMax)
			if st.next.Before(next) {
				next = st.next
			}
		}
		m.mu.Unlock()
		if err != nil {
			m.observe("precheck_failed", n)
			m.recordError(ctx, n, err)
			m.log.Info("certificate not ordered yet", "name", n, "err", err)
		}
	}
	return next
}

func (m *Manager) observe(event, name string) {
	if m.opts.Observe != nil {
		m.opts.Observe(event, name)
	}
}

// onEvent follows certmagic's events for metrics, the status kept for
// `skydeskd cert list`, the 14-day warning and dropping a certificate that
// an order finished after its name was removed.
func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	switch event {
	case "cert_obtaining":
		m.observe("order", name)
	case "cert_obtained":
		m.observe("obtained", name)
		m.clearError(context.WithoutCancel(ctx), name)
	case "cert_failed":
		err, _ := data["error"].(error)
		if renewal, _ := data["renewal"].(bool); renewal {
			m.observe("renewal_failed", name)
			if left := m.timeLeft(name); left < 14*24*time.Hour {
				m.log.Warn("certificate renewal failed and it expires soon", "name", name, "left", left.Round(time.Hour), "err", err)
			}
		} else {
			m.observe("failed", name)
		}
		m.recordError(context.WithoutCancel(ctx), name, err)
	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		for _, n := range sans {
			if !m.isDesired(n) {
				go m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: n}})
			}
		}
	}
	return nil
}

// leaf returns the newest cached certificate for name, if any.
func (m *Manager) leaf(name string) (certmagic.Certificate, bool) {
	var best certmagic.Certificate
	ok := false
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && (!ok || c.Leaf.NotAfter.After(best.Leaf.NotAfter)) {
			best, ok = c, true
		}
	}
	return best, ok
}

// timeLeft is the time until name's certificate expires, 0 if none.
func (m *Manager) timeLeft(name string) time.Duration {
	if c, ok := m.leaf(name); ok {
		return time.Until(c.Leaf.NotAfter)
	}
	return 0
}

// Expiry returns the managed names that have a certificate, with its
// expiry (for the seconds-to-expiry gauge).
func (m *Manager) Expiry() map[string]time.Time {
	out := map[string]time.Time{}
	for _, n := range m.Managed() {
		if c, ok := m.leaf(n); ok {
			out[n] = c.Leaf.NotAfter
		}
	}
	return out
}

// Certificate returns the managed certificate for name (with its chain
// and Leaf), or nil if it has none yet.
func (m *Manager) Certificate(name string) *tls.Certificate {
	name = canonical(name)
	if !m.isDesired(name) {
		return nil
	}
	c, ok := m.leaf(name)
	if !ok {
		return nil
	}
	tc := c.Certificate
	tc.Leaf = c.Leaf
	return &tc
}

// GetCertificate is tls.Config.GetCertificate: the TLS-ALPN-01 challenge
// certificate (RFC 8737 §3) for a validation handshake, else the managed
// certificate for the SNI name, else Options.Fallback. Nothing is ever
// ordered here.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.getCertificate(hello, m.opts.DefaultName)
}

// GetCertificateDefault is GetCertificate with def as the name for clients
// that send no SNI (a POP or SMTP listener's own host name).
func (m *Manager) GetCertificateDefault(def string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return m.getCertificate(hello, def) }
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo, def string) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
		return m.cfg.GetCertificate(hello)
	}
	name := canonical(hello.ServerName)
	if name == "" {
		name = canonical(def)
	}
	if c := m.Certificate(name); c != nil {
		return c, nil
	}
	if m.opts.Fallback != nil {
		return m.opts.Fallback, nil
	}
	return nil, fmt.Errorf("no certificate for %q", name)
}

// HTTPHandler answers HTTP-01 challenges (RFC 8555 §8.3) for the names
// being ordered, by this node or another sharing the storage, and hands
// every other request to next.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/certs"
	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/templates"
)

// acmeWiring is the app's ACME state.
type acmeWiring struct {
	m *certs.Manager // nil unless acme.enabled
	// setProfileSigner re-signs Apple profiles (set by the autoconfig
	// wiring; called on the first ACME certificate and each renewal).
	setProfileSigner func(*templates.Signer)
}

// acmeServiceNames are the service host names managed by ACME: the web
// (setup page) host and every host a client is told to connect to. The MX
// host is not among them: no client fetches it by name.
func acmeServiceNames(cfg *config.Config) []string {
	p := cfg.Provider
	names := []string{p.AutoconfigHost, p.AutodiscoverHost, p.POP.PersonalHost, p.POP.OrganizationHost, p.SMTP.Host}
	if u, err := url.Parse(p.WebURL); err == nil && u.Hostname() != "" {
		names = append([]string{u.Hostname()}, names...)
	}
	return certs.Names(names, nil)
}

// newACME builds the certificate manager when acme.enabled (before the
// listeners, whose TLS configurations ask it for certificates); it orders
// nothing before runACME.
func (a *app) newACME() error {
	if !a.cfg.ACME.Enabled {
		return nil
	}
	roots, err := a.cfg.ACME.RootPool()
	if err != nil {
		return err
	}
	var ours []netip.Addr
	for _, s := range a.cfg.DNS.Addresses[a.cfg.Provider.AutoconfigHost] {
		if ip, err := netip.ParseAddr(s); err == nil {
			ours = append(ours, ip)
		}
	}
	service := acmeServiceNames(a.cfg)
	m := a.acmeMetrics()
	a.acme.m, err = certs.New(certs.Options{
		CA: a.cfg.ACME.CAURL, Email: a.cfg.ACME.Email, KeyType: a.cfg.ACME.KeyType, TrustedRoots: roots,
		Backend:      a.store.CertBackend(),
		ServiceNames: service,
		Check:        certs.NewChecker(a.cfg.ACME.Resolver, ours, service).Check,
		DefaultName:  a.cfg.Provider.AutoconfigHost,
		Fallback:     &a.cert.TLS,
		Logger:       a.log.With("component", "acme"),
		Observe:      m.observe,
	})
	if err != nil {
		return err
	}
	m.expiry = a.acme.m.Expiry
	// Registered before the domain watcher starts (the hooks are not
	// guarded by a lock).
	a.store.OnDomainsChanged(func() { a.acme.m.SetDomains(a.store.Domains().List()) })
	a.acme.m.SetDomains(a.store.Domains().List())
	return nil
}

// runACME points the manager's challenges at the bound HTTP and HTTPS
// listeners, follows the hosted domains and keeps Apple profiles signed
// with the current certificate, until ctx ends.
func (a *app) runACME(ctx context.Context, comps []component) {
	if a.acme.m == nil {
		return
	}
	var httpAddr, httpsAddr string
	for _, c := range comps {
		switch c.name {
		case "http":
			httpAddr = c.addr.String()
		case "https":
			httpsAddr = c.addr.String()
		}
	}
	if err := a.acme.m.SetChallengeAddrs(httpAddr, httpsAddr); err != nil {
		a.log.Error("acme disabled", "err", err)
		return
	}
	go a.signProfilesWithACME(ctx)
	a.acme.m.Run(ctx)
}

// signProfilesWithACME re-signs Apple profiles with the autoconfig host's
// ACME certificate and chain whenever it changes (first issue, renewal),
// so the profile shows as verified on the device.
func (a *app) signProfilesWithACME(ctx context.Context) {
	if a.acme.setProfileSigner == nil {
		return
	}
	t := time.NewTicker(2 * time.Second) // a map lookup; renewal is rare
	defer t.Stop()
	var last []byte
	for {
		if c := a.acme.m.Certificate(a.cfg.Provider.AutoconfigHost); c != nil && !bytes.Equal(c.Leaf.Raw, last) {
			if key, ok := c.PrivateKey.(crypto.Signer); ok {
				sg := &templates.Signer{Cert: c.Leaf, Key: key}
				for _, der := range c.Certificate[1:] {
					if x, err := x509.ParseCertificate(der); err == nil {
						sg.Chain = append(sg.Chain, x)
					}
				}
				a.acme.setProfileSigner(sg)
				last = c.Leaf.Raw
				a.log.Info("apple profiles signed with the acme certificate", "not_after", c.Leaf.NotAfter)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// serverTLS is the TLS configuration of a listener: the static
// certificate, or with acme.enabled the managed one for the SNI name
// (defaultName for clients without SNI).
func (a *app) serverTLS(defaultName string) *tls.Config {
	c := a.cert.ServerTLS()
	if a.acme.m != nil {
		c.Certificates = nil
		c.GetCertificate = a.acme.m.GetCertificateDefault(defaultName)
	}
	return c
}

// acmeHTTP answers HTTP-01 challenges in front of next.
func (a *app) acmeHTTP(next http.Handler) http.Handler {
	if a.acme.m == nil {
		return next
	}
	return a.acme.m.HTTPHandler(next)
}

// acmeMetrics are the certificate metrics: seconds to expiry per managed
// name (bounded by the managed list), orders and failures.
type acmeMetricSet struct {
	orders   prometheus.Counter
	failures *prometheus.CounterVec
	expiry   func() map[string]time.Time
	desc     *prometheus.Desc
}

func (a *app) acmeMetrics() *acmeMetricSet {
	m := &acmeMetricSet{
		orders: prometheus.NewCounter(prometheus.CounterOpts{Name: "skydeskd_cert_orders_total",
			Help: "ACME orders placed by this node (first certificates and renewals)."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skydeskd_cert_failures_total",
			Help: "Certificate failures by stage: precheck (name not pointing at us), order, renewal."}, []string{"stage"}),
		desc: prometheus.NewDesc("skydeskd_cert_expiry_seconds", "Seconds until the managed certificate of a name expires.", []string{"name"}, nil),
	}
	a.reg.MustRegister(m.orders, m.failures, m)
	return m
}

func (m *acmeMetricSet) observe(event, _ string) {
	switch event {
	case "order":
		m.orders.Inc()
	case "precheck_failed":
		m.failures.WithLabelValues("precheck").Inc()
	case "failed":
		m.failures.WithLabelValues("order").Inc()
	case "renewal_failed":
		m.failures.WithLabelValues("renewal").Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *acmeMetricSet) Describe(ch chan<- *prometheus.Desc) { ch <- m.desc }

// Collect implements prometheus.Collector.
func (m *acmeMetricSet) Collect(ch chan<- prometheus.Metric) {
	if m.expiry == nil {
		return
	}
	for name, t := range m.expiry() {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, time.Until(t).Seconds(), name)
	}
}

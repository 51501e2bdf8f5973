package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/skydesk/skydeskd/autoconfig"
	"github.com/skydesk/skydeskd/internal/httpfront"
	"github.com/skydesk/skydeskd/templates"
)

// webHandlers returns the handler of both HTTP listeners: the web pages
// and the autoconfig service (Thunderbird, Autodiscover POX and JSON,
// signed Apple profiles) side by side. serve_http.go wraps it with
// /healthz and /metrics. Each request says by Request.TLS which listener
// it came to.
//
// hot answers cached documents on the connection itself, before net/http
// (internal/httpfront); handler takes everything else.
type webHandlers struct {
	handler http.Handler
	hot     httpfront.Responder
}

func (a *app) webHandlers() (webHandlers, error) {
	pages, err := a.webPages()
	if err != nil {
		return webHandlers{}, err
	}
	prov := a.resolver.Settings().Provider
	// Plain-HTTP Autodiscover and Apple requests go to the autodiscover
	// host over HTTPS; in --dev there is no such name, so they go to the
	// local HTTPS listener (the web URL).
	redirect := "https://" + prov.AutodiscoverHost
	if a.dev || prov.AutodiscoverHost == "" {
		redirect = strings.TrimSuffix(prov.WebURL, "/")
	}
	obs, err := newAutoconfigMetrics(a.reg)
	if err != nil {
		return webHandlers{}, err
	}
	opts := autoconfig.Options{
		Source:       a.resolver,
		Logger:       a.log.With("component", "autoconfig"),
		Observer:     obs,
		Discovered:   a.onboarding.Autoconfig,
		RedirectBase: redirect,
		ServerName:   prov.AutodiscoverHost,
	}
	if a.cert != nil && a.cert.Leaf != nil && a.cert.Key != nil {
		opts.Signer = &templates.Signer{Cert: a.cert.Leaf, Chain: a.cert.Chain, Key: a.cert.Key}
	}
	srv, err := autoconfig.New(opts)
	if err != nil {
		return webHandlers{}, fmt.Errorf("autoconfig service: %w", err)
	}
	a.acme.setProfileSigner = srv.SetSigner
	return webHandlers{handler: pagesOr(pages, srv.Handler()), hot: srv.Hot()}, nil
}

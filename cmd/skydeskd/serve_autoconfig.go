package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/skydesk/skydeskd/autoconfig"
	"github.com/skydesk/skydeskd/internal/httpfront"
	"github.com/skydesk/skydeskd/templates"
)

// webHandlers returns the handlers of the plain HTTP and the HTTPS
// listeners: the autoconfig service (Thunderbird, Autodiscover POX and
// JSON, signed Apple profiles) with the web pages registered on it.
// serve_http.go wraps both with /healthz and /metrics.
//
// hot answers cached documents on the connection itself, before net/http
// (internal/httpfront); plain and secure take everything else.
type webHandlers struct {
	plain, secure       http.Handler
	hotPlain, hotSecure httpfront.Responder
}

func (a *app) webHandlers() (webHandlers, error) {
	regs, err := a.webRegistrars()
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
	opts := autoconfig.Options{
		Source:       a.resolver,
		Logger:       a.log.With("component", "autoconfig"),
		Registerer:   a.reg,
		Registrars:   regs,
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
	return webHandlers{
		plain: srv.Handler(false), secure: srv.Handler(true),
		hotPlain: srv.Hot(false), hotSecure: srv.Hot(true),
	}, nil
}

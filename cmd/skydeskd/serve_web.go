package main

import (
	"net/http"

	"github.com/skydesk/skydeskd/webui"
)

// webPages returns the setup page and settings screen (package webui).
// The CSRF key is a secret every node shares (secrets.go); sessions live
// in the store, so they survive a restart, and every credential change
// (here or by an admin command such as `user passwd`) ends them. With a
// session's id the same secret keys its scratch (the notice after a form,
// a new app password in it, a pending two-step secret), which the store
// keeps sealed next to the session (webui/scratch.go): behind a balancer
// any node serves the page a form redirects to, no sticky routing.
func (a *app) webPages() (*webui.Handler, error) {
	p := a.cfg.Provider
	return webui.New(webui.Options{
		Resolver: a.resolver,
		Store:    a.store,
		Auth:     a.auth,
		Provider: p.Name,
		HelpURL:  p.HelpURL,
		WebURL:   p.WebURL,
		Secret:   a.secret("web-secret"),
		Log:      a.log.With("service", "web"),
		Location: p.Location(),
		Discovered: func(address string) {
			a.onboarding.Discovered(formatSetupPage, address)
		},
		// Forwarding: smtpComponents sets a.relay after this, before
		// anything is served.
		Relay: a.cfg.SMTP.Smarthost.Host != "",
		Wake: func() {
			if a.relay != nil {
				a.relay.Wake()
			}
		},
	})
}

// pagesOr sends the requests for the pages to pages and every other one
// to next (the autoconfig service). Both listeners use it: over plain
// HTTP the pages redirect to provider.web_url, and the autoconfig service
// redirects Autodiscover and Apple requests to HTTPS.
func pagesOr(pages *webui.Handler, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pages.Serves(r) {
			pages.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

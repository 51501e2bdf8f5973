package main

import (
	"fmt"

	"github.com/skydesk/skydeskd/autoconfig"
)

// webRegistrars returns the setup page and settings screen, registered on
// both HTTP listeners by the autoconfig service (plain HTTP redirects the
// pages to provider.web_url). The CSRF key is a secret kept in the data
// directory; sessions live in this process's memory.
func (a *app) webRegistrars() ([]autoconfig.Registrar, error) {
	secret, err := a.secretFile("web-secret")
	if err != nil {
		return nil, fmt.Errorf("web secret: %w", err)
	}
	p := a.cfg.Provider
	w, err := autoconfig.NewWeb(autoconfig.WebOptions{
		Resolver: a.resolver,
		Store:    a.store,
		Auth:     a.auth,
		Provider: p.Name,
		HelpURL:  p.HelpURL,
		WebURL:   p.WebURL,
		Secret:   secret,
		Log:      a.log.With("service", "web"),
	})
	if err != nil {
		return nil, err
	}
	return []autoconfig.Registrar{w}, nil
}

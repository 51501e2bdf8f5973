package main

import "github.com/skydesk/skydeskd/autoconfig"

// webRegistrars returns the web pages' routes (not built yet).
func (a *app) webRegistrars() ([]autoconfig.Registrar, error) { return nil, nil }

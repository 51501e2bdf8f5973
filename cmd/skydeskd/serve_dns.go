package main

import (
	"context"
	"errors"
)

// dnsComponents starts the authoritative DNS server (not built yet).
func (a *app) dnsComponents() ([]component, error) { return nil, nil }

// cmdDNS implements `skydeskd dns records|check` (not built yet).
func cmdDNS(ctx context.Context, args []string, e env) error {
	return errors.New("dns: not built yet")
}

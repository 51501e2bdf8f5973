package main

import (
	"context"
	"fmt"
	"time"

	"github.com/skydesk/skydeskd/certs"
	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
)

// storeDriver is what `serve` and the admin commands hold: a store driver
// (SQLite or PostgreSQL, chosen by database.driver) with every role of
// store.Driver, plus the two things serve needs besides.
type storeDriver interface {
	store.Driver
	// WatchDomains refreshes the domain snapshot every interval until ctx
	// ends (a domain added by another process is answered).
	WatchDomains(ctx context.Context, interval time.Duration, onErr func(error))
	// CertBackend is the driver's certificate storage (ACME).
	CertBackend() certs.Backend
	// OnQueueChanged registers f (the relay's Wake) to run when mail was
	// queued by another node (PostgreSQL: NOTIFY, heard while
	// WatchDomains runs); SQLite: nothing, the accepting session wakes
	// its own relay.
	OnQueueChanged(f func())
}

// sqliteDriver and postgresDriver adapt the drivers' certificate storage
// (a concrete type each) to certs.Backend.
type (
	sqliteDriver   struct{ *store.Store }
	postgresDriver struct{ *postgres.Store }
)

func (d sqliteDriver) CertBackend() certs.Backend   { return d.Certs() }
func (d postgresDriver) CertBackend() certs.Backend { return d.Certs() }

// WatchDomains: on PostgreSQL every change arrives by LISTEN/NOTIFY, so
// serve's short poll (SQLite's only way to hear another process) becomes
// the slow safety net, postgres.SafetyPollInterval.
func (d postgresDriver) WatchDomains(ctx context.Context, _ time.Duration, onErr func(error)) {
	d.Store.WatchDomains(ctx, postgres.SafetyPollInterval, onErr)
}

// testDatabase is a test seam, nil in the binary: only this package's
// TestMain sets it (under storetest.DatabaseEnv=postgres), to the URL of a
// PostgreSQL database unique to a data_dir. A configuration with the
// default driver then opens that database instead of the SQLite file, so
// the whole suite runs on either driver; the same data_dir gives the same
// database, as it gives the same file.
var testDatabase func(dataDir string) (string, error)

// openStore opens the store of the configuration: the SQLite file in
// data_dir, or the PostgreSQL database at database.url. Either applies
// pending migrations first.
func openStore(ctx context.Context, cfg *config.Config, hp store.HashParams) (storeDriver, error) {
	db := cfg.Database
	if testDatabase != nil && db.Driver != config.DriverPostgres {
		url, err := testDatabase(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		db = config.Database{Driver: config.DriverPostgres, URL: url}
	}
	pd, err := profiles.ParseDomain(cfg.Provider.PersonalDomain)
	if err != nil {
		return nil, fmt.Errorf("provider.personal_domain: %w", err)
	}
	opts := store.Options{PersonalDomain: pd, HashParams: hp, TOTPIssuer: cfg.Provider.Name,
		DefaultQuota: configSize(cfg.SMTP.DefaultQuota)}
	if db.Driver == config.DriverPostgres {
		s, err := postgres.Open(ctx, db.URL, opts)
		if err != nil {
			return nil, err
		}
		return postgresDriver{s}, nil
	}
	s, err := store.Open(ctx, cfg.DataDir, opts)
	if err != nil {
		return nil, err
	}
	return sqliteDriver{s}, nil
}

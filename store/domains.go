package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/skydesk/skydeskd/profiles"
)

// DomainSnapshot is an immutable view of the hosted domains, refreshed
// when they change (in this process or another one, such as an admin
// command), so hot paths (HTTP, DNS) never query the database per request.
type DomainSnapshot struct {
	// Serial changes whenever the list changes (DNS SOA serial).
	Serial uint32
	set    map[string]bool
	list   []string
}

// Has reports whether d (A-labels, lower case) is hosted.
func (d *DomainSnapshot) Has(name string) bool { return d.set[name] }

// List returns the hosted domains, sorted.
func (d *DomainSnapshot) List() []string { return append([]string(nil), d.list...) }

type domainCache struct {
	snap atomic.Pointer[DomainSnapshot]
}

// Domains returns the current snapshot of hosted domains.
func (s *Store) Domains() *DomainSnapshot { return s.domains.snap.Load() }

// IsHosted implements profiles.Domains from the in-memory snapshot.
func (s *Store) IsHosted(_ context.Context, domain string) (bool, error) {
	return s.Domains().Has(domain), nil
}

var _ profiles.Domains = (*Store)(nil)

// RefreshDomains reloads the snapshot from the database and, if the list
// changed, calls the OnDomainsChanged hooks. It reports whether it changed.
func (s *Store) RefreshDomains(ctx context.Context) (bool, error) {
	var serialText string
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'domains_serial'`).Scan(&serialText); err != nil {
		return false, fmt.Errorf("reading domains serial: %w", err)
	}
	serial, _ := strconv.ParseUint(serialText, 10, 32)
	if old := s.Domains(); old != nil && old.Serial == uint32(serial) {
		return false, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM domains ORDER BY name`)
	if err != nil {
		return false, fmt.Errorf("listing domains: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return false, err
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	snap := NewDomainSnapshot(uint32(serial), names)
	s.domains.snap.Store(snap)
	s.domainsChanged()
	return true, nil
}

// WatchDomains refreshes the snapshot every interval until ctx ends, so a
// domain added by `skydeskd domain add` in another process is answered
// without a restart. The check is one indexed read of the serial.
func (s *Store) WatchDomains(ctx context.Context, interval time.Duration, onErr func(error)) {
	PollDomains(ctx, s, interval, onErr)
}

// bumpDomainsSerial sets the serial to max(old+1, now in seconds), the
// conventional time-based SOA serial that still always increases.
func bumpDomainsSerial(ctx context.Context, tx *sql.Tx, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE meta SET value = CAST(max(CAST(value AS INTEGER) + 1, ?) % 4294967296 AS TEXT)
		WHERE key = 'domains_serial'`, now.Unix())
	return err
}

// AddDomain adds a hosted domain (any case, U- or A-labels).
func (s *Store) AddDomain(ctx context.Context, domain string) (string, error) {
	d, err := profiles.ParseDomain(domain)
	if err != nil {
		return "", err
	}
	if d == s.opts.PersonalDomain {
		return "", fmt.Errorf("%s is the personal domain: %w", d, ErrExists)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO domains (name, created) VALUES (?, ?) ON CONFLICT DO NOTHING`, d, s.now().Unix())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("domain %s: %w", d, ErrExists)
		}
		return bumpDomainsSerial(ctx, tx, s.now())
	})
	if err != nil {
		return "", err
	}
	_, err = s.RefreshDomains(ctx)
	return d, err
}

// RemoveDomain removes a hosted domain. It refuses while accounts exist in
// it, so no mailbox is orphaned or silently deleted.
func (s *Store) RemoveDomain(ctx context.Context, domain string) error {
	d, err := profiles.ParseDomain(domain)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE domain = ?`, d).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("domain %s still has %d account(s): %w", d, n, ErrInUse)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM domains WHERE name = ?`, d)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("domain %s: %w", d, ErrNotFound)
		}
		return bumpDomainsSerial(ctx, tx, s.now())
	})
	if err != nil {
		return err
	}
	_, err = s.RefreshDomains(ctx)
	return err
}

// ErrInUse is returned when removing something still referenced.
var ErrInUse = errors.New("still in use")

// ListDomains returns the hosted domains from the database, sorted.
func (s *Store) ListDomains(ctx context.Context) ([]string, error) {
	if _, err := s.RefreshDomains(ctx); err != nil {
		return nil, err
	}
	return s.Domains().List(), nil // the snapshot is built in name order
}

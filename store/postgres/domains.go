package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
)

type domainCache struct {
	snap atomic.Pointer[store.DomainSnapshot]
}

// Domains returns the current snapshot of hosted domains.
func (s *Store) Domains() *store.DomainSnapshot { return s.domains.snap.Load() }

// IsHosted implements profiles.Domains from the in-memory snapshot.
func (s *Store) IsHosted(_ context.Context, domain string) (bool, error) {
	return s.Domains().Has(domain), nil
}

var _ profiles.Domains = (*Store)(nil)

// OnDomainsChanged registers f to run after the snapshot changes.
func (s *Store) OnDomainsChanged(f func()) { s.onDomainsChanged = append(s.onDomainsChanged, f) }

// IsLocalDomain reports whether domain is the personal or a hosted domain:
// mail for it is delivered here and never relayed.
func (s *Store) IsLocalDomain(domain string) bool {
	k, _ := profiles.KindOf(context.Background(), strings.ToLower(domain), s.opts.PersonalDomain, s) // IsHosted never fails
	return k != profiles.Unknown
}

// RefreshDomains reloads the snapshot when the serial moved (one indexed
// read otherwise) and then runs the OnDomainsChanged hooks.
func (s *Store) RefreshDomains(ctx context.Context) (bool, error) {
	// One refresh at a time (the listener, the safety-net poll and this
	// node's own changes call it): a slow one never stores an older list
	// over a newer one.
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	var serialText string
	if err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'domains_serial'`).Scan(&serialText); err != nil {
		return false, fmt.Errorf("reading domains serial: %w", err)
	}
	serial, _ := strconv.ParseUint(serialText, 10, 32)
	if old := s.Domains(); old != nil && old.Serial == uint32(serial) {
		return false, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT name FROM domains ORDER BY name`)
	if err != nil {
		return false, fmt.Errorf("listing domains: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("listing domains: %w", err)
	}
	s.domains.snap.Store(store.NewDomainSnapshot(uint32(serial), names))
	for _, f := range s.onDomainsChanged {
		f()
	}
	return true, nil
}

// bumpDomainsSerial sets the serial to max(old+1, now in seconds), the
// time-based SOA serial that still always increases, and notifies every
// node listening (listen.go): PostgreSQL delivers the NOTIFY when the
// transaction commits, and not at all if it rolls back.
func (s *Store) bumpDomainsSerial(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE meta SET value = (greatest(value::bigint + 1, $1) % 4294967296)::text
		WHERE key = 'domains_serial'`, s.now().Unix()); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, domainsChannel)
	return err
}

// AddDomain adds a hosted domain (any case, U- or A-labels).
func (s *Store) AddDomain(ctx context.Context, domain string) (string, error) {
	d, err := profiles.ParseDomain(domain)
	if err != nil {
		return "", err
	}
	if d == s.opts.PersonalDomain {
		return "", fmt.Errorf("%s is the personal domain: %w", d, store.ErrExists)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO domains (name, created) VALUES ($1, $2) ON CONFLICT DO NOTHING`, d, s.now().Unix())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("domain %s: %w", d, store.ErrExists)
		}
		return s.bumpDomainsSerial(ctx, tx)
	})
	if err != nil {
		return "", err
	}
	_, err = s.RefreshDomains(ctx)
	return d, err
}

// RemoveDomain removes a hosted domain; store.ErrInUse while accounts
// exist in it.
func (s *Store) RemoveDomain(ctx context.Context, domain string) error {
	d, err := profiles.ParseDomain(domain)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// The row lock waits for an AddAccount in this domain (which
		// holds a share lock on the row until it commits), so the count
		// below sees its account.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM domains WHERE name = $1 FOR UPDATE`, d); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE domain = $1`, d).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("domain %s still has %d account(s): %w", d, n, store.ErrInUse)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM domains WHERE name = $1`, d)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("domain %s: %w", d, store.ErrNotFound)
		}
		return s.bumpDomainsSerial(ctx, tx)
	})
	if err != nil {
		return err
	}
	_, err = s.RefreshDomains(ctx)
	return err
}

// ListDomains returns the hosted domains from the database, sorted.
func (s *Store) ListDomains(ctx context.Context) ([]string, error) {
	if _, err := s.RefreshDomains(ctx); err != nil {
		return nil, err
	}
	return s.Domains().List(), nil
}

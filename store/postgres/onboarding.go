package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// The onboarding records (store/onboarding.go has the rules and the
// figures' meaning): addresses only as HMACs under the database's key,
// rows bounded in age and number. Several nodes share them; a
// transaction-scoped advisory lock on the address hash makes "asked again
// within the window" one decision across nodes.

func (s *Store) addrHash(ctx context.Context, address string) ([]byte, error) {
	return s.obKey.Hash(ctx, address, func(ctx context.Context) (v string, err error) {
		err = s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'onboarding_key'`).Scan(&v)
		return v, err
	})
}

// onboardingLockClass is the first key of the two-key advisory locks
// taken per address hash ("ob" in ASCII); the two-key space never meets
// the one-key migration lock.
const onboardingLockClass = 0x6f62

// RecordDiscovery implements store.Onboarding: it reports false when the
// same address already asked the same format within
// store.OnboardingWindow and has no outcome yet.
func (s *Store) RecordDiscovery(ctx context.Context, address, format string, at time.Time) (bool, error) {
	h, err := s.addrHash(ctx, address)
	if err != nil {
		return false, err
	}
	var added bool
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`,
			int32(onboardingLockClass), int32(binary.BigEndian.Uint32(h))); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO onboarding (addr_hash, format, requested)
			SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM onboarding
				WHERE addr_hash = $1 AND format = $2 AND requested >= $4 AND NOT settled)`,
			h, format, at.UnixNano(), at.Add(-store.OnboardingWindow).UnixNano())
		added = tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("recording discovery: %w", err)
	}
	return added, nil
}

// RecordLogin implements store.Onboarding: every discovery of address
// within store.OnboardingWindow before at without an outcome gets this
// first login; their formats are returned. The row locks the UPDATE
// takes settle each discovery once however many nodes see a login.
func (s *Store) RecordLogin(ctx context.Context, address string, at time.Time) ([]string, error) {
	h, err := s.addrHash(ctx, address)
	if err != nil {
		return nil, err
	}
	from, to := at.Add(-store.OnboardingWindow).UnixNano(), at.UnixNano()
	// Nearly every login has no discovery waiting: a read answers it
	// without writing.
	var waiting bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM onboarding
		WHERE addr_hash = $1 AND NOT settled AND requested BETWEEN $2 AND $3)`, h, from, to).Scan(&waiting); err != nil {
		return nil, fmt.Errorf("reading onboarding: %w", err)
	}
	if !waiting {
		return nil, nil
	}
	return s.settle(ctx, `UPDATE onboarding SET first_login = $1, settled = true
		WHERE addr_hash = $2 AND NOT settled AND requested BETWEEN $3 AND $1 RETURNING format`, to, h, from)
}

// SettleOnboarding implements store.Onboarding: discoveries older than
// store.OnboardingWindow without a login are settled as no login and
// their formats returned; then rows past store.OnboardingRetention, and
// the oldest beyond store.OnboardingMaxRows, are deleted.
func (s *Store) SettleOnboarding(ctx context.Context, now time.Time) ([]string, error) {
	formats, err := s.settle(ctx, `UPDATE onboarding SET settled = true
		WHERE NOT settled AND requested < $1 RETURNING format`, now.Add(-store.OnboardingWindow).UnixNano())
	if err != nil {
		return nil, err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM onboarding WHERE requested < $1`, now.Add(-store.OnboardingRetention).UnixNano()); err != nil {
		return formats, fmt.Errorf("pruning onboarding: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM onboarding WHERE id <= (SELECT id FROM onboarding ORDER BY id DESC LIMIT 1 OFFSET $1)`,
		store.OnboardingMaxRows); err != nil {
		return formats, fmt.Errorf("capping onboarding: %w", err)
	}
	return formats, nil
}

// settle runs an UPDATE … RETURNING format and collects the formats.
func (s *Store) settle(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("settling onboarding: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("settling onboarding: %w", err)
	}
	return out, nil
}

// OnboardingStats implements store.Onboarding: the figures of discoveries
// requested in [since, now], by format, sorted by format (bytewise).
func (s *Store) OnboardingStats(ctx context.Context, since, now time.Time) ([]store.OnboardingCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT format, count(*), count(first_login),
		count(*) FILTER (WHERE first_login IS NULL AND requested >= $1)
		FROM onboarding WHERE requested BETWEEN $2 AND $3 GROUP BY format ORDER BY format`,
		now.Add(-store.OnboardingWindow).UnixNano(), since.UnixNano(), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("reading onboarding figures: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.OnboardingCount])
	if err != nil {
		return nil, fmt.Errorf("reading onboarding figures: %w", err)
	}
	return out, nil
}

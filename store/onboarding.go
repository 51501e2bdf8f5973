package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/skydesk/skydeskd/profiles"
)

// Onboarding bounds: a login counts for a discovery within
// OnboardingWindow after it; rows are kept OnboardingRetention (the
// longest figure, 7 days, plus a day) and at most OnboardingMaxRows.
const (
	OnboardingWindow    = time.Hour
	OnboardingRetention = 8 * 24 * time.Hour
	OnboardingMaxRows   = 100_000
)

// OnboardingCount is one discovery format's figures over a period.
type OnboardingCount struct {
	Format   string
	Asked    int // discoveries (an address asking again within the window counts once)
	LoggedIn int // of those, followed by a POP or SMTP login within OnboardingWindow
	Pending  int // of those, less than OnboardingWindow old and no login yet
}

// OnboardingKey is the HMAC key addresses are hashed under, read once
// from the database (migration 0008 creates it, 32 random bytes in hex,
// meta key "onboarding_key"); every driver hashes through it, so the
// same address and key give the same row key on both. The zero value is
// ready to use.
type OnboardingKey struct {
	mu  sync.Mutex
	key []byte
}

// Hash returns the HMAC-SHA256 of address, normalised
// (profiles.NormalizeAddress), under the key; read fetches the key's hex
// on first use.
func (k *OnboardingKey) Hash(ctx context.Context, address string, read func(context.Context) (string, error)) ([]byte, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	key, err := k.load(ctx, read)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(a.String()))
	return m.Sum(nil), nil
}

// load returns the key, read and checked on first use.
func (k *OnboardingKey) load(ctx context.Context, read func(context.Context) (string, error)) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key == nil {
		v, err := read(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading onboarding key: %w", err)
		}
		b, err := hex.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("onboarding key: %w", err)
		}
		if len(b) != 32 {
			return nil, fmt.Errorf("onboarding key is %d bytes, not 32", len(b))
		}
		k.key = b
	}
	return k.key, nil
}

func (s *Store) addrHash(ctx context.Context, address string) ([]byte, error) {
	return s.obKey.Hash(ctx, address, func(ctx context.Context) (v string, err error) {
		err = s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'onboarding_key'`).Scan(&v)
		return v, err
	})
}

// RecordDiscovery implements Onboarding: address asked format for its
// settings at at. It reports false when the same address already asked
// the same format within OnboardingWindow and has not logged in (one
// onboarding, however many times a client asks). The address itself is
// never stored, only its HMAC.
func (s *Store) RecordDiscovery(ctx context.Context, address, format string, at time.Time) (bool, error) {
	h, err := s.addrHash(ctx, address)
	if err != nil {
		return false, err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO onboarding (addr_hash, format, requested)
		SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM onboarding
			WHERE addr_hash = ? AND format = ? AND requested >= ? AND settled = 0)`,
		h, format, at.UnixNano(), h, format, at.Add(-OnboardingWindow).UnixNano())
	if err != nil {
		return false, fmt.Errorf("recording discovery: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RecordLogin implements Onboarding: address logged in to POP or SMTP at
// at. Every discovery of it within OnboardingWindow before at that has no
// outcome yet gets this first login; their formats are returned (for the
// first_login counter).
func (s *Store) RecordLogin(ctx context.Context, address string, at time.Time) ([]string, error) {
	h, err := s.addrHash(ctx, address)
	if err != nil {
		return nil, err
	}
	// Nearly every login has no discovery waiting: a read answers it
	// without taking the one writer.
	var waiting bool
	if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM onboarding
		WHERE addr_hash = ? AND settled = 0 AND requested BETWEEN ? AND ?)`,
		h, at.Add(-OnboardingWindow).UnixNano(), at.UnixNano()).Scan(&waiting); err != nil {
		return nil, fmt.Errorf("reading onboarding: %w", err)
	}
	if !waiting {
		return nil, nil
	}
	return s.settle(ctx, `UPDATE onboarding SET first_login = ?, settled = 1
		WHERE addr_hash = ? AND settled = 0 AND requested BETWEEN ? AND ? RETURNING format`,
		at.UnixNano(), h, at.Add(-OnboardingWindow).UnixNano(), at.UnixNano())
}

// SettleOnboarding implements Onboarding: discoveries older than
// OnboardingWindow without a login are settled as no login and their
// formats returned (for the no_login counter); then rows past
// OnboardingRetention, and the oldest beyond OnboardingMaxRows, are
// deleted. Run it periodically (cmd/skydeskd does, every minute).
func (s *Store) SettleOnboarding(ctx context.Context, now time.Time) ([]string, error) {
	formats, err := s.settle(ctx, `UPDATE onboarding SET settled = 1
		WHERE settled = 0 AND requested < ? RETURNING format`, now.Add(-OnboardingWindow).UnixNano())
	if err != nil {
		return nil, err
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM onboarding WHERE requested < ?`, now.Add(-OnboardingRetention).UnixNano()); err != nil {
		return formats, fmt.Errorf("pruning onboarding: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM onboarding WHERE id <= (SELECT id FROM onboarding ORDER BY id DESC LIMIT 1 OFFSET ?)`,
		OnboardingMaxRows); err != nil {
		return formats, fmt.Errorf("capping onboarding: %w", err)
	}
	return formats, nil
}

func (s *Store) settle(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.w.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("settling onboarding: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, fmt.Errorf("settling onboarding: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("settling onboarding: %w", err)
	}
	return out, rows.Close()
}

// OnboardingStats implements Onboarding: the figures of discoveries
// requested in [since, now], by format, sorted by format.
func (s *Store) OnboardingStats(ctx context.Context, since, now time.Time) ([]OnboardingCount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT format, count(*),
		count(first_login),
		sum(CASE WHEN first_login IS NULL AND requested >= ? THEN 1 ELSE 0 END)
		FROM onboarding WHERE requested BETWEEN ? AND ? GROUP BY format ORDER BY format`,
		now.Add(-OnboardingWindow).UnixNano(), since.UnixNano(), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("reading onboarding figures: %w", err)
	}
	defer rows.Close()
	var out []OnboardingCount
	for rows.Next() {
		var c OnboardingCount
		var pending sql.NullInt64
		if err := rows.Scan(&c.Format, &c.Asked, &c.LoggedIn, &pending); err != nil {
			return nil, fmt.Errorf("reading onboarding figures: %w", err)
		}
		c.Pending = int(pending.Int64)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading onboarding figures: %w", err)
	}
	return out, nil
}

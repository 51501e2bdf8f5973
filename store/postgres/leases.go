package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/skydesk/skydeskd/store"
)

var _ store.Leases = (*Store)(nil)

// AcquireLease implements store.Leases. Expiry is judged by the database's
// clock, so nodes need not agree on the time.
func (s *Store) AcquireLease(ctx context.Context, accountID int64, holder string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(holder, ttl); err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO pop_leases (account_id, holder, expires)
		VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
		ON CONFLICT (account_id) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
		WHERE pop_leases.expires <= clock_timestamp() OR pop_leases.holder = EXCLUDED.holder`,
		accountID, holder, ttl.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("acquiring maildrop lease: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RenewLease implements store.Leases.
func (s *Store) RenewLease(ctx context.Context, accountID int64, holder string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(holder, ttl); err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE pop_leases SET expires = clock_timestamp() + $3 * interval '1 millisecond'
		WHERE account_id = $1 AND holder = $2`, accountID, holder, ttl.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("renewing maildrop lease: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseLease implements store.Leases.
func (s *Store) ReleaseLease(ctx context.Context, accountID int64, holder string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM pop_leases WHERE account_id = $1 AND holder = $2`, accountID, holder); err != nil {
		return fmt.Errorf("releasing maildrop lease: %w", err)
	}
	return nil
}

package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Leases hold the POP3 maildrop lock (RFC 1939 §4: "the POP3 server then
// acquires an exclusive-access lock on the maildrop") in the database, so
// that every process on it sees the lock: a session on one node makes
// another answer IN-USE. A lease is held by one holder (a string naming a
// process and a session, chosen by the caller) until its time to live
// passes without a renewal: a node that dies without releasing blocks the
// account for at most one TTL.
type Leases interface {
	// AcquireLease takes the account's lease for holder for ttl. ok is
	// false when another holder has it and it has not expired; a holder
	// that has it already gets it renewed.
	AcquireLease(ctx context.Context, accountID int64, holder string, ttl time.Duration) (ok bool, err error)
	// RenewLease extends holder's lease to ttl from now. ok is false when
	// holder no longer has it (another holder took it after it expired).
	RenewLease(ctx context.Context, accountID int64, holder string, ttl time.Duration) (ok bool, err error)
	// ReleaseLease gives holder's lease up at once; releasing a lease
	// holder does not have is no error and changes nothing.
	ReleaseLease(ctx context.Context, accountID int64, holder string) error
}

// ErrBadLease is returned for an empty holder or a TTL under a millisecond.
var ErrBadLease = errors.New("lease: empty holder or TTL under 1ms")

// CheckLease validates a lease request before a driver stores it.
func CheckLease(holder string, ttl time.Duration) error {
	if holder == "" || ttl < time.Millisecond {
		return ErrBadLease
	}
	return nil
}

var _ Leases = (*Store)(nil)

// AcquireLease implements Leases. Times are this process's clock: the
// processes sharing one SQLite file share one machine.
func (s *Store) AcquireLease(ctx context.Context, accountID int64, holder string, ttl time.Duration) (bool, error) {
	if err := CheckLease(holder, ttl); err != nil {
		return false, err
	}
	now := s.now()
	res, err := s.w.ExecContext(ctx, `INSERT INTO pop_leases (account_id, holder, expires) VALUES (?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE pop_leases.expires <= ? OR pop_leases.holder = excluded.holder`,
		accountID, holder, now.Add(ttl).UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("acquiring maildrop lease: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RenewLease implements Leases.
func (s *Store) RenewLease(ctx context.Context, accountID int64, holder string, ttl time.Duration) (bool, error) {
	if err := CheckLease(holder, ttl); err != nil {
		return false, err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE pop_leases SET expires = ? WHERE account_id = ? AND holder = ?`,
		s.now().Add(ttl).UnixMilli(), accountID, holder)
	if err != nil {
		return false, fmt.Errorf("renewing maildrop lease: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseLease implements Leases.
func (s *Store) ReleaseLease(ctx context.Context, accountID int64, holder string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM pop_leases WHERE account_id = ? AND holder = ?`, accountID, holder); err != nil {
		return fmt.Errorf("releasing maildrop lease: %w", err)
	}
	return nil
}

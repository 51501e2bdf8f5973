package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrBadScratch is a scratch entry the store refuses: a kind of 0 or more
// than 16 octets, or a sealed value over MaxScratchSealed.
var ErrBadScratch = errors.New("bad scratch entry")

// CheckScratch is PutScratch's argument check, shared by the drivers.
func CheckScratch(kind string, sealed []byte) error {
	if len(kind) == 0 || len(kind) > 16 || len(sealed) > MaxScratchSealed {
		return fmt.Errorf("scratch %q of %d octets: %w", kind, len(sealed), ErrBadScratch)
	}
	return nil
}

// LiveScratch is the drivers' common end of GetScratch and TakeScratch:
// an entry read (expires in unix seconds) is returned while now is before
// its expiry, else ErrNotFound.
func LiveScratch(sealed []byte, expires int64, failures int, now time.Time) (Scratch, error) {
	if now.Unix() >= expires {
		return Scratch{}, fmt.Errorf("scratch: %w", ErrNotFound)
	}
	return Scratch{Sealed: sealed, Expires: time.Unix(expires, 0), Failures: failures}, nil
}

// PutScratch implements Sessions: an upsert that inserts only for an
// existing session.
func (s *Store) PutScratch(ctx context.Context, key SessionKey, kind string, sealed []byte, expires time.Time) error {
	if err := CheckScratch(kind, sealed); err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO web_scratch (id_hash, kind, sealed, expires, failures)
		SELECT id_hash, ?, ?, ?, 0 FROM web_sessions WHERE id_hash = ?
		ON CONFLICT (id_hash, kind) DO UPDATE SET sealed = excluded.sealed, expires = excluded.expires, failures = 0`,
		kind, sealed, expires.Unix(), key[:])
	if err != nil {
		return fmt.Errorf("storing session scratch: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storing session scratch: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("session scratch: %w", ErrNotFound)
	}
	return nil
}

// GetScratch implements Sessions.
func (s *Store) GetScratch(ctx context.Context, key SessionKey, kind string, now time.Time) (Scratch, error) {
	return s.scratchRow(s.r.QueryRowContext(ctx, `SELECT sealed, expires, failures FROM web_scratch
		WHERE id_hash = ? AND kind = ?`, key[:], kind), now)
}

// TakeScratch implements Sessions.
func (s *Store) TakeScratch(ctx context.Context, key SessionKey, kind string, now time.Time) (Scratch, error) {
	return s.scratchRow(s.w.QueryRowContext(ctx, `DELETE FROM web_scratch
		WHERE id_hash = ? AND kind = ? RETURNING sealed, expires, failures`, key[:], kind), now)
}

func (s *Store) scratchRow(row *sql.Row, now time.Time) (Scratch, error) {
	var (
		sealed   []byte
		expires  int64
		failures int
	)
	err := row.Scan(&sealed, &expires, &failures)
	if errors.Is(err, sql.ErrNoRows) {
		return Scratch{}, fmt.Errorf("scratch: %w", ErrNotFound)
	}
	if err != nil {
		return Scratch{}, fmt.Errorf("reading session scratch: %w", err)
	}
	return LiveScratch(sealed, expires, failures, now)
}

// FailScratch implements Sessions.
func (s *Store) FailScratch(ctx context.Context, key SessionKey, kind string, sealed []byte) (int, error) {
	var n int
	err := s.w.QueryRowContext(ctx, `UPDATE web_scratch SET failures = failures + 1
		WHERE id_hash = ? AND kind = ? AND sealed = ? RETURNING failures`, key[:], kind, sealed).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("scratch: %w", ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("counting a scratch failure: %w", err)
	}
	return n, nil
}

// DeleteScratch implements Sessions.
func (s *Store) DeleteScratch(ctx context.Context, key SessionKey, kind string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM web_scratch WHERE id_hash = ? AND kind = ?`, key[:], kind); err != nil {
		return fmt.Errorf("deleting session scratch: %w", err)
	}
	return nil
}

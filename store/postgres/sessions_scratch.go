package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// PutScratch implements store.Sessions: an upsert that inserts only for
// an existing session.
func (s *Store) PutScratch(ctx context.Context, key store.SessionKey, kind string, sealed []byte, expires time.Time) error {
	if err := store.CheckScratch(kind, sealed); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO web_scratch (id_hash, kind, sealed, expires, failures)
		SELECT id_hash, $1, $2, $3, 0 FROM web_sessions WHERE id_hash = $4
		ON CONFLICT (id_hash, kind) DO UPDATE SET sealed = EXCLUDED.sealed, expires = EXCLUDED.expires, failures = 0`,
		kind, sealed, expires.Unix(), key[:])
	if err != nil {
		return fmt.Errorf("storing session scratch: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("session scratch: %w", store.ErrNotFound)
	}
	return nil
}

// GetScratch implements store.Sessions.
func (s *Store) GetScratch(ctx context.Context, key store.SessionKey, kind string, now time.Time) (store.Scratch, error) {
	return scratchRow(s.pool.QueryRow(ctx, `SELECT sealed, expires, failures FROM web_scratch
		WHERE id_hash = $1 AND kind = $2`, key[:], kind), now)
}

// TakeScratch implements store.Sessions.
func (s *Store) TakeScratch(ctx context.Context, key store.SessionKey, kind string, now time.Time) (store.Scratch, error) {
	return scratchRow(s.pool.QueryRow(ctx, `DELETE FROM web_scratch
		WHERE id_hash = $1 AND kind = $2 RETURNING sealed, expires, failures`, key[:], kind), now)
}

func scratchRow(row pgx.Row, now time.Time) (store.Scratch, error) {
	var (
		sealed   []byte
		expires  int64
		failures int
	)
	err := row.Scan(&sealed, &expires, &failures)
	if noRows(err) {
		return store.Scratch{}, fmt.Errorf("scratch: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Scratch{}, fmt.Errorf("reading session scratch: %w", err)
	}
	return store.LiveScratch(sealed, expires, failures, now)
}

// FailScratch implements store.Sessions.
func (s *Store) FailScratch(ctx context.Context, key store.SessionKey, kind string, sealed []byte) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `UPDATE web_scratch SET failures = failures + 1
		WHERE id_hash = $1 AND kind = $2 AND sealed = $3 RETURNING failures`, key[:], kind, sealed).Scan(&n)
	if noRows(err) {
		return 0, fmt.Errorf("scratch: %w", store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("counting a scratch failure: %w", err)
	}
	return n, nil
}

// DeleteScratch implements store.Sessions.
func (s *Store) DeleteScratch(ctx context.Context, key store.SessionKey, kind string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM web_scratch WHERE id_hash = $1 AND kind = $2`, key[:], kind); err != nil {
		return fmt.Errorf("deleting session scratch: %w", err)
	}
	return nil
}

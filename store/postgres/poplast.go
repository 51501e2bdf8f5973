package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// RecordPOPSession implements store.Maildrop: one upsert, replacing the
// account's previous record.
func (s *Store) RecordPOPSession(ctx context.Context, accountID int64, ps store.POPSession) error {
	if err := store.CheckPOPSession(ps); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO pop_last_access (account_id, at, remote, downloaded) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id) DO UPDATE SET at = excluded.at, remote = excluded.remote, downloaded = excluded.downloaded`,
		accountID, ps.At.UnixNano(), store.ClipRemote(ps.Remote), ps.Downloaded)
	if err != nil {
		return fmt.Errorf("recording POP session: %w", err)
	}
	return nil
}

// LastPOPSession implements store.POPPreferences: ok is false if the
// account never completed a POP session.
func (s *Store) LastPOPSession(ctx context.Context, address string) (ps store.POPSession, ok bool, err error) {
	id, _, err := accountID(ctx, s.pool, address)
	if err != nil {
		return store.POPSession{}, false, err
	}
	var at int64
	err = s.pool.QueryRow(ctx, `SELECT at, remote, downloaded FROM pop_last_access WHERE account_id = $1`, id).
		Scan(&at, &ps.Remote, &ps.Downloaded)
	if noRows(err) {
		return store.POPSession{}, false, nil
	}
	if err != nil {
		return store.POPSession{}, false, fmt.Errorf("reading last POP session: %w", err)
	}
	ps.At = time.Unix(0, at)
	return ps, true, nil
}

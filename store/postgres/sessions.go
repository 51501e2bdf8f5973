package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

var _ store.Sessions = (*Store)(nil)

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(ctx context.Context, ws store.WebSession, lim store.SessionLimits) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO web_sessions (id_hash, account_id, generation, created, seen, auth_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, ws.Key[:], ws.AccountID, ws.Generation,
			ws.Created.Unix(), ws.Seen.Unix(), ws.AuthAt.Unix()); err != nil {
			return fmt.Errorf("creating session: %w", err)
		}
		// The newest stay; the new one is kept whatever its ties.
		if lim.PerAccount > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE id_hash IN (
				SELECT id_hash FROM web_sessions WHERE account_id = $1 AND id_hash != $2
				ORDER BY seen DESC, created DESC OFFSET $3)`,
				ws.AccountID, ws.Key[:], lim.PerAccount-1); err != nil {
				return fmt.Errorf("trimming the account's sessions: %w", err)
			}
		}
		if lim.Total > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM web_sessions`).Scan(&n); err != nil {
				return fmt.Errorf("counting sessions: %w", err)
			}
			if n > lim.Total {
				if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE id_hash IN (
					SELECT id_hash FROM web_sessions WHERE id_hash != $1 ORDER BY seen, created LIMIT $2)`,
					ws.Key[:], n-lim.Total); err != nil {
					return fmt.Errorf("trimming sessions: %w", err)
				}
			}
		}
		return nil
	})
}

// GetSession implements store.Sessions: one read by primary key joined to
// the account by primary key.
func (s *Store) GetSession(ctx context.Context, key store.SessionKey) (store.WebSession, error) {
	ws := store.WebSession{Key: key}
	var created, seen, auth int64
	err := s.pool.QueryRow(ctx, `SELECT w.account_id, w.generation, w.created, w.seen, w.auth_at, a.address, a.credential_gen
		FROM web_sessions w JOIN accounts a ON a.id = w.account_id WHERE w.id_hash = $1`, key[:]).
		Scan(&ws.AccountID, &ws.Generation, &created, &seen, &auth, &ws.Address, &ws.AccountGeneration)
	if noRows(err) {
		return store.WebSession{}, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.WebSession{}, fmt.Errorf("reading session: %w", err)
	}
	ws.Created, ws.Seen, ws.AuthAt = time.Unix(created, 0), time.Unix(seen, 0), time.Unix(auth, 0)
	return ws, nil
}

// TouchSession implements store.Sessions.
func (s *Store) TouchSession(ctx context.Context, key store.SessionKey, seen time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE web_sessions SET seen = $1 WHERE id_hash = $2`, seen.Unix(), key[:]); err != nil {
		return fmt.Errorf("touching session: %w", err)
	}
	return nil
}

// ReauthSession implements store.Sessions.
func (s *Store) ReauthSession(ctx context.Context, key store.SessionKey, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE web_sessions SET auth_at = $1, seen = $1 WHERE id_hash = $2`,
		at.Unix(), key[:]); err != nil {
		return fmt.Errorf("recording re-authentication: %w", err)
	}
	return nil
}

// RebindSession implements store.Sessions. The account row is locked
// first, so a credential change committing meanwhile is either seen
// (generation moved on twice: false) or waits for this rebind.
func (s *Store) RebindSession(ctx context.Context, key store.SessionKey, from int64) (bool, error) {
	var ok bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var account, gen int64
		err := tx.QueryRow(ctx, `SELECT a.id, a.credential_gen FROM web_sessions w JOIN accounts a ON a.id = w.account_id
			WHERE w.id_hash = $1 AND w.generation = $2 FOR UPDATE OF a`, key[:], from).Scan(&account, &gen)
		if noRows(err) || (err == nil && gen != from+1) {
			_, err = tx.Exec(ctx, `DELETE FROM web_sessions WHERE id_hash = $1`, key[:])
			return err
		}
		if err != nil {
			return err
		}
		ok = true
		if _, err := tx.Exec(ctx, `UPDATE web_sessions SET generation = $1 WHERE id_hash = $2`, from+1, key[:]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM web_sessions WHERE account_id = $1 AND id_hash != $2`, account, key[:])
		return err
	})
	if err != nil {
		return false, fmt.Errorf("rebinding session: %w", err)
	}
	return ok, nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, key store.SessionKey) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM web_sessions WHERE id_hash = $1`, key[:]); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return nil
}

// DeleteAccountSessions implements store.Sessions.
func (s *Store) DeleteAccountSessions(ctx context.Context, address string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		id, _, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE account_id = $1`, id)
		if err != nil {
			return fmt.Errorf("ending sessions: %w", err)
		}
		n = tag.RowsAffected()
		return nil
	})
	return n, err
}

// ExpireSessions implements store.Sessions.
func (s *Store) ExpireSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM web_sessions WHERE seen < $1 OR created < $2`,
		seenBefore.Unix(), createdBefore.Unix())
	if err != nil {
		return 0, fmt.Errorf("expiring sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

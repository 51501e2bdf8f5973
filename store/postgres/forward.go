package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// forwardColumns are what scanForward reads.
const forwardColumns = `target, keep, confirmed, token_expires`

// GetForward returns the account's forwarding; store.ErrNotFound when off.
func (s *Store) GetForward(ctx context.Context, address string) (store.Forward, error) {
	id, addr, err := accountID(ctx, s.pool, address)
	if err != nil {
		return store.Forward{}, err
	}
	return scanForward(addr, s.pool.QueryRow(ctx, `SELECT `+forwardColumns+` FROM forwards WHERE account_id = $1`, id))
}

func scanForward(addr string, row pgx.Row) (store.Forward, error) {
	f := store.Forward{Address: addr}
	var confirmed, expires int64
	err := row.Scan(&f.Target, &f.Keep, &confirmed, &expires)
	if noRows(err) {
		return store.Forward{}, fmt.Errorf("forwarding of %s: %w", addr, store.ErrNotFound)
	}
	if err != nil {
		return store.Forward{}, fmt.Errorf("reading forwarding: %w", err)
	}
	f.Confirmed = confirmed != 0
	if !f.Confirmed {
		f.Expires = time.Unix(expires, 0)
	}
	return f, nil
}

// SetForward applies u: a new target starts pending under u's token, the
// confirmed target given again only changes Keep (as store.Store does).
func (s *Store) SetForward(ctx context.Context, address string, u store.ForwardUpdate) (store.Forward, error) {
	target, err := store.CheckForwardTarget(address, u.Target)
	if err != nil {
		return store.Forward{}, err
	}
	var f store.Forward
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		id, addr, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE forwards SET keep = $1 WHERE account_id = $2 AND target = $3 AND confirmed != 0`,
			u.Keep, id, target); err != nil {
			return fmt.Errorf("setting forwarding: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO forwards (account_id, target, keep, token_hash, token_expires, created)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (account_id) DO UPDATE SET target = excluded.target, keep = excluded.keep, confirmed = 0,
				token_hash = excluded.token_hash, token_expires = excluded.token_expires, created = excluded.created
			WHERE forwards.target != excluded.target OR forwards.confirmed = 0`,
			id, target, u.Keep, u.TokenHash[:], u.Expires.Unix(), s.now().Unix()); err != nil {
			return fmt.Errorf("setting forwarding: %w", err)
		}
		f, err = scanForward(addr, tx.QueryRow(ctx, `SELECT `+forwardColumns+` FROM forwards WHERE account_id = $1`, id))
		return err
	})
	return f, err
}

// ForwardByToken returns the pending forwarding a link's token belongs
// to; store.ErrNotFound when unknown, used or expired.
func (s *Store) ForwardByToken(ctx context.Context, h store.ForwardTokenHash) (store.Forward, error) {
	return s.forwardByToken(ctx, s.pool, h, false)
}

// forwardByToken reads the pending forwarding of h; lock takes its row
// for the confirming transaction.
func (s *Store) forwardByToken(ctx context.Context, q querier, h store.ForwardTokenHash, lock bool) (store.Forward, error) {
	sql := `SELECT a.address, ` + forwardColumns + ` FROM forwards f JOIN accounts a ON a.id = f.account_id
		WHERE f.token_hash = $1 AND f.confirmed = 0 AND f.token_expires > $2`
	if lock {
		sql += ` FOR UPDATE OF f`
	}
	var addr string
	f := store.Forward{}
	var confirmed, expires int64
	err := q.QueryRow(ctx, sql, h[:], s.now().Unix()).Scan(&addr, &f.Target, &f.Keep, &confirmed, &expires)
	if noRows(err) {
		return store.Forward{}, fmt.Errorf("forwarding link: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Forward{}, fmt.Errorf("reading forwarding link: %w", err)
	}
	f.Address, f.Expires = addr, time.Unix(expires, 0)
	return f, nil
}

// ConfirmForward starts the forwarding a link's token belongs to and
// spends the token; store.ErrNotFound when unknown, used or expired.
func (s *Store) ConfirmForward(ctx context.Context, h store.ForwardTokenHash) (store.Forward, error) {
	var f store.Forward
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if f, err = s.forwardByToken(ctx, tx, h, true); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE forwards SET confirmed = $1, token_hash = NULL, token_expires = 0 WHERE token_hash = $2`,
			max(s.now().Unix(), 1), h[:]); err != nil {
			return fmt.Errorf("confirming forwarding: %w", err)
		}
		f.Confirmed, f.Expires = true, time.Time{}
		return nil
	})
	return f, err
}

// DisableForward turns forwarding off; store.ErrNotFound when it was off.
func (s *Store) DisableForward(ctx context.Context, address string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		id, addr, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM forwards WHERE account_id = $1`, id)
		if err != nil {
			return fmt.Errorf("turning forwarding off: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("forwarding of %s: %w", addr, store.ErrNotFound)
		}
		return nil
	})
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// SetPOP applies u in one transaction and returns the new settings (the
// rules of store.Store.SetPOP: "all" re-queues every message, "since"
// from now on empties the queue and records the moment, "since" a day
// re-queues the mail received from its first instant; a day goes only
// with "since", store.CheckPOPUpdate).
func (s *Store) SetPOP(ctx context.Context, address string, u store.POPUpdate) (store.POPSettings, error) {
	if err := store.CheckPOPUpdate(u); err != nil {
		return store.POPSettings{}, err
	}
	var out store.POPSettings
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		id, _, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		if u.Access != nil {
			switch *u.Access {
			case store.POPAll:
				if _, err := tx.Exec(ctx, `UPDATE messages SET in_pop = true WHERE account_id = $1 AND NOT in_pop`, id); err != nil {
					return err
				}
				_, err = tx.Exec(ctx, `UPDATE pop_settings SET access = 'all', since = NULL, since_day = NULL WHERE account_id = $1`, id)
			case store.POPSince:
				err = setPOPSince(ctx, tx, id, u.Day, s.now())
			default:
				_, err = tx.Exec(ctx, `UPDATE pop_settings SET access = 'disabled', since = NULL, since_day = NULL WHERE account_id = $1`, id)
			}
			if err != nil {
				return err
			}
		}
		if u.IncludeSpam != nil {
			if _, err := tx.Exec(ctx, `UPDATE pop_settings SET include_spam = $1 WHERE account_id = $2`, *u.IncludeSpam, id); err != nil {
				return err
			}
		}
		if u.OnDelete != nil {
			if _, err := tx.Exec(ctx, `UPDATE pop_settings SET on_delete = $1 WHERE account_id = $2`, string(*u.OnDelete), id); err != nil {
				return err
			}
		}
		out, err = popSettings(ctx, tx, id)
		return err
	})
	return out, err
}

// setPOPSince chooses store.POPSince (store.Store's rule). "From now on"
// (day nil) empties the POP queue and records the moment. A day puts the
// mail received since its first instant back in the queue, and the
// listing leaves out anything older.
func setPOPSince(ctx context.Context, tx pgx.Tx, id int64, day *store.POPDay, now time.Time) error {
	if day == nil {
		if _, err := tx.Exec(ctx, `UPDATE messages SET in_pop = false WHERE account_id = $1 AND in_pop`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE pop_settings SET access = 'since', since = $1, since_day = NULL WHERE account_id = $2`, now.UnixNano(), id)
		return err
	}
	start := day.Start.UnixNano()
	if _, err := tx.Exec(ctx, `UPDATE messages SET in_pop = true WHERE account_id = $1 AND NOT in_pop AND received >= $2`, id, start); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE pop_settings SET access = 'since', since = $1, since_day = $2 WHERE account_id = $3`, start, day.Date, id)
	return err
}

func popSettings(ctx context.Context, q querier, id int64) (store.POPSettings, error) {
	var p store.POPSettings
	var access, onDelete string
	var since *int64
	var day *string
	if err := q.QueryRow(ctx, `SELECT access, since, include_spam, on_delete, since_day FROM pop_settings WHERE account_id = $1`, id).
		Scan(&access, &since, &p.IncludeSpam, &onDelete, &day); err != nil {
		return store.POPSettings{}, fmt.Errorf("reading POP settings: %w", err)
	}
	p.Access, p.OnDelete = store.POPAccess(access), store.OnDelete(onDelete)
	if since != nil {
		p.Since = time.Unix(0, *since)
	}
	if day != nil {
		p.SinceDay = *day
	}
	return p, nil
}

// GetPOP returns an account's POP settings.
func (s *Store) GetPOP(ctx context.Context, address string) (store.POPSettings, error) {
	id, _, err := accountID(ctx, s.pool, address)
	if err != nil {
		return store.POPSettings{}, err
	}
	return popSettings(ctx, s.pool, id)
}

// MaildropSettings implements store.Maildrop.
func (s *Store) MaildropSettings(ctx context.Context, accountID int64) (store.POPSettings, error) {
	return popSettings(ctx, s.pool, accountID)
}

// ListMaildrop implements store.Maildrop in one query over the index
// messages_pop (bodies untouched).
func (s *Store) ListMaildrop(ctx context.Context, accountID int64, st store.POPSettings) ([]store.MaildropEntry, error) {
	var since int64
	if st.Access == store.POPSince {
		since = st.Since.UnixNano()
	}
	rows, err := s.pool.Query(ctx, `SELECT id, size FROM messages
		WHERE account_id = $1 AND in_pop AND ($2 OR NOT spam) AND received >= $3 ORDER BY id`,
		accountID, st.IncludeSpam, since)
	if err != nil {
		return nil, fmt.Errorf("listing maildrop: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.MaildropEntry])
	if err != nil {
		return nil, fmt.Errorf("listing maildrop: %w", err)
	}
	return out, nil
}

// Expunge implements store.Maildrop: one transaction applies every mark
// under the account's current "when a client deletes" setting; deleting
// uncounts the messages' octets from the account's usage.
func (s *Store) Expunge(ctx context.Context, accountID int64, ids []int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		st, err := popSettings(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if st.OnDelete != store.DeleteOnServer {
			if _, err := tx.Exec(ctx, `UPDATE messages SET in_pop = false WHERE account_id = $1 AND id = ANY($2)`, accountID, ids); err != nil {
				return fmt.Errorf("applying DELE marks: %w", err)
			}
			return nil
		}
		// The account row's lock (taken by the UPDATE) orders this against
		// deliveries checking the quota.
		if _, err := tx.Exec(ctx, `WITH gone AS (DELETE FROM messages WHERE account_id = $1 AND id = ANY($2) RETURNING size)
			UPDATE accounts SET usage = usage - (SELECT coalesce(sum(size), 0) FROM gone) WHERE id = $1`, accountID, ids); err != nil {
			return fmt.Errorf("applying DELE marks: %w", err)
		}
		return nil
	})
}

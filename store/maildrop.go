package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// maildropStmts are the POP hot path's statements, prepared once at Open:
// modernc's SQLite otherwise parses every statement on every call, which
// showed at the top of a RETR profile.
type maildropStmts struct {
	list, body, chunks, settings *sql.Stmt
}

func (s *Store) prepareMaildrop(ctx context.Context) error {
	var err error
	m := &s.md
	if m.list, err = s.r.PrepareContext(ctx, `SELECT id, size FROM messages INDEXED BY messages_pop
		WHERE account_id = ? AND in_pop = 1 AND (? OR spam = 0) AND received >= ? ORDER BY id`); err != nil {
		return fmt.Errorf("preparing maildrop listing: %w", err)
	}
	if m.body, err = s.r.PrepareContext(ctx, `SELECT chunked, substr(body, ?, ?) FROM messages WHERE id = ? AND account_id = ?`); err != nil {
		return fmt.Errorf("preparing message read: %w", err)
	}
	if m.chunks, err = s.r.PrepareContext(ctx, `SELECT seq, data FROM message_chunks WHERE message_id = ? AND seq BETWEEN ? AND ? ORDER BY seq`); err != nil {
		return fmt.Errorf("preparing message chunk read: %w", err)
	}
	if m.settings, err = s.r.PrepareContext(ctx, `SELECT `+popSettingsColumns+` FROM pop_settings WHERE account_id = ?`); err != nil {
		return fmt.Errorf("preparing POP settings read: %w", err)
	}
	return nil
}

func (m *maildropStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{m.list, m.body, m.chunks, m.settings} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// MaildropSettings implements Maildrop.
func (s *Store) MaildropSettings(ctx context.Context, accountID int64) (POPSettings, error) {
	return scanPOPSettings(s.md.settings.QueryRowContext(ctx, accountID))
}

// ListMaildrop implements Maildrop in one query over the covering index
// messages_pop: in the queue, minus spam unless "include spam", minus mail
// received before "from now on" was chosen (the queue was emptied then;
// the filter also covers a delivery racing that choice).
func (s *Store) ListMaildrop(ctx context.Context, accountID int64, st POPSettings) ([]MaildropEntry, error) {
	var since int64
	if st.Access == POPSince {
		since = st.Since.UnixNano()
	}
	rows, err := s.md.list.QueryContext(ctx, accountID, boolInt(st.IncludeSpam), since)
	if err != nil {
		return nil, fmt.Errorf("listing maildrop: %w", err)
	}
	defer rows.Close()
	var out []MaildropEntry
	for rows.Next() {
		var e MaildropEntry
		if err := rows.Scan(&e.ID, &e.Size); err != nil {
			return nil, fmt.Errorf("listing maildrop: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing maildrop: %w", err)
	}
	return out, nil
}

// AppendBody implements Maildrop with SQL substr (1-based) on a single
// blob, or from message_chunks for a chunked body.
func (s *Store) AppendBody(ctx context.Context, accountID, id, off, n int64, dst []byte) ([]byte, error) {
	rows, err := s.md.body.QueryContext(ctx, off+1, n, id, accountID)
	if err != nil {
		return dst, fmt.Errorf("reading message: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return dst, fmt.Errorf("reading message: %w", err)
		}
		return dst, fmt.Errorf("message %d: %w", id, ErrNotFound)
	}
	var chunked bool
	var raw sql.RawBytes
	if err := rows.Scan(&chunked, &raw); err != nil {
		return dst, fmt.Errorf("reading message: %w", err)
	}
	if !chunked {
		dst = append(dst, raw...)
		return dst, rows.Close()
	}
	if err := rows.Close(); err != nil {
		return dst, fmt.Errorf("reading message: %w", err)
	}
	return s.appendChunks(ctx, id, off, n, dst)
}

// Expunge implements Maildrop: one transaction applies every mark per the
// current "when a client deletes" setting.
func (s *Store) Expunge(ctx context.Context, accountID int64, ids []int64) error {
	list := make([]byte, 0, 8*len(ids)+2)
	list = append(list, '[')
	for i, id := range ids {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendInt(list, id, 10)
	}
	list = append(list, ']')
	return s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := popSettings(ctx, tx, accountID)
		if err != nil {
			return err
		}
		q := `UPDATE messages SET in_pop = 0 WHERE account_id = ? AND id IN (SELECT value FROM json_each(?))`
		if st.OnDelete == DeleteOnServer {
			q = `DELETE FROM messages WHERE account_id = ? AND id IN (SELECT value FROM json_each(?))`
		}
		if st.OnDelete == DeleteOnServer {
			if _, err := tx.ExecContext(ctx, `UPDATE accounts SET usage = usage - (SELECT coalesce(sum(size), 0) FROM messages
				WHERE account_id = ? AND id IN (SELECT value FROM json_each(?))) WHERE id = ?`, accountID, string(list), accountID); err != nil {
				return fmt.Errorf("counting usage: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, q, accountID, string(list)); err != nil {
			return fmt.Errorf("applying DELE marks: %w", err)
		}
		return nil
	})
}

package postgres

// Message bodies: every read and write of a body is in this file, so the
// storage of bodies (one bytea per message today; chunks, or a blob store
// for large mail, later) changes here alone. The body column is stored
// EXTERNAL (uncompressed out of line, migration 0001), so a RETR slice is
// read without detoasting the whole message.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// insertMessage adds body (CRLF already) to one mailbox inside tx; new
// mail enters the POP queue (access and spam filtering apply at listing).
func insertMessage(ctx context.Context, tx pgx.Tx, rcpt string, body []byte, spam bool, now int64) (int64, error) {
	id, _, err := accountID(ctx, tx, rcpt)
	if err != nil {
		return 0, err
	}
	var uid int64
	if err := tx.QueryRow(ctx, `INSERT INTO messages (account_id, received, size, spam, in_pop, body)
		VALUES ($1, $2, $3, $4, true, $5) RETURNING id`, id, now, len(body), spam, body).Scan(&uid); err != nil {
		return 0, fmt.Errorf("storing message: %w", err)
	}
	return uid, nil
}

// AppendBody implements store.Maildrop with substring (1-based).
func (s *Store) AppendBody(ctx context.Context, accountID, id, off, n int64, dst []byte) ([]byte, error) {
	var part []byte
	err := s.pool.QueryRow(ctx, `SELECT substring(body FROM $1 FOR $2) FROM messages WHERE id = $3 AND account_id = $4`,
		off+1, n, id, accountID).Scan(&part)
	if noRows(err) {
		return dst, fmt.Errorf("message %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return dst, fmt.Errorf("reading message: %w", err)
	}
	return append(dst, part...), nil
}

// insertQueued adds a relay queue message (body CRLF already) inside tx
// and returns its id.
func insertQueued(ctx context.Context, tx pgx.Tx, from string, body []byte, now int64) (int64, error) {
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO queue_messages (mail_from, body, created) VALUES ($1, $2, $3) RETURNING id`,
		from, body, now).Scan(&id); err != nil {
		return 0, fmt.Errorf("queueing message: %w", err)
	}
	return id, nil
}

// queuedBody reads a relay queue message's body.
func (s *Store) queuedBody(ctx context.Context, id int64) ([]byte, error) {
	var b []byte
	if err := s.pool.QueryRow(ctx, `SELECT body FROM queue_messages WHERE id = $1`, id).Scan(&b); err != nil {
		return nil, fmt.Errorf("reading queued body: %w", err)
	}
	return b, nil
}

package postgres

// Message bodies: every read and write of a body is in this file. A body
// up to store.ChunkSize is one bytea in messages.body; a longer one is
// rows of message_chunks (migration 0007), written and read a chunk at a
// time, so neither a delivery nor a RETR holds a whole large message in
// memory. Both columns are stored EXTERNAL (uncompressed out of line), so
// a RETR slice of a small body is read without detoasting all of it.

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// countUsage is the common table expression of insertBody's statements
// that adds the message's size ($3) to its account's ($1) usage: a
// data-modifying WITH runs to completion though nothing reads it.
const countUsage = `u AS (UPDATE accounts SET usage = usage + $3 WHERE id = $1)`

// insertSmall stores a message of one bytea: $1 account, $2 received,
// $3 size, $4 spam, $5 body; it returns the message id.
const insertSmall = `WITH m AS (INSERT INTO messages (account_id, received, size, spam, in_pop, body)
	VALUES ($1, $2, $3, $4, true, $5) RETURNING id), ` + countUsage + ` SELECT id FROM m`

var chunkPool = sync.Pool{New: func() any { b := make([]byte, store.ChunkSize); return &b }}

// insertBody adds one message row for account id with the octets of body
// (CRLF already), chunked when longer than store.ChunkSize, and counts its
// size in the account's usage in the same statement (one round trip); a
// read error aborts the caller's transaction, so nothing partial is kept.
// New mail enters the POP queue (access and spam filtering apply at
// listing).
func insertBody(ctx context.Context, tx pgx.Tx, id int64, body store.Body, spam bool, now int64) (int64, error) {
	size := body.Size()
	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	buf := *bufp
	var uid int64
	if size <= store.ChunkSize {
		b := buf[:size]
		if n, err := body.ReadAt(b, 0); n < len(b) {
			return 0, fmt.Errorf("reading message: %w", err)
		}
		if err := tx.QueryRow(ctx, insertSmall, id, now, size, spam, b).Scan(&uid); err != nil {
			return 0, fmt.Errorf("storing message: %w", err)
		}
		return uid, nil
	}
	if err := tx.QueryRow(ctx, `WITH m AS (INSERT INTO messages (account_id, received, size, spam, in_pop, body, chunked)
		VALUES ($1, $2, $3, $4, true, '', true) RETURNING id), `+countUsage+` SELECT id FROM m`, id, now, size, spam).Scan(&uid); err != nil {
		return 0, fmt.Errorf("storing message: %w", err)
	}
	for seq, off := int64(0), int64(0); off < size; seq, off = seq+1, off+store.ChunkSize {
		b := buf[:min(store.ChunkSize, size-off)]
		if n, err := body.ReadAt(b, off); n < len(b) {
			return 0, fmt.Errorf("reading message at %d: %w", off, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO message_chunks (message_id, seq, data) VALUES ($1, $2, $3)`, uid, seq, b); err != nil {
			return 0, fmt.Errorf("storing message chunk: %w", err)
		}
	}
	return uid, nil
}

// AppendBody implements store.Maildrop with substring (1-based) on a
// single bytea, or from the message_chunks that hold [off, off+n) of a
// chunked body.
func (s *Store) AppendBody(ctx context.Context, accountID, id, off, n int64, dst []byte) ([]byte, error) {
	var chunked bool
	var part []byte
	err := s.pool.QueryRow(ctx, `SELECT chunked, substring(body FROM $1 FOR $2) FROM messages WHERE id = $3 AND account_id = $4`,
		off+1, n, id, accountID).Scan(&chunked, &part)
	if noRows(err) {
		return dst, fmt.Errorf("message %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return dst, fmt.Errorf("reading message: %w", err)
	}
	if !chunked {
		return append(dst, part...), nil
	}
	return s.appendChunks(ctx, id, off, n, dst)
}

// ReadBodies reads the bodies of several messages of an account in one
// round trip, for a POP3 download read ahead (popstore): the messages
// found that are one bytea (not chunked), by id; the caller bounds their
// total size by the sizes it listed.
func (s *Store) ReadBodies(ctx context.Context, accountID int64, ids []int64) (map[int64][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, body FROM messages WHERE account_id = $1 AND id = ANY($2) AND NOT chunked`, accountID, ids)
	if err != nil {
		return nil, fmt.Errorf("reading messages: %w", err)
	}
	out := make(map[int64][]byte, len(ids))
	var id int64
	var body []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &body}, func() error {
		out[id] = body
		body = nil // the next row scans into a slice of its own
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading messages: %w", err)
	}
	return out, nil
}

// appendChunks appends octets [off, off+n) of chunked message id to dst,
// reading only the chunks the window covers, one row at a time.
func (s *Store) appendChunks(ctx context.Context, id, off, n int64, dst []byte) ([]byte, error) {
	if n <= 0 {
		return dst, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, data FROM message_chunks WHERE message_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq`,
		id, off/store.ChunkSize, (off+n-1)/store.ChunkSize)
	if err != nil {
		return dst, fmt.Errorf("reading message: %w", err)
	}
	end := off + n
	var seq int64
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&seq, &data}, func() error {
		start := seq * store.ChunkSize
		lo, hi := max(off-start, 0), min(end-start, int64(len(data)))
		if lo < hi {
			dst = append(dst, data[lo:hi]...)
		}
		return nil
	})
	if err != nil {
		return dst, fmt.Errorf("reading message: %w", err)
	}
	return dst, nil
}

// readWhole reads all of body, for the relay queue, which sends a queued
// body whole (submission only: its senders are authenticated, and the
// size limit bounds it).
func readWhole(body store.Body) ([]byte, error) {
	b := make([]byte, body.Size())
	if n, err := body.ReadAt(b, 0); n < len(b) {
		return nil, fmt.Errorf("reading message: %w", err)
	}
	return b, nil
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

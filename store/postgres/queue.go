package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// queueChannel is the NOTIFY channel of the relay queue: every
// transaction that queues mail notifies it (notifyQueued), so each
// node's relay hears of mail accepted on any node (listen.go).
const queueChannel = "skydeskd_queue"

// notifyQueued tells every listening node, when tx commits, that mail
// was queued (PostgreSQL folds a transaction's identical notifications
// into one and sends none if it rolls back).
func notifyQueued(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, queueChannel); err != nil {
		return fmt.Errorf("notifying the relay queue: %w", err)
	}
	return nil
}

// DueQueue returns up to limit messages having a recipient due at now,
// oldest first, with only their due recipients, claimed or not: a look
// that claims nothing (the relay uses ClaimQueue).
func (s *Store) DueQueue(ctx context.Context, now time.Time, limit int) ([]store.QueuedMessage, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT message_id FROM queue_rcpts WHERE next_attempt <= $1
		ORDER BY message_id LIMIT $2`, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("reading queue: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("reading queue: %w", err)
	}
	return readQueued(ctx, s.pool, ids, now)
}

// NextQueueAttempt returns when a queued message is next claimable: the
// earliest time a recipient is due and its message's claim (if any) has
// ended; ok is false for an empty queue.
func (s *Store) NextQueueAttempt(ctx context.Context) (t time.Time, ok bool, err error) {
	var next *int64
	if err := s.pool.QueryRow(ctx, `SELECT min(greatest(r.next_attempt,
			coalesce((extract(epoch FROM m.claim_until) * 1000000000)::bigint, 0)))
		FROM queue_rcpts r JOIN queue_messages m ON m.id = r.message_id`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("reading queue: %w", err)
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return time.Unix(0, *next), true, nil
}

// QueueLen returns the number of queued recipients.
func (s *Store) QueueLen(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM queue_rcpts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting queue: %w", err)
	}
	return n, nil
}

// readQueued reads messages ids (ascending) with their recipients due at
// now.
func readQueued(ctx context.Context, q querier, ids []int64, now time.Time) ([]store.QueuedMessage, error) {
	out := make([]store.QueuedMessage, 0, len(ids))
	for _, id := range ids {
		m := store.QueuedMessage{ID: id}
		var created int64
		if err := q.QueryRow(ctx, `SELECT mail_from, created, body FROM queue_messages WHERE id = $1`, id).
			Scan(&m.From, &created, &m.Body); err != nil {
			return nil, fmt.Errorf("reading queued message: %w", err)
		}
		m.Created = time.Unix(0, created)
		rows, err := q.Query(ctx, `SELECT rcpt, attempts, last_error FROM queue_rcpts
			WHERE message_id = $1 AND next_attempt <= $2 ORDER BY rcpt`, id, now.UnixNano())
		if err != nil {
			return nil, fmt.Errorf("reading queued recipients: %w", err)
		}
		if m.Rcpts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[store.QueuedRcpt]); err != nil {
			return nil, fmt.Errorf("reading queued recipients: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}

func dropRcpts(ctx context.Context, tx pgx.Tx, id int64, rcpts []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM queue_rcpts WHERE message_id = $1 AND rcpt = ANY($2)`, id, rcpts); err != nil {
		return fmt.Errorf("removing queued recipient: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM queue_messages WHERE id = $1
		AND NOT EXISTS (SELECT 1 FROM queue_rcpts WHERE message_id = $1)`, id); err != nil {
		return fmt.Errorf("removing queued message: %w", err)
	}
	return nil
}

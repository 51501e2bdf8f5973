package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// DueQueue returns up to limit messages having a recipient due at now,
// oldest first, with only their due recipients.
func (s *Store) DueQueue(ctx context.Context, now time.Time, limit int) ([]store.QueuedMessage, error) {
	rows, err := s.pool.Query(ctx, `SELECT m.id, m.mail_from, m.created, r.rcpt, r.attempts, r.last_error
		FROM queue_rcpts r JOIN queue_messages m ON m.id = r.message_id
		WHERE r.message_id IN (SELECT DISTINCT message_id FROM queue_rcpts WHERE next_attempt <= $1 ORDER BY message_id LIMIT $2)
		AND r.next_attempt <= $1 ORDER BY m.id, r.rcpt`, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("reading queue: %w", err)
	}
	var out []store.QueuedMessage
	var id, created int64
	var from string
	var r store.QueuedRcpt
	_, err = pgx.ForEachRow(rows, []any{&id, &from, &created, &r.Address, &r.Attempts, &r.LastError}, func() error {
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, store.QueuedMessage{ID: id, From: from, Created: time.Unix(0, created)})
		}
		m := &out[len(out)-1]
		m.Rcpts = append(m.Rcpts, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading queue: %w", err)
	}
	for i := range out {
		if out[i].Body, err = s.queuedBody(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// NextQueueAttempt returns when the earliest queued recipient is due; ok
// is false for an empty queue.
func (s *Store) NextQueueAttempt(ctx context.Context) (t time.Time, ok bool, err error) {
	var next *int64
	if err := s.pool.QueryRow(ctx, `SELECT min(next_attempt) FROM queue_rcpts`).Scan(&next); err != nil {
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

// QueueDelivered removes recipients the smarthost accepted.
func (s *Store) QueueDelivered(ctx context.Context, id int64, rcpts []string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return dropRcpts(ctx, tx, id, rcpts) })
}

// QueueDeferred records a temporary failure: the recipients are tried
// again at next.
func (s *Store) QueueDeferred(ctx context.Context, id int64, rcpts []string, next time.Time, reason string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE queue_rcpts SET attempts = attempts + 1, next_attempt = $1, last_error = $2
		WHERE message_id = $3 AND rcpt = ANY($4)`, next.UnixNano(), reason, id, rcpts); err != nil {
		return fmt.Errorf("deferring: %w", err)
	}
	return nil
}

// QueueBounced removes failed recipients and, in the same transaction,
// delivers the delivery status notification dsn to the sender's mailbox;
// a nil dsn, or a sender whose account is gone, drops the bounce.
func (s *Store) QueueBounced(ctx context.Context, id int64, rcpts []string, to string, dsn []byte) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := dropRcpts(ctx, tx, id, rcpts); err != nil {
			return err
		}
		if dsn == nil || to == "" {
			return nil
		}
		// A bounce is delivered even to a full mailbox: it reports the
		// sender's own mail and is small.
		_, err := s.insertMessage(ctx, tx, to, store.BytesBody(dsn), false, false, s.now().UnixNano())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
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

package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// Relay queue claims (store/queue_claim.go says what they promise). The
// lease is judged by the database's clock (clock_timestamp()), so nodes
// need not agree on the time; "due" is the caller's now, as the relay's
// backoff was computed with it.

// ClaimQueue implements store.Queue: the candidates are locked FOR UPDATE
// SKIP LOCKED, so a concurrent claimer passes over the rows this one is
// taking instead of waiting for them, and re-checks a row another claimer
// changed meanwhile against the claim condition (PostgreSQL re-evaluates
// the WHERE clause on the newest row version), so two claimers never get
// the same message.
func (s *Store) ClaimQueue(ctx context.Context, now time.Time, holder string, lease time.Duration, limit int) ([]store.QueuedMessage, error) {
	if err := store.CheckLease(holder, lease); err != nil {
		return nil, err
	}
	var out []store.QueuedMessage
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH c AS (
				SELECT m.id FROM queue_messages m
				WHERE (m.claim_until IS NULL OR m.claim_until <= clock_timestamp())
				AND EXISTS (SELECT 1 FROM queue_rcpts r WHERE r.message_id = m.id AND r.next_attempt <= $1)
				ORDER BY m.id LIMIT $2
				FOR UPDATE OF m SKIP LOCKED)
			UPDATE queue_messages q SET claimed_by = $3, claim_until = clock_timestamp() + $4 * interval '1 millisecond'
			FROM c WHERE q.id = c.id RETURNING q.id`, now.UnixNano(), limit, holder, lease.Milliseconds())
		if err != nil {
			return fmt.Errorf("claiming queued mail: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("claiming queued mail: %w", err)
		}
		slices.Sort(ids)
		out, err = readQueued(ctx, tx, ids, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RenewQueueClaim implements store.Queue.
func (s *Store) RenewQueueClaim(ctx context.Context, id int64, holder string, lease time.Duration) (bool, error) {
	if err := store.CheckLease(holder, lease); err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE queue_messages SET claim_until = clock_timestamp() + $3 * interval '1 millisecond'
		WHERE id = $1 AND claimed_by = $2`, id, holder, lease.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("renewing queue claim: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// QueueSettle implements store.Queue: the claim is ended first, under the
// message row's lock, and only if holder still has it, so a node whose
// lease was taken over cannot overwrite the new owner's outcome.
func (s *Store) QueueSettle(ctx context.Context, id int64, holder string, r store.QueueResult) error {
	if holder == "" {
		return store.ErrBadLease
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE queue_messages SET claimed_by = NULL, claim_until = NULL
			WHERE id = $1 AND claimed_by = $2`, id, holder)
		if err != nil {
			return fmt.Errorf("settling queued mail: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return store.ErrClaimLost
		}
		if len(r.Deferred) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE queue_rcpts SET attempts = attempts + 1, next_attempt = $1, last_error = $2
				WHERE message_id = $3 AND rcpt = ANY($4)`, r.Next.UnixNano(), r.Reason, id, r.Deferred); err != nil {
				return fmt.Errorf("deferring: %w", err)
			}
		}
		if err := dropRcpts(ctx, tx, id, slices.Concat(r.Delivered, r.Bounced)); err != nil {
			return err
		}
		if len(r.Bounced) == 0 || r.DSN == nil || r.BounceTo == "" {
			return nil
		}
		_, err = s.insertMessage(ctx, tx, nil, r.BounceTo, store.BytesBody(r.DSN), false, false, s.now().UnixNano())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
}

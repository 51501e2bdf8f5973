package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Relay queue claims. Every node on a shared database runs a relay over
// the same queue; a worker takes a due message with ClaimQueue, which
// marks it as its own (claimed_by) until a lease ends (claim_until), so
// no other worker sends it meanwhile. The worker renews the lease while a
// delivery takes long (RenewQueueClaim) and records the outcome with
// QueueSettle, which also ends the claim. A worker that dies mid-delivery
// leaves its claim to run out: once the lease has ended, the message is
// claimable again and another worker sends it.
//
// Delivery is therefore at least once, not exactly once: a worker killed
// after the smarthost's 250 reply to DATA but before QueueSettle recorded
// it leaves the message queued, and the next worker sends it again, so
// the smarthost sees a duplicate (RFC 5321 §6.1 accepts this: a message
// must not be lost; a duplicate is the lesser harm). Without such a
// crash each message is sent once.

// ErrClaimLost is QueueSettle's answer when the worker no longer holds
// the message's claim: its lease ended and another worker took the
// message over (or settled it already). Nothing was recorded, so the new
// owner's outcome stands.
var ErrClaimLost = errors.New("queue claim lost: another worker took the message over")

// QueueResult is what one attempt at a claimed message came to, recorded
// by QueueSettle in one transaction. A recipient appears in at most one
// list; recipients in none stay queued as they were. An empty result only
// releases the claim (a worker giving a message back unsent).
type QueueResult struct {
	// Delivered leave the queue: the smarthost accepted them.
	Delivered []string
	// Deferred failed temporarily: tried again at Next, with Reason as
	// their last error and one more attempt counted.
	Deferred []string
	Next     time.Time
	Reason   string
	// Bounced failed for good and leave the queue; DSN, if not nil, is
	// delivered to the mailbox BounceTo in the same transaction (a sender
	// whose account is gone drops it). A bounce is delivered even to a
	// full mailbox: it reports the sender's own mail and is small.
	Bounced  []string
	BounceTo string
	DSN      []byte
}

// ClaimQueue claims for holder, for lease, up to limit messages that are
// unclaimed (or whose claim has ended) and have a recipient due at now,
// oldest first, and returns them with only their due recipients. Writes
// are serialised by SQLite's one writer, so two claimers never get the
// same message.
func (s *Store) ClaimQueue(ctx context.Context, now time.Time, holder string, lease time.Duration, limit int) ([]QueuedMessage, error) {
	if err := CheckLease(holder, lease); err != nil {
		return nil, err
	}
	at := s.now()
	var out []QueuedMessage
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE queue_messages SET claimed_by = ?, claim_until = ?
			WHERE id IN (SELECT m.id FROM queue_messages m
				WHERE (m.claim_until IS NULL OR m.claim_until <= ?)
				AND EXISTS (SELECT 1 FROM queue_rcpts r WHERE r.message_id = m.id AND r.next_attempt <= ?)
				ORDER BY m.id LIMIT ?)
			RETURNING id`, holder, at.Add(lease).UnixNano(), at.UnixNano(), now.UnixNano(), limit)
		if err != nil {
			return fmt.Errorf("claiming queued mail: %w", err)
		}
		ids, err := scanIDs(rows)
		if err != nil {
			return fmt.Errorf("claiming queued mail: %w", err)
		}
		out, err = readQueued(ctx, tx, ids, now)
		return err
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// RenewQueueClaim extends holder's claim on message id to lease from now;
// ok is false when holder no longer has it.
func (s *Store) RenewQueueClaim(ctx context.Context, id int64, holder string, lease time.Duration) (bool, error) {
	if err := CheckLease(holder, lease); err != nil {
		return false, err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE queue_messages SET claim_until = ? WHERE id = ? AND claimed_by = ?`,
		s.now().Add(lease).UnixNano(), id, holder)
	if err != nil {
		return false, fmt.Errorf("renewing queue claim: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// QueueSettle records r for message id and ends holder's claim, in one
// transaction and only while holder has the claim: otherwise it is
// ErrClaimLost and changes nothing.
func (s *Store) QueueSettle(ctx context.Context, id int64, holder string, r QueueResult) error {
	if holder == "" {
		return ErrBadLease
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE queue_messages SET claimed_by = NULL, claim_until = NULL
			WHERE id = ? AND claimed_by = ?`, id, holder)
		if err != nil {
			return fmt.Errorf("settling queued mail: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("settling queued mail: %w", err)
		} else if n != 1 {
			return ErrClaimLost
		}
		for _, rcpt := range r.Deferred {
			if _, err := tx.ExecContext(ctx, `UPDATE queue_rcpts SET attempts = attempts + 1, next_attempt = ?, last_error = ?
				WHERE message_id = ? AND rcpt = ?`, r.Next.UnixNano(), r.Reason, id, rcpt); err != nil {
				return fmt.Errorf("deferring: %w", err)
			}
		}
		if err := dropRcpts(ctx, tx, id, slices.Concat(r.Delivered, r.Bounced)); err != nil {
			return err
		}
		if len(r.Bounced) == 0 || r.DSN == nil || r.BounceTo == "" {
			return nil
		}
		_, err = s.insertMessage(ctx, tx, r.BounceTo, BytesBody(r.DSN), false, false, s.now().UnixNano())
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
}

// scanIDs reads a one-column result of ids and closes rows.
func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// queueReader is what a database and a transaction share for reading.
type queueReader interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readQueued reads messages ids (ascending) with their recipients due at
// now.
func readQueued(ctx context.Context, q queueReader, ids []int64, now time.Time) ([]QueuedMessage, error) {
	slices.Sort(ids)
	out := make([]QueuedMessage, 0, len(ids))
	for _, id := range ids {
		m := QueuedMessage{ID: id}
		var created int64
		if err := q.QueryRowContext(ctx, `SELECT mail_from, created, body FROM queue_messages WHERE id = ?`, id).
			Scan(&m.From, &created, &m.Body); err != nil {
			return nil, fmt.Errorf("reading queued message: %w", err)
		}
		m.Created = time.Unix(0, created)
		rows, err := q.QueryContext(ctx, `SELECT rcpt, attempts, last_error FROM queue_rcpts
			WHERE message_id = ? AND next_attempt <= ? ORDER BY rcpt`, id, now.UnixNano())
		if err != nil {
			return nil, fmt.Errorf("reading queued recipients: %w", err)
		}
		for rows.Next() {
			var r QueuedRcpt
			if err := rows.Scan(&r.Address, &r.Attempts, &r.LastError); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading queued recipients: %w", err)
			}
			m.Rcpts = append(m.Rcpts, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading queued recipients: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}

package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
)

// Deliver stores the message for every recipient in one transaction (an
// Accept with local recipients only, received at d.Received if set) and
// returns their UIDs in recipient order: every recipient has it or none.
func (s *Store) Deliver(ctx context.Context, d store.Delivery) ([]int64, error) {
	if len(d.Recipients) == 0 {
		return nil, errors.New("delivery without recipients")
	}
	at := d.Received
	if at.IsZero() {
		at = s.now()
	}
	uids, _, err := s.accept(ctx, store.Accepted{Body: d.Body, Stream: d.Stream, Spam: d.Spam, Local: d.Recipients}, at.UnixNano())
	return uids, err
}

// Accept stores a in one transaction: when it returns nil every local
// recipient has the message and every remote one is queued; a mailbox it
// would take over its quota is store.ErrOverQuota and stores nothing.
func (s *Store) Accept(ctx context.Context, a store.Accepted) (uids []int64, queueID int64, err error) {
	return s.accept(ctx, a, s.now().UnixNano())
}

// accept is Accept with the messages received at now (unix nanoseconds).
func (s *Store) accept(ctx context.Context, a store.Accepted, now int64) (uids []int64, queueID int64, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockAccounts(ctx, tx, a.Local); err != nil {
			return err
		}
		uids, queueID, err = s.acceptTx(ctx, tx, nil, a, now)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return uids, queueID, nil
}

// AcceptBatch stores several messages in one transaction (one commit for
// all), so one message's failure leaves the others in. The accounts of
// every local recipient are locked first, in id order, so concurrent
// batches never deadlock on each other.
//
// A batch is first tried without savepoints, each locked account's usage
// read once (lockedUsage): a statement per message, since every round
// trip to the database is spent while the account rows are locked. Should
// any message fail, that transaction is rolled back whole and the batch
// stored again with a savepoint around each message, which keeps the
// others.
func (s *Store) AcceptBatch(ctx context.Context, batch []store.Accepted) ([]store.AcceptResult, error) {
	now := s.now().UnixNano()
	out := make([]store.AcceptResult, len(batch))
	var local []string
	for _, a := range batch {
		local = append(local, a.Local...)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if ok, err := s.acceptPipelined(ctx, tx, batch, out, now); ok || err != nil {
			return err
		}
		if err := lockAccounts(ctx, tx, local); err != nil {
			return err
		}
		locked := lockedUsage{}
		for i, a := range batch {
			uids, qid, err := s.acceptTx(ctx, tx, locked, a, now)
			if err != nil {
				return errRetrySaved
			}
			out[i] = store.AcceptResult{UIDs: uids, QueueID: qid}
		}
		return nil
	})
	if errors.Is(err, errRetrySaved) && !store.IsUnavailable(err) { // the database away: no second try now
		clear(out)
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			if err := lockAccounts(ctx, tx, local); err != nil {
				return err
			}
			return s.acceptSaved(ctx, tx, batch, out, now)
		})
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// errRetrySaved rolls back a batch tried without savepoints.
var errRetrySaved = errors.New("a message of the batch failed: storing it again under savepoints")

// acceptSaved stores each message of batch under its own savepoint,
// recording its result in out.
func (s *Store) acceptSaved(ctx context.Context, tx pgx.Tx, batch []store.Accepted, out []store.AcceptResult, now int64) error {
	for i, a := range batch {
		if _, err := tx.Exec(ctx, `SAVEPOINT accept`); err != nil {
			return err
		}
		uids, qid, err := s.acceptTx(ctx, tx, nil, a, now)
		if err != nil {
			if _, rerr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT accept`); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		if _, err := tx.Exec(ctx, `RELEASE SAVEPOINT accept`); err != nil {
			return err
		}
		out[i] = store.AcceptResult{UIDs: uids, QueueID: qid, Err: err}
	}
	return nil
}

// acceptTx stores a inside tx (its accounts locked by the caller when
// there are several; locked as for insertMessage); a mailbox over its
// quota is store.ErrOverQuota.
func (s *Store) acceptTx(ctx context.Context, tx pgx.Tx, locked lockedUsage, a store.Accepted, now int64) (uids []int64, queueID int64, err error) {
	if len(a.Local)+len(a.Remote)+len(a.Forwards) == 0 {
		return nil, 0, errors.New("accepted message without recipients")
	}
	body := a.Message()
	for _, rcpt := range a.Local {
		uid, err := s.insertMessage(ctx, tx, locked, rcpt, body, a.Spam, true, now)
		if err != nil {
			return nil, 0, err
		}
		uids = append(uids, uid)
	}
	queueID, err = store.QueueAccepted(a, body, func(from string, header []byte, skip int64, rcpts []string) (int64, error) {
		return queueTx(ctx, tx, from, header, body, skip, rcpts, now)
	})
	if err != nil {
		return nil, 0, err
	}
	return uids, queueID, nil
}

// queueTx queues header and body from octet skip on, from the envelope
// sender from for rcpts (the relay sends a queued body whole; its size
// limit bounds it).
func queueTx(ctx context.Context, tx pgx.Tx, from string, header []byte, body store.Body, skip int64, rcpts []string, now int64) (int64, error) {
	whole, err := readWhole(body)
	if err != nil {
		return 0, err
	}
	skip = min(max(skip, 0), int64(len(whole)))
	queued := append(append(make([]byte, 0, len(header)+len(whole)-int(skip)), header...), whole[skip:]...)
	queueID, err := insertQueued(ctx, tx, from, queued, now)
	if err != nil {
		return 0, err
	}
	for _, r := range rcpts {
		if _, err := tx.Exec(ctx, `INSERT INTO queue_rcpts (message_id, rcpt, next_attempt) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, queueID, r, now); err != nil {
			return 0, fmt.Errorf("queueing recipient: %w", err)
		}
	}
	if err := notifyQueued(ctx, tx); err != nil {
		return 0, err
	}
	return queueID, nil
}

// AccountExists reports whether address has a mailbox, for the SMTP RCPT
// check. Malformed addresses report false.
func (s *Store) AccountExists(ctx context.Context, address string) (bool, error) {
	_, _, err := accountID(ctx, s.pool, address)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, profiles.ErrInvalidAddress):
		return false, nil
	}
	return false, err
}

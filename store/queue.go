package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skydesk/skydeskd/profiles"
)

// Accepted is one message an SMTP server took responsibility for: a copy
// for each local mailbox and, for submission to other domains, one entry
// in the outbound queue (relayed through the smarthost by smtpd).
type Accepted struct {
	Body []byte // any line endings; stored with CRLF
	// Stream, if set, is the message instead of Body (already CRLF):
	// local copies are written from it in chunks, never whole in memory.
	Stream Body
	Spam   bool // the classifier's verdict for the local copies
	// Local are addresses with a mailbox here.
	Local []string
	// From is the envelope sender of the queued copy (the authenticated
	// address); Remote are the recipients elsewhere.
	From   string
	Remote []string
	// Forwards are copies for forwarding targets, each queued on its own
	// in the same transaction (a forwarding account whose Keep is false is
	// simply left out of Local by the caller).
	Forwards []ForwardCopy
}

// ForwardCopy is one forwarded copy of an accepted message: queued with
// envelope sender From (SRS-rewritten by smtpd) for To, its body the
// trace fields Header followed by the message without its first Skip
// octets (the local copy's Return-Path field, which RFC 5321 §4.4 keeps
// out of relayed mail).
type ForwardCopy struct {
	From, To string
	Header   []byte // CRLF line endings
	Skip     int64
}

// Accept stores a in one transaction, so the 250 reply that follows means
// every local recipient has the message and every remote recipient is
// queued (synchronous=FULL: fsync'd before the commit returns). It returns
// the local UIDs in order and the queue id (0 when nothing was queued).
func (s *Store) Accept(ctx context.Context, a Accepted) (uids []int64, queueID int64, err error) {
	now := s.now().UnixNano()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		uids, queueID, err = s.acceptTx(ctx, tx, a, now)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return uids, queueID, nil
}

// AcceptResult is one message's outcome in AcceptBatch.
type AcceptResult struct {
	UIDs    []int64
	QueueID int64
	Err     error
}

// AcceptBatch stores several messages in one transaction (group commit:
// one fsync for all), each under its own savepoint so one message's
// failure (a mailbox deleted meanwhile) leaves the others in. When it
// returns a nil error, every result with a nil Err is on disk.
func (s *Store) AcceptBatch(ctx context.Context, batch []Accepted) ([]AcceptResult, error) {
	now := s.now().UnixNano()
	out := make([]AcceptResult, len(batch))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i, a := range batch {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT accept`); err != nil {
				return err
			}
			uids, qid, err := s.acceptTx(ctx, tx, a, now)
			if err != nil {
				if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO accept`); rerr != nil {
					return errors.Join(err, rerr)
				}
			}
			if _, err := tx.ExecContext(ctx, `RELEASE accept`); err != nil {
				return err
			}
			out[i] = AcceptResult{UIDs: uids, QueueID: qid, Err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Message is the accepted message as a Body: Stream, or Body with CRLF
// line endings.
func (a Accepted) Message() Body {
	if a.Stream != nil {
		return a.Stream
	}
	return BytesBody(a.Body)
}

// acceptTx stores a inside tx; a mailbox over its quota is ErrOverQuota.
func (s *Store) acceptTx(ctx context.Context, tx *sql.Tx, a Accepted, now int64) (uids []int64, queueID int64, err error) {
	if len(a.Local)+len(a.Remote)+len(a.Forwards) == 0 {
		return nil, 0, errors.New("accepted message without recipients")
	}
	body := a.Message()
	for _, rcpt := range a.Local {
		uid, err := s.insertMessage(ctx, tx, rcpt, body, a.Spam, true, now)
		if err != nil {
			return nil, 0, err
		}
		uids = append(uids, uid)
	}
	queueID, err = QueueAccepted(a, body, func(from string, header []byte, skip int64, rcpts []string) (int64, error) {
		return queueTx(ctx, tx, from, header, body, skip, rcpts, now)
	})
	if err != nil {
		return nil, 0, err
	}
	return uids, queueID, nil
}

// QueueAccepted queues what a sends elsewhere through a driver's queue
// function (inside the transaction that stores the local copies): one
// queued message for a.Remote, one per forwarded copy. It returns the
// first queue id (0: nothing queued).
func QueueAccepted(a Accepted, body Body, queue func(from string, header []byte, skip int64, rcpts []string) (int64, error)) (int64, error) {
	var first int64
	if len(a.Remote) > 0 {
		id, err := queue(a.From, nil, 0, a.Remote)
		if err != nil {
			return 0, err
		}
		first = id
	}
	for _, f := range a.Forwards {
		id, err := queue(f.From, f.Header, f.Skip, []string{f.To})
		if err != nil {
			return 0, err
		}
		if first == 0 {
			first = id
		}
	}
	return first, nil
}

// queueTx queues header and body from octet skip on, from the envelope
// sender from for rcpts.
func queueTx(ctx context.Context, tx *sql.Tx, from string, header []byte, body Body, skip int64, rcpts []string, now int64) (int64, error) {
	skip = min(max(skip, 0), body.Size())
	// The relay sends a queued body whole (its size limit bounds it).
	queued := make([]byte, len(header)+int(body.Size()-skip))
	copy(queued, header)
	if n, err := body.ReadAt(queued[len(header):], skip); n < len(queued)-len(header) {
		return 0, fmt.Errorf("reading message: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO queue_messages (mail_from, body, created) VALUES (?, ?, ?)`, from, queued, now)
	if err != nil {
		return 0, fmt.Errorf("queueing message: %w", err)
	}
	queueID, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	for _, r := range rcpts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO queue_rcpts (message_id, rcpt, next_attempt) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, queueID, r, now); err != nil {
			return 0, fmt.Errorf("queueing recipient: %w", err)
		}
	}
	return queueID, nil
}

// IsLocalDomain reports whether domain (A-labels, lower case) is the
// personal domain or a hosted domain: mail for it is delivered here and
// never relayed.
func (s *Store) IsLocalDomain(domain string) bool {
	k, _ := profiles.KindOf(context.Background(), strings.ToLower(domain), s.opts.PersonalDomain, s) // IsHosted never fails
	return k != profiles.Unknown
}

// QueuedMessage is a queued message with its recipients that are due.
type QueuedMessage struct {
	ID      int64
	From    string
	Body    []byte
	Created time.Time
	Rcpts   []QueuedRcpt
}

// QueuedRcpt is one pending recipient.
type QueuedRcpt struct {
	Address   string
	Attempts  int
	LastError string
}

// DueQueue returns up to limit messages having a recipient due at now,
// oldest first, with only their due recipients, claimed or not: a look
// at the queue (tests, tools) that claims nothing. The relay uses
// ClaimQueue.
func (s *Store) DueQueue(ctx context.Context, now time.Time, limit int) ([]QueuedMessage, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT message_id FROM queue_rcpts WHERE next_attempt <= ?
		ORDER BY message_id LIMIT ?`, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("reading queue: %w", err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("reading queue: %w", err)
	}
	return readQueued(ctx, s.r, ids, now)
}

// NextQueueAttempt returns when a queued message is next claimable: the
// earliest time a recipient is due and the message's claim (if any) has
// ended; ok is false for an empty queue. A message claimed by a worker
// that died counts from its claim's end, so a relay sleeping until then
// takes it over on time.
func (s *Store) NextQueueAttempt(ctx context.Context) (t time.Time, ok bool, err error) {
	var next sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT min(max(r.next_attempt, coalesce(m.claim_until, 0)))
		FROM queue_rcpts r JOIN queue_messages m ON m.id = r.message_id`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("reading queue: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, next.Int64), true, nil
}

// QueueLen returns the number of queued recipients.
func (s *Store) QueueLen(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM queue_rcpts`).Scan(&n)
	return n, err
}

func dropRcpts(ctx context.Context, tx *sql.Tx, id int64, rcpts []string) error {
	for _, r := range rcpts {
		if _, err := tx.ExecContext(ctx, `DELETE FROM queue_rcpts WHERE message_id = ? AND rcpt = ?`, id, r); err != nil {
			return fmt.Errorf("removing queued recipient: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM queue_messages WHERE id = ?
		AND NOT EXISTS (SELECT 1 FROM queue_rcpts WHERE message_id = ?)`, id, id)
	if err != nil {
		return fmt.Errorf("removing queued message: %w", err)
	}
	return nil
}

package store

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/skydesk/skydeskd/profiles"
)

// ErrTooBig is returned for a message over the size limit.
var ErrTooBig = errors.New("message too big")

// Delivery is one message for one or more local recipients.
type Delivery struct {
	Recipients []string // addresses; each must be an existing account
	Body       []byte   // any line endings; stored with CRLF
	// Stream, if set, is the message instead of Body (already CRLF).
	Stream Body
	Spam   bool // the classifier's verdict, read by "include spam"
	// Received is when the message arrived (imports, tests); zero: now.
	Received time.Time
}

// NormalizeCRLF returns body with every line ending as CRLF (a bare LF or a
// bare CR becomes CRLF), so sizes listed by POP are the octets sent
// (RFC 1939 §11: "the size in octets ... as it would be sent").
func NormalizeCRLF(body []byte) []byte {
	// Fast path: already canonical.
	if !needsCRLF(body) {
		return body
	}
	out := make([]byte, 0, len(body)+len(body)/40)
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(body) && body[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

func needsCRLF(b []byte) bool {
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return true
		}
	}
	return false
}

// ReadMessage reads at most max octets of a message from r, failing with
// ErrTooBig beyond that; it never buffers more than max+1 octets.
func ReadMessage(r io.Reader, max int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(bufio.NewReader(r), max+1))
	if err != nil {
		return nil, fmt.Errorf("reading message: %w", err)
	}
	if n > max {
		return nil, fmt.Errorf("%w: over %d octets", ErrTooBig, max)
	}
	return buf.Bytes(), nil
}

// Deliver stores the message for every recipient in one transaction and
// returns their UIDs in recipient order. When it returns nil the message is
// on disk (synchronous=FULL): either every recipient has it or none.
// New mail enters the POP queue; access and spam filtering are applied when
// the maildrop is listed.
func (s *Store) Deliver(ctx context.Context, d Delivery) ([]int64, error) {
	if len(d.Recipients) == 0 {
		return nil, errors.New("delivery without recipients")
	}
	body := d.Stream
	if body == nil {
		body = BytesBody(d.Body)
	}
	now := s.now().UnixNano()
	if !d.Received.IsZero() {
		now = d.Received.UnixNano()
	}
	uids := make([]int64, 0, len(d.Recipients))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, rcpt := range d.Recipients {
			uid, err := s.insertMessage(ctx, tx, rcpt, body, d.Spam, true, now)
			if err != nil {
				return err
			}
			uids = append(uids, uid)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return uids, nil
}

// AccountExists reports whether address has a mailbox, for the SMTP RCPT
// check. Malformed addresses report false.
func (s *Store) AccountExists(ctx context.Context, address string) (bool, error) {
	_, _, err := accountID(ctx, s.r, address)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound), errors.Is(err, profiles.ErrInvalidAddress):
		return false, nil
	}
	return false, err
}

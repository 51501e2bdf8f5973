package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// POPSession is what the POP3 backend records of a session at its end
// (QUIT or a dropped connection): the account's "last POP access".
type POPSession struct {
	At         time.Time // when the session ended
	Remote     string    // client IP address; "" if unknown
	Downloaded int       // distinct messages sent whole (RETR) in the session
}

// RecordPOPSession implements Maildrop: one upsert, replacing the
// account's previous record.
func (s *Store) RecordPOPSession(ctx context.Context, accountID int64, ps POPSession) error {
	if err := CheckPOPSession(ps); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO pop_last_access (account_id, at, remote, downloaded) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET at = excluded.at, remote = excluded.remote, downloaded = excluded.downloaded`,
		accountID, ps.At.UnixNano(), ClipRemote(ps.Remote), ps.Downloaded)
	if err != nil {
		return fmt.Errorf("recording POP session: %w", err)
	}
	return nil
}

// LastPOPSession implements POPPreferences: ok is false if the account
// never completed a POP session.
func (s *Store) LastPOPSession(ctx context.Context, address string) (ps POPSession, ok bool, err error) {
	id, _, err := accountID(ctx, s.r, address)
	if err != nil {
		return POPSession{}, false, err
	}
	var at int64
	err = s.r.QueryRowContext(ctx, `SELECT at, remote, downloaded FROM pop_last_access WHERE account_id = ?`, id).
		Scan(&at, &ps.Remote, &ps.Downloaded)
	if errors.Is(err, sql.ErrNoRows) {
		return POPSession{}, false, nil
	}
	if err != nil {
		return POPSession{}, false, fmt.Errorf("reading last POP session: %w", err)
	}
	ps.At = time.Unix(0, at)
	return ps, true, nil
}

// CheckPOPSession refuses a session record every driver refuses (a
// negative download count).
func CheckPOPSession(ps POPSession) error {
	if ps.Downloaded < 0 {
		return fmt.Errorf("%w: negative download count", ErrBadSetting)
	}
	return nil
}

// ClipRemote bounds the stored client address (an IPv6 address with a
// zone is at most ~60 characters; anything longer is not one); every
// driver stores it clipped.
func ClipRemote(r string) string {
	if len(r) > 64 {
		return r[:64]
	}
	return r
}
